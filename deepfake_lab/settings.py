"""Facts every module shares: where the package's files and the user's cache live, and the quick mode.

One place for each, so no module rebuilds a path of its own:

* :data:`WEIGHTS_DIR`: the demo weights and their model cards (``assets/weights/*.safetensors`` + ``.md``);
* :data:`EXAMPLES_DIR`: the example media of the lessons (a driving clip, a source portrait);
* :func:`cache_dir`: ``$DEEPFAKE_LAB_CACHE`` or ``~/.cache/deepfake_lab`` (converted metric weights,
  embedded data sets, downloads, the local signing identity);
* :func:`quick_mode`: ``DEEPFAKE_LAB_QUICK=1`` shrinks steps and sizes for CI and the notebook tests.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE_DIR", "WEIGHTS_DIR", "EXAMPLES_DIR", "demo_weights", "cache_dir", "quick_mode"]

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "assets" / "weights"
EXAMPLES_DIR = PACKAGE_DIR / "assets" / "examples"


def demo_weights(name: str) -> Path:
    """The shipped demo weights called ``name`` (``"cyclegan-face2cartoon"`` or ``"...safetensors"``)."""
    return WEIGHTS_DIR / (name if name.endswith(".safetensors") else f"{name}.safetensors")


def cache_dir() -> Path:
    """The cache root: ``$DEEPFAKE_LAB_CACHE`` or ``~/.cache/deepfake_lab``."""
    root = os.environ.get("DEEPFAKE_LAB_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "deepfake_lab"


def quick_mode() -> bool:
    """True when ``DEEPFAKE_LAB_QUICK=1``: CI and notebook tests shrink steps and sizes."""
    return os.environ.get("DEEPFAKE_LAB_QUICK", "") not in ("", "0", "false", "False")
