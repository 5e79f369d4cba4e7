"""Reference solutions of the exercises in ``05_face_swap.ipynb`` (try them yourself first).

One function per answer, named as in the notebook's ``answer("05", name, ...)`` calls; each takes the
notebook's values that the cell passes along and returns the answer. Where the answer is a function
(exercises 1 and 3), the notebook's values come first, then that function's own arguments.
"""
import numpy as np
import torch

from deepfake_lab import detect


def ex1_swap_to_A(nets, faces):
    """Exercise 1: the swap B -> A is decoder A applied to the shared encoder's code of B's faces."""
    with torch.no_grad():
        return nets["decoder_A"](nets["encoder"](faces))


def ex2_bottleneck_parameters():
    """Exercise 2: Linear(4*4*1024, 1024) then Linear(1024, 4*4*1024), weights (in x out) plus biases (out)."""
    return (4 * 4 * 1024) * 1024 + 1024 + 1024 * (4 * 4 * 1024) + 4 * 4 * 1024


def ex3_match_rgb(face, reference):
    """Exercise 3: Reinhard colour transfer in RGB over the whole image, per channel, clipped to 0..255."""
    f, r = face.astype(np.float64), reference.astype(np.float64)
    y = (f - f.mean((0, 1))) * r.std((0, 1)) / (f.std((0, 1)) + 1e-6) + r.mean((0, 1))
    return np.clip(y, 0, 255)


def ex4_balanced_accuracy(net, real_test, splice_test):
    """Exercise 4: the mean of the two per-class accuracies at threshold 0.5 on P(generated)."""
    real_ok = (detect.predict(net, real_test) < 0.5).float().mean().item()
    fake_ok = (detect.predict(net, splice_test) >= 0.5).float().mean().item()
    return (real_ok + fake_ok) / 2
