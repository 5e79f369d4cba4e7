"""Reference solutions of the exercises in ``02_cyclegan.ipynb`` (try them yourself first).

One function per answer, named as in the notebook's ``answer("02", name, ...)`` calls; each takes the
notebook's values that the cell passes along and returns the answer.
"""


def ex1_lsgan_d_loss(s_real, s_fake):
    """Exercise 1: the least-squares loss of a discriminator, halved: (E[(s_real - 1)^2] + E[s_fake^2]) / 2."""
    return 0.5 * (((s_real - 1) ** 2).mean() + (s_fake ** 2).mean())


def ex2_receptive_field():
    """Exercise 2: PatchGAN with n_layers=2, kernels 4, strides 2, 2, 1, 1: 1 + sum of (k - 1) x jump."""
    return 1 + 3 * (1 + 2 + 4 + 4)


def ex2_score_map_side():
    """Exercise 2: 256 halved twice (stride 2), then one pixel fewer per stride-1 layer."""
    return 256 // 2 // 2 - 1 - 1


def ex3_resnet_block_parameters():
    """Exercise 3: two 3x3 convolutions from 256 to 256 channels, each with 256 biases."""
    return 2 * (256 * 256 * 3 * 3 + 256)


def ex4_cycle_loss(G, F, x, y):
    """Exercise 4: the unweighted cycle loss of Eq. 2, mean |F(G(x)) - x| + mean |G(F(y)) - y|."""
    return (F(G(x)) - x).abs().mean() + (G(F(y)) - y).abs().mean()
