"""Reference solutions of the exercises in ``03_pix2pix.ipynb`` (try them yourself first).

One function per answer, named as in the notebook's ``answer("03", name, ...)`` calls; each takes the
notebook's values that the cell passes along and returns the answer.
"""
import torch
from torch import nn


def ex1_outermost_up_channels(demo_config):
    """Exercise 1: the decoder's ngf channels, concatenated with the skip's ngf channels."""
    return 2 * demo_config.ngf


def ex2_receptive_fields():
    """Exercise 2: 1 + 3 x (sum of the jumps) for strides (2, 1, 1) and (2, 2, 2, 2, 2, 1, 1)."""
    return (1 + 3 * (1 + 2 + 2), 1 + 3 * (1 + 2 + 4 + 8 + 16 + 32 + 32))


def ex3_generator_loss(s, y_hat, y_true):
    """Exercise 3: Eq. 4 with the non-saturating GAN term, -E[log sigmoid(s)] + 100 |y - G(x)|_1."""
    return -nn.functional.logsigmoid(s).mean() + 100 * (y_true - y_hat).abs().mean()


def ex4_psnr(mse):
    """Exercise 4: 10 log10(R^2 / MSE) with R = 2 for images in [-1, 1]."""
    return 10 * torch.log10(4 / mse).item()
