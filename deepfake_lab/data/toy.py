"""2-D Gaussian mixtures: the standard test bed for mode collapse.

A generator that covers only some of the mixture's modes has *collapsed*; on 2-D points this is
visible at a glance and countable (:mod:`deepfake_lab.gan_metrics`).

* ``ring8``: 8 Gaussians with centres evenly spaced on a circle of radius 2, standard deviation 0.02
  (the setup of Metz et al. 2017, "Unrolled Generative Adversarial Networks", used by many papers since).
* ``grid25``: 25 Gaussians on the 5x5 grid {-4, -2, 0, 2, 4}^2, standard deviation 0.05
  (the setup of VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018).

Both are map-style datasets of a fixed number of points drawn once from a seed: item ``i`` is a
(2,) float32 tensor, so a batch is (B, 2).
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from . import DataError

__all__ = ["MIXTURES", "modes", "GaussianMixture2D", "ring8", "grid25", "mixture"]

#: the mixtures this module knows, by name
MIXTURES = ("ring8", "grid25")


def modes(name: str) -> tuple[torch.Tensor, float]:
    """The mode centres (K, 2) and the per-axis standard deviation of the mixture ``name``."""
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        centres = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (8, 2)
        return centres.float(), 0.02
    if name == "grid25":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        centres = torch.cartesian_prod(axis, axis)  # (25, 2)
        return centres, 0.05
    raise DataError(f"2-D mixture {name!r}: unknown; use one of {', '.join(MIXTURES)}")


class GaussianMixture2D(Dataset):
    """``n`` points from an equal-weight mixture of isotropic Gaussians, drawn once from ``seed``.

    .. math:: p(x) = \\frac1K \\sum_{k=1}^K \\mathcal{N}(x;\\ \\mu_k,\\ \\sigma^2 I)

    ``self.points`` is the (n, 2) tensor; ``self.labels`` says which mode drew each point.
    """

    def __init__(self, centres: torch.Tensor, std: float, n: int = 50_000, seed: int = 0, name: str = "mixture"):
        if n < 1:
            raise DataError(f"{name}: n={n} points; need at least 1")
        if std <= 0:
            raise DataError(f"{name}: std={std}; need a positive standard deviation")
        self.name, self.centres, self.std = name, centres.float(), float(std)
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(len(centres), (n,), generator=g)  # (n,)
        noise = torch.randn(n, 2, generator=g)  # (n, 2)
        self.points = self.centres[self.labels] + self.std * noise

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.points[index]  # (2,)


def ring8(n: int = 50_000, seed: int = 0) -> GaussianMixture2D:
    """8 Gaussians on a circle of radius 2, std 0.02."""
    centres, std = modes("ring8")
    return GaussianMixture2D(centres, std, n, seed, "ring8")


def grid25(n: int = 50_000, seed: int = 0) -> GaussianMixture2D:
    """25 Gaussians on a 5x5 grid with spacing 2, std 0.05."""
    centres, std = modes("grid25")
    return GaussianMixture2D(centres, std, n, seed, "grid25")


def mixture(name: str, n: int = 50_000, seed: int = 0) -> GaussianMixture2D:
    """The mixture called ``name`` (``"ring8"`` or ``"grid25"``)."""
    centres, std = modes(name)
    return GaussianMixture2D(centres, std, n, seed, name)
