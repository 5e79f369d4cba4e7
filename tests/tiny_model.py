"""A tiny but real lesson model for testing the loop: its step uses every RNG the loop must restore."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from deepfake_lab.train import LessonModel, linear_decay


@dataclass
class TinyConfig:
    width: int = 16
    lr: float = 1e-2


class NoisyPoints(Dataset):
    """Points with a random augmentation drawn inside __getitem__ (uses the per-item seed)."""

    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 4, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + 0.1 * torch.randn(4)


class TinyModel(LessonModel):
    """A small model whose step uses every RNG the loop must restore (torch, numpy, dropout)."""

    kind = "tiny"
    Config = TinyConfig

    def __init__(self, config=TinyConfig(), device="cpu", precision=None, total_steps=40):
        super().__init__(config, device, precision)
        self.nets["net"] = torch.nn.Sequential(torch.nn.Linear(4, config.width), torch.nn.ReLU(),
                                               torch.nn.Dropout(0.2), torch.nn.Linear(config.width, 4))
        self.opts["net"] = torch.optim.Adam(self.nets["net"].parameters(), lr=config.lr)
        self.scheds["net"] = torch.optim.lr_scheduler.LambdaLR(self.opts["net"], linear_decay(total_steps, total_steps // 2))
        self.pool: list[torch.Tensor] = []

    def set_input(self, batch):
        self.x = batch.to(self.device)

    def forward(self):
        return self.nets["net"](self.x + float(np.random.normal(0, 0.01)))

    def optimize_parameters(self):
        loss = (self.forward() - self.x.flip(1)).pow(2).mean()
        self.opts["net"].zero_grad()
        loss.backward()
        self.opts["net"].step()
        self.pool.append(self.x[:1].detach().clone())
        self.pool = self.pool[-3:]
        return {"loss": loss.item()}

    def sample_images(self):
        return torch.tanh(torch.randn(4, 1, 8, 8))

    def extra_state(self):
        return {"pool": list(self.pool)}

    def load_extra_state(self, state):
        self.pool = list(state["pool"])
