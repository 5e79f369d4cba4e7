"""Adversarial and reconstruction losses, one small function each, in the order the papers came.

Every adversarial loss here takes the discriminator's **raw scores** (logits for the BCE-type losses,
unbounded critic values for WGAN), never probabilities: ``log(sigmoid(x))`` computed as
``-softplus(-x)`` stays finite where ``log`` of a rounded probability would not.

Notation: :math:`D(x)` is the score of a real sample, :math:`D(G(z))` of a generated one,
:math:`\\sigma` the logistic sigmoid, so the discriminator's probability "real" is :math:`\\sigma(D)`.
Expectations are means over the batch (and over the positions of a patch discriminator's score map).

=================  ===============================================  ==========================================
``kind``           discriminator minimises                          generator minimises
=================  ===============================================  ==========================================
``minimax``        :math:`-\\log\\sigma(D(x)) - \\log(1-\\sigma(D(G(z))))`  :math:`\\log(1-\\sigma(D(G(z))))`
``nonsaturating``  same as minimax                                  :math:`-\\log\\sigma(D(G(z)))`
``lsgan``          :math:`\\tfrac12(D(x)-1)^2 + \\tfrac12 D(G(z))^2`   :math:`\\tfrac12(D(G(z))-1)^2`
``hinge``          :math:`[1-D(x)]_+ + [1+D(G(z))]_+`                 :math:`-D(G(z))`
``wgan-gp``        :math:`D(G(z)) - D(x)` + :func:`gradient_penalty`  :math:`-D(G(z))`
=================  ===============================================  ==========================================
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "minimax_d_loss", "minimax_g_loss", "nonsaturating_d_loss", "nonsaturating_g_loss",
           "lsgan_loss", "lsgan_d_loss", "lsgan_g_loss", "hinge_d_loss", "hinge_g_loss", "wgan_d_loss", "wgan_g_loss",
           "gradient_penalty", "d_loss", "g_loss", "code_loss", "l1_loss", "reconstruction_loss"]

#: the adversarial losses :func:`d_loss` and :func:`g_loss` know
LOSSES = ("minimax", "nonsaturating", "lsgan", "hinge", "wgan-gp")


# ----------------------------------------------------------------------------------------------
# Goodfellow et al. 2014, "Generative Adversarial Nets"
# ----------------------------------------------------------------------------------------------
def minimax_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator's side of the GAN value function (Goodfellow et al. 2014, Eq. 1).

    .. math:: \\min_G \\max_D V(D, G) = \\mathbb{E}_x[\\log D(x)] + \\mathbb{E}_z[\\log(1 - D(G(z)))]

    D maximises V, i.e. minimises the binary cross-entropy of "real" on real samples plus "fake" on
    generated ones:

    .. math:: L_D = -\\mathbb{E}_x[\\log\\sigma(D(x))] - \\mathbb{E}_z[\\log(1 - \\sigma(D(G(z))))]

    The two terms are summed, as in the paper (the official CycleGAN/pix2pix code halves this sum to
    slow D down; that is a weighting choice, not a different loss). At :math:`D = 0` (no idea) it is
    :math:`2\\log 2 \\approx 1.386`.
    """
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def minimax_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's side of the minimax game (Goodfellow et al. 2014, Eq. 1): minimise log(1 - D(G(z))).

    .. math:: L_G = \\mathbb{E}_z[\\log(1 - \\sigma(D(G(z))))] = -\\mathbb{E}_z[\\mathrm{softplus}(D(G(z)))]

    Early in training D rejects generated samples easily, :math:`\\sigma(D(G(z))) \\to 0`, where this
    loss is flat: its gradient vanishes (it *saturates*) exactly when G most needs to learn
    (the paper's §3). Kept to show that; :func:`nonsaturating_g_loss` is the fix.
    """
    return -F.softplus(fake_scores).mean()


def nonsaturating_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator loss used with the non-saturating generator: the same BCE as :func:`minimax_d_loss`."""
    return minimax_d_loss(real_scores, fake_scores)


def nonsaturating_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss (Goodfellow et al. 2014, §3): maximise log D(G(z)) instead.

    .. math:: L_G = -\\mathbb{E}_z[\\log\\sigma(D(G(z)))] = \\mathbb{E}_z[\\mathrm{softplus}(-D(G(z)))]

    It has the same fixed point as the minimax game but strong gradients when D rejects G's samples;
    it is what "the GAN loss" (BCE with target "real" for generated samples) means in DCGAN and pix2pix.
    """
    return F.softplus(-fake_scores).mean()


# ----------------------------------------------------------------------------------------------
# Mao et al. 2017, "Least Squares Generative Adversarial Networks"
# ----------------------------------------------------------------------------------------------
def lsgan_loss(scores: torch.Tensor, target: bool | float) -> torch.Tensor:
    """The least-squares term of LSGAN (Mao et al. 2017): :math:`\\mathbb{E}[(D(\\cdot) - t)^2]`, the one
    definition every LSGAN loss here is built from.

    ``target`` is the coded label: ``True`` (real, 1), ``False`` (fake, 0) or a number (the paper's
    a, b, c). The mean runs over the batch and over every position of a patch discriminator's score map;
    computed in fp32 even under autocast. It is the official ``GANLoss(gan_mode="lsgan")``: ``MSELoss``
    against a tensor of ones or zeros.

    **Where the 1/2 lives.** This term has no factor 1/2. The paper's Eq. 2 puts 1/2 on both players:
    :func:`lsgan_d_loss` and :func:`lsgan_g_loss` multiply by it, and nothing else does. The official
    CycleGAN step uses this term as it is for the generators (no 1/2) and halves the discriminators'
    sum in its step, ``0.5 * (loss_D_real + loss_D_fake)``, which is :func:`lsgan_d_loss`'s value
    (:class:`deepfake_lab.cyclegan.CycleGANModel` does exactly that).
    """
    scores = scores.float()
    return F.mse_loss(scores, torch.full_like(scores, float(target)))


def lsgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    """LSGAN discriminator loss (Mao et al. 2017, Eq. 2), with fake target ``a`` = 0 and real target ``b`` = 1
    (the paper's 0-1 coding).

    .. math:: L_D = \\tfrac12\\mathbb{E}_x[(D(x) - b)^2] + \\tfrac12\\mathbb{E}_z[(D(G(z)) - a)^2]

    A squared error instead of a log loss penalises generated samples that are on the right side of
    the decision boundary but far from the real data, so gradients do not vanish. The 1/2 is the
    paper's (see :func:`lsgan_loss`); the official CycleGAN code's ``0.5 * (MSE(real, 1) + MSE(fake, 0))``
    is the same value.
    """
    return 0.5 * (lsgan_loss(real_scores, b) + lsgan_loss(fake_scores, a))


def lsgan_g_loss(fake_scores: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """LSGAN generator loss (Mao et al. 2017, Eq. 2), target ``c`` = 1 ("real").

    .. math:: L_G = \\tfrac12\\mathbb{E}_z[(D(G(z)) - c)^2]

    The paper's factor 1/2 is kept; the official CycleGAN code uses ``lsgan_loss(D(G(z)), True)``
    without it, i.e. twice this value (so its cycle weight 10 is relative to the doubled loss).
    """
    return 0.5 * lsgan_loss(fake_scores, c)


# ----------------------------------------------------------------------------------------------
# Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for GANs"
# ----------------------------------------------------------------------------------------------
def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018, §4).

    .. math:: L_D = \\mathbb{E}_x[\\max(0, 1 - D(x))] + \\mathbb{E}_z[\\max(0, 1 + D(G(z)))]

    A margin classifier (an SVM's hinge): samples already scored beyond the margin cost nothing.
    """
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss (Miyato et al. 2018, §4): :math:`L_G = -\\mathbb{E}_z[D(G(z))]`."""
    return -fake_scores.mean()


# ----------------------------------------------------------------------------------------------
# Arjovsky et al. 2017, "Wasserstein GAN"; Gulrajani et al. 2017, "Improved Training of Wasserstein GANs"
# ----------------------------------------------------------------------------------------------
def wgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic loss of WGAN (Arjovsky et al. 2017, §3; Gulrajani et al. 2017, Eq. 3 without the penalty).

    .. math:: L_D = \\mathbb{E}_z[D(G(z))] - \\mathbb{E}_x[D(x)]

    Minimising it over 1-Lipschitz critics gives minus the Wasserstein-1 distance between the real
    and generated distributions (Kantorovich-Rubinstein duality). The Lipschitz constraint comes from
    :func:`gradient_penalty` (WGAN-GP), not weight clipping.
    """
    return fake_scores.mean() - real_scores.mean()


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: :math:`L_G = -\\mathbb{E}_z[D(G(z))]` (Gulrajani et al. 2017, Algorithm 1)."""
    return -fake_scores.mean()


def gradient_penalty(D: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     weight: float = 10.0, eps: torch.Tensor | None = None) -> torch.Tensor:
    """The WGAN-GP gradient penalty (Gulrajani et al. 2017, Eq. 3 and Algorithm 1), weight :math:`\\lambda` = 10.

    .. math::

        \\hat x = \\epsilon x + (1 - \\epsilon)\\tilde x, \\quad \\epsilon \\sim U[0, 1]

        GP = \\lambda\\, \\mathbb{E}_{\\hat x}\\big[(\\lVert\\nabla_{\\hat x} D(\\hat x)\\rVert_2 - 1)^2\\big]

    An optimal critic has gradient norm 1 almost everywhere on lines between real samples :math:`x`
    and generated ones :math:`\\tilde x` (the paper's Proposition 1), so the penalty pushes the norm
    towards 1 there (two-sided), in place of weight clipping.

    ``eps`` (shape (B,), one mixing weight per sample) is drawn uniformly when not given. The graph is
    kept (``create_graph=True``) so the penalty can be back-propagated into D's weights.
    Shapes: real, fake (B, ...) -> a scalar.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} must have one shape")
    b = real.shape[0]
    if eps is None:
        eps = torch.rand(b, device=real.device, dtype=real.dtype)
    eps = eps.to(real).reshape(b, *([1] * (real.dim() - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = D(x_hat)
    (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grads.reshape(b, -1).norm(2, dim=1)  # (B,)
    return weight * ((norms - 1.0) ** 2).mean()


# ----------------------------------------------------------------------------------------------
# By name: what a model's config selects
# ----------------------------------------------------------------------------------------------
_D_LOSSES = {"minimax": minimax_d_loss, "nonsaturating": nonsaturating_d_loss, "lsgan": lsgan_d_loss,
             "hinge": hinge_d_loss, "wgan-gp": wgan_d_loss}
_G_LOSSES = {"minimax": minimax_g_loss, "nonsaturating": nonsaturating_g_loss, "lsgan": lsgan_g_loss,
             "hinge": hinge_g_loss, "wgan-gp": wgan_g_loss}


def _check_kind(kind: str) -> None:
    if kind not in _D_LOSSES:
        raise ValueError(f"loss {kind!r}: use one of {', '.join(LOSSES)}")


def d_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator loss named ``kind`` (see the table at the top of this module).

    For ``"wgan-gp"`` this is the Wasserstein term only: add :func:`gradient_penalty`, which needs D itself.
    """
    _check_kind(kind)
    return _D_LOSSES[kind](real_scores, fake_scores)


def g_loss(kind: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator loss named ``kind`` (see the table at the top of this module)."""
    _check_kind(kind)
    return _G_LOSSES[kind](fake_scores)


# ----------------------------------------------------------------------------------------------
# Chen et al. 2016 (InfoGAN) and Odena et al. 2017 (AC-GAN): a categorical code
# ----------------------------------------------------------------------------------------------
def code_loss(logits: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the code head's logits (B, K) against the code (B,) ints: :math:`-\\mathbb{E}[\\log Q(c|x)]`.

    On generated images this is minus InfoGAN's mutual-information bound L_I (Eq. 5) up to the constant H(c),
    minimised by G and by D with its head Q; on real images with their labels it is the real half of AC-GAN's
    class term L_C (Eq. 3), for D. See :mod:`deepfake_lab.gan_codes`.
    """
    return F.cross_entropy(logits.float(), code)  # fp32 even under autocast


# ----------------------------------------------------------------------------------------------
# Reconstruction
# ----------------------------------------------------------------------------------------------
def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error :math:`\\mathbb{E}[\\lVert y - \\hat y\\rVert_1]` (per element).

    The reconstruction term of pix2pix (Isola et al. 2017, Eq. 3: "L1 ... encourages less blurring"
    than L2), and of CycleGAN's cycle-consistency loss (Zhu et al. 2017, Eq. 2: ``l1_loss(F(G(x)), x)``)
    and identity loss (§5.2: ``l1_loss(G(y), y)``); the official code's ``nn.L1Loss``.
    """
    if output.shape != target.shape:
        raise ValueError(f"l1_loss: output {tuple(output.shape)} and target {tuple(target.shape)} must have one shape")
    return (output.float() - target.float()).abs().mean()  # fp32 even under autocast


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Reconstruction error by name: ``"l1"`` (mean absolute) or ``"l2"`` (mean squared)."""
    if kind == "l1":
        return l1_loss(output, target)
    if kind == "l2":
        if output.shape != target.shape:
            raise ValueError(f"l2 loss: output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape")
        return ((output - target) ** 2).mean()
    raise ValueError(f"reconstruction loss {kind!r}: use 'l1' or 'l2'")
