"""Run the tiny model through the shared loop; launched by tests/test_distributed.py under torchrun."""
import sys

import torch

from deepfake_lab.device import seed_everything
from deepfake_lab.train import LoopConfig, fit
from tiny_model import NoisyPoints, TinyModel

out, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
seed_everything(0)
model = TinyModel(total_steps=steps)
fit(model, NoisyPoints(), LoopConfig(steps=steps, batch_size=batch, out_dir=out, checkpoint_every=10,
                                     sample_every=0, log_every=1, progress=False, tensorboard=False))
