"""Reference solutions of the exercises in ``04_image_animation.ipynb`` (try them yourself first).

One function per answer, named as in the notebook's ``answer("04", name, ...)`` calls; each takes the
notebook's values that the cell passes along and returns the answer.
"""
import numpy as np

from deepfake_lab.animation.grids import make_coordinate_grid


def ex1_soft_argmax(heat):
    """Exercise 1: the expected (x, y) under the (1, 1, 8, 8) heatmap: sum of H(z) z over the grid."""
    return (heat[0, 0].unsqueeze(-1) * make_coordinate_grid((8, 8))).sum(dim=(0, 1))


def ex2_alpha():
    """Exercise 2: sqrt of the ratio of the areas, 0.4^2 (source) over 0.8^2 (first driving frame)."""
    return (0.4 ** 2 / 0.8 ** 2) ** 0.5


def ex2_new_p0(p_s, p_dt, p_d1):
    """Exercise 2: relative transfer with adapt-scale, p^S + alpha (p^Dt - p^D1), for keypoint 0."""
    return p_s[0] + ex2_alpha() * (p_dt[0] - p_d1[0])


def ex3_affine_jacobian(T_affine):
    """Exercise 3: T(z) = A z + b, so the Jacobian is A, the first two columns of theta."""
    return T_affine.theta[0, :, :2]


def ex4_no_motion_l1(clip5):
    """Exercise 4: mean |frame t - frame 0| over the 5 frames (values in [0, 1]), frame 0 included."""
    return np.abs(clip5 - clip5[:1]).mean()
