"""Reference solutions of the exercises in ``01_gan_basics.ipynb`` (try them yourself first).

One function per answer, named as in the notebook's ``answer("01", name, ...)`` calls; each takes the
notebook's values that the cell passes along and returns the answer.
"""
import torch

from deepfake_lab import gan


def ex1_nonsaturating_loss(s):
    """Exercise 1: the non-saturating generator loss -E[log sigmoid(s)] for fake logits ``s``."""
    return -torch.nn.functional.logsigmoid(s).mean()


def ex2_linear_path_norms(z0, z1):
    """Exercise 2: the norms of the 9 vectors of the linear path from ``z0`` to ``z1``: shape (9,)."""
    return gan.interpolate_latents(z0, z1, 9, "linear").norm(dim=1)


def ex3_first_layer_parameters():
    """Exercise 3: a Linear(2, 128) has a 128 x 2 weight matrix and 128 biases."""
    return 2 * 128 + 128
