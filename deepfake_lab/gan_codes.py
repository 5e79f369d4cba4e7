"""Lesson 1, part 2: a categorical code in the noise, so that each sample is one digit and not a blend of two.

A DCGAN trained on digits makes about one sample in five that the digit classifier cannot name: a blend
between classes (``gan-digits.md``). Two papers give the generator a discrete choice to make first:

1. Chen et al. 2016, "InfoGAN" (§4-5): part of G's input is a categorical code :math:`c \\sim \\mathrm{Cat}(K)`,
   and an extra head Q on D's features learns to read it back from G(z, c). Maximising the variational lower
   bound L_I on the mutual information :math:`I(c; G(z, c))` (their Eq. 5) is a cross-entropy on generated
   images, added to the losses of D (with Q) and G with a weight lambda (1 for discrete codes), Eq. 6:

   .. math:: \\min_{G, Q} \\max_D\\ V(D, G) - \\lambda\\, L_I(G, Q), \\qquad
             L_I = \\mathbb{E}_{c, z}[\\log Q(c \\mid G(z, c))] + H(c)

   Without labels, which code value becomes which digit is up to training.
2. Odena et al. 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs" (AC-GAN, §3): the same
   head as a classifier, its log-likelihood of the right class :math:`L_C` (Eq. 3) taken on the real images
   with their labels and on the generated ones with the class asked for, so code k means digit k.

Here the code is not an extra input: :func:`code_of` reads it from the first K dimensions of the same
z ~ N(0, I) (their argmax, which is uniform over the K classes), and :class:`CodedDCGANGenerator` replaces
those dimensions by the code's one-hot vector. A coded generator is still G(z): sampling, interpolation,
the app and the exported file work unchanged; :func:`noise_for_code` draws z for a chosen class.
:class:`CodedDCGANDiscriminator` returns 1 + K numbers per image: D's score, then Q's K logits (the head is a
4x4 convolution on D's last feature map, beside the score's). :func:`split_scores` parts them and
:func:`~deepfake_lab.losses.code_loss` is L_I (and L_C).

    deepfake-lab train gan --data mnist-subset --preset demo --code 10 --code-labels   # AC-GAN
    deepfake-lab train gan --data mnist-subset --preset demo --code 10                 # InfoGAN, no labels
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ConvNormAct

#: the digit data sets have this many classes: with labels (AC-GAN) the code must have as many values
LABELLED_CLASSES = 10

__all__ = ["LABELLED_CLASSES", "check_code", "code_of", "noise_for_code", "CodedDCGANGenerator",
           "CodedDCGANDiscriminator", "split_scores"]


def check_code(config) -> None:
    """Raise a ValueError naming the flag when a :class:`~deepfake_lab.gan.GANConfig`'s code settings do not fit."""
    if config.code_labels and not config.code:
        raise ValueError("--code-labels without --code: set the number of classes, e.g. --code 10")
    if config.code_weight < 0:
        raise ValueError(f"--code-weight {config.code_weight}: need a weight >= 0 (InfoGAN: 1)")
    if not config.code:
        return
    if config.arch != "dcgan":
        raise ValueError(f"--code {config.code} with --arch {config.arch}: the code head is on DCGAN's discriminator; "
                         "use --arch dcgan")
    if config.loss == "wgan-gp":
        raise ValueError(f"--code {config.code} with --loss wgan-gp: its gradient penalty is on D's score alone; "
                         "choose another --loss (e.g. nonsaturating)")
    if not 2 <= config.code < config.latent_dim:
        raise ValueError(f"--code {config.code}: need 2 <= classes < --latent-dim ({config.latent_dim})")
    if config.code_labels and config.code != LABELLED_CLASSES:
        raise ValueError(f"--code-labels with --code {config.code}: the digit data have {LABELLED_CLASSES} labels, one "
                         f"per code value; use --code {LABELLED_CLASSES}")


def code_of(z: torch.Tensor, classes: int) -> torch.Tensor:
    """The categorical code of each noise vector: argmax of its first ``classes`` dimensions, (B,) int64.

    For z ~ N(0, I) every class is equally likely (the dimensions are exchangeable)."""
    return z[:, :classes].argmax(dim=1)


def noise_for_code(code: torch.Tensor | int, n: int, latent_dim: int, classes: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` noise vectors (n, latent_dim) whose code is ``code`` (an int or (n,) ints in [0, classes)):
    z ~ N(0, I) with the code's dimension swapped for the largest of the first ``classes``."""
    code = torch.as_tensor(code).long().flatten()
    if code.numel() not in (1, n):
        raise ValueError(f"code: {code.numel()} values for n={n} noise vectors; give one code or n of them")
    bad = code[(code < 0) | (code >= classes)]
    if bad.numel():
        raise ValueError(f"code {bad.unique().tolist()}: need values in [0, {classes})")
    z = torch.randn(n, latent_dim, generator=generator)
    code = code.expand(n)
    head = z[:, :classes]
    top = head.argmax(dim=1)
    rows = torch.arange(n)
    swapped = head.clone()
    swapped[rows, code], swapped[rows, top] = head[rows, top], head[rows, code]
    z[:, :classes] = swapped
    return z


class CodedDCGANGenerator(nn.Module):
    """DCGAN's generator fed (one-hot code c, rest of z) instead of z: the same input size, the same weights'
    names and shapes (``net.*``) as :class:`~deepfake_lab.gan.DCGANGenerator`.

        z (B, 100) -> c = code_of(z, K), [one_hot(c) (B, K), z[:, K:] (B, 100 - K)] -> DCGAN G -> (B, C, 32, 32)
    """

    def __init__(self, base: nn.Module, classes: int):
        super().__init__()
        if not 2 <= classes < base.latent_dim:
            raise ValueError(f"--code {classes}: need 2 <= classes < latent_dim ({base.latent_dim})")
        self.net, self.classes = base.net, classes
        self.latent_dim, self.out_shape = base.latent_dim, base.out_shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        code = F.one_hot(code_of(z, self.classes), self.classes).to(z.dtype)  # (B, K)
        inputs = torch.cat([code, z[:, self.classes:]], dim=1)  # (B, latent_dim)
        return self.net(inputs.view(z.shape[0], -1, 1, 1))


class CodedDCGANDiscriminator(nn.Module):
    """DCGAN's discriminator with the code head Q: (B, C, H, W) -> (B, 1 + K), D's score then Q's logits.

    The trunk and the score layer are :class:`~deepfake_lab.gan.DCGANDiscriminator`'s (``net.*``); Q is one
    4x4 convolution on the same (B, 4 ndf, 4, 4) features (at 32x32) (``code_head.*``), as AC-GAN's second output layer.
    """

    def __init__(self, base: nn.Module, classes: int):
        super().__init__()
        self.net, self.classes = base.net, classes
        width = self.net[-1][0].in_channels
        self.code_head = ConvNormAct(width, classes, 4, 1, 0, norm="none", act="none")  # 4x4 -> K logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net[:-1](x)  # (B, width, 4, 4)
        score = self.net[-1](features).flatten(1)  # (B, 1)
        return torch.cat([score, self.code_head(features).flatten(1)], dim=1)  # (B, 1 + K)


def split_scores(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """D's output -> (scores (B,), code logits (B, K) or None for a discriminator without a code head)."""
    if output.dim() == 1:
        return output, None
    return output[:, 0], output[:, 1:]
