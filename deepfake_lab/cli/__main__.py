"""``python -m deepfake_lab.cli ...`` (what torchrun starts): the same as ``deepfake-lab ...``."""
import sys

from . import main

sys.exit(main())
