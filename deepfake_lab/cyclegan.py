r"""Lesson 2: CycleGAN, image-to-image translation without paired examples.

Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017 (arXiv:1703.10593). This file reads in the paper's order: the generator and the
discriminator (§4 "Network Architecture", Appendix 7.2), the image history pool and the losses
(§3 "Formulation", §4 "Training details", §5.2), the training step, and a short last section that
writes and reads this lesson's weights files. Around it, elsewhere: importing official checkpoints
(:mod:`deepfake_lab.importers.cyclegan`), measuring a model on held-out pairs
(:mod:`deepfake_lab.evaluation`), and the command line (the lesson's row in :mod:`deepfake_lab.lessons`).

Two domains X and Y, two generators and two discriminators:

.. math::

    G: X \to Y, \qquad F: Y \to X, \qquad
    D_Y \text{ tells } y \text{ from } G(x), \qquad D_X \text{ tells } x \text{ from } F(y)

Names here follow the paper. The official code (junyanz/pytorch-CycleGAN-and-pix2pix) calls the
domains A and B, and its discriminator letters are crossed with respect to the paper's:

============================  =====================  ==========================
paper (this file)             official code          official checkpoint file
============================  =====================  ==========================
X, Y                          A, B                   ``trainA/``, ``trainB/``
G: X -> Y                     ``netG_A`` (G_A)       ``latest_net_G_A.pth``
F: Y -> X                     ``netG_B`` (G_B)       ``latest_net_G_B.pth``
D_Y (judges G(x) vs real y)   ``netD_A`` (D_A)       ``latest_net_D_A.pth``
D_X (judges F(y) vs real x)   ``netD_B`` (D_B)       ``latest_net_D_B.pth``
============================  =====================  ==========================

The networks reproduce the official key layout exactly (``model.1.weight`` ... ``model.26.bias`` for
the 9-block generator), so official ``.pth`` files load by name
(:func:`deepfake_lab.importers.cyclegan.import_official_generator`, ``deepfake-lab import cyclegan``).
The residual block and the normalisation layers are the shared ones of :mod:`deepfake_lab.blocks`
(:class:`~deepfake_lab.blocks.ResidualBlock` is the official ``ResnetBlock``, key for key).

Parameter counts at the official defaults (ngf = ndf = 64): G with 9 residual blocks 11,378,179
(6 blocks: 7,837,699); the 70x70 PatchGAN D 2,764,737. A 256x256 input gives D a 30x30 score map.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .blocks import ResidualBlock, init_weights, norm_layer
from .checkpoints import CheckpointError, save_weights
from .device import Precision
from .diffaugment import DiffAugment
from .losses import l1_loss, lsgan_d_loss, lsgan_loss
from .train import LessonModel, LoopConfig, config_from_dict, config_to_dict, linear_decay
from .run_folder import open_weights

__all__ = [
    "ResizeConv2d", "ResnetGenerator", "NLayerDiscriminator", "patch_receptive_field", "ImagePool",
    "CycleGANConfig", "CycleGANModel", "PRESETS", "recompute_batchnorm_statistics", "generator_from_weights",
    "load_generator", "export_generators", "demo_weights_path", "gpu_check_generator",
]

#: the normalisations of the official networks: InstanceNorm (the paper's) or BatchNorm (``--norm batch``)
NORMS = ("instance", "batch")


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm {norm!r}: use 'instance' (the paper's) or 'batch'")


# ============================================================================================
# 1. Generator (§4 "Network Architecture"; Appendix 7.2): Johnson et al. 2016's ResNet
# ============================================================================================
class ResizeConv2d(nn.Conv2d):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution: the "resize-convolution" of Odena et al.
    (2016, "Deconvolution and checkerboard artifacts"). A stride-2 transposed 3x3 convolution gives every
    other output pixel a different number of kernel taps, which paints a checkerboard that a small, briefly
    trained generator never unlearns; upsampling first spreads the taps evenly. Same parameter count and
    state-dict key as the transposed layer it replaces (the weight is (out, in, 3, 3) instead of (in, out, 3, 3)).
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, 3, padding=1, bias=bias, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


class ResnetGenerator(nn.Module):
    """The CycleGAN generator: ``c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3`` (Appendix 7.2).

    * ``c7s1-k``: reflection pad 3, 7x7 convolution with k filters, stride 1, InstanceNorm (Ulyanov et al.
      2016; no affine parameters, no running statistics, as the official code builds it), ReLU;
    * ``dk``: 3x3 convolution, stride 2 (halves H and W), InstanceNorm, ReLU;
    * ``Rk``: a residual block with two 3x3 convolutions, reflection padding and no ReLU after the sum
      (:class:`~deepfake_lab.blocks.ResidualBlock`, the official ``ResnetBlock``:
      :math:`y = x + \\mathrm{IN}(W_2 * \\mathrm{ReLU}(\\mathrm{IN}(W_1 * x)))`); 9 blocks for 256x256
      training images, 6 for 128x128 (§4);
    * ``uk``: 3x3 fractionally-strided (transposed) convolution, stride 1/2 (doubles H and W); with
      ``upsample="resize"``, :class:`ResizeConv2d` instead (not in the paper; the demo preset uses it);
    * the last ``c7s1-3`` ends in tanh, so images are in [-1, 1].

    Everything is one ``nn.Sequential`` called ``model`` so the keys are the official ones: for 9 blocks
    ``model.1`` (first conv), ``model.4`` and ``model.7`` (down), ``model.10``..``model.18`` (blocks),
    ``model.19`` and ``model.22`` (up), ``model.26`` (last conv); inside a block ``conv_block.1`` and
    ``conv_block.5`` (``conv_block.6`` with dropout). Convolutions have a bias only with InstanceNorm
    (BatchNorm's shift makes it redundant).

    Shapes: (B, input_nc, H, W) -> (B, output_nc, H, W), H and W multiples of 4 (two halvings and two
    doublings; other sizes come back 1-3 pixels off, so callers pad first: :func:`pad_to_multiple`).
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", use_dropout: bool = False, upsample: str = "transposed"):
        super().__init__()
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample {upsample!r}: use 'transposed' (the paper's) or 'resize'")
        if n_blocks < 0:
            raise ValueError(f"n_blocks={n_blocks}: need 0 or more residual blocks (the paper uses 6 or 9)")
        _check_norm(norm)
        bias = norm == "instance"
        layers: list[nn.Module] = [  # c7s1-ngf: (B, 3, H, W) -> (B, ngf, H, W)
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), norm_layer(norm, ngf), nn.ReLU(True)]
        channels = ngf
        for _ in range(2):  # d128, d256: (B, C, H, W) -> (B, 2C, H/2, W/2)
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, channels * 2), nn.ReLU(True)]
            channels *= 2
        for _ in range(n_blocks):  # R256: (B, 4 ngf, H/4, W/4), shape unchanged
            layers.append(ResidualBlock(channels, norm, "reflect", dropout=0.5 if use_dropout else 0.0))
        for _ in range(2):  # u128, u64: (B, C, h, w) -> (B, C/2, 2h, 2w)
            if upsample == "transposed":
                up: nn.Module = nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1,
                                                   output_padding=1, bias=bias)
            else:
                up = ResizeConv2d(channels, channels // 2, bias=bias)
            layers += [up, norm_layer(norm, channels // 2), nn.ReLU(True)]
            channels //= 2
        # c7s1-3: (B, ngf, H, W) -> (B, output_nc, H, W) in [-1, 1]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ============================================================================================
# 2. Discriminator: the 70x70 PatchGAN (§4; Isola et al. 2017, §3.2.2)
# ============================================================================================
class NLayerDiscriminator(nn.Module):
    """The PatchGAN discriminator: ``C64-C128-C256-C512``, then a 1-channel convolution (Appendix 7.2).

    ``Ck`` is a 4x4 convolution with k filters, InstanceNorm (not on C64) and LeakyReLU(0.2); the first
    three have stride 2, C512 stride 1. Each output value scores one overlapping 70x70 patch of the input
    as real or fake, so D has few parameters, runs on any image size and judges texture and style
    locally (Isola et al. 2017, §3.2.2). Keys (official): ``model.0``, ``model.2``, ``model.5``,
    ``model.8``, ``model.11``.

    Shapes: (B, input_nc, 256, 256) -> (B, 1, 30, 30); in general (B, 1, H/8 - 2, W/8 - 2).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        _check_norm(norm)
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):  # C128, C256: stride 2
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)  # C512: stride 1
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
                   norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))  # (B, 1, h, w): one score per patch
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def patch_receptive_field(n_layers: int = 3) -> int:
    """How many input pixels one output score of :class:`NLayerDiscriminator` sees: 70 for ``n_layers=3``.

    Each 4x4 convolution widens the field by (4 - 1) input steps of the layer, and one step of a layer is
    the product of the strides before it: 1 + 3 (1 + 2 + 4 + 8 + 8) = 70 for the layers' strides
    2, 2, 2, 1, 1 (``n_layers`` stride-2 convolutions, then two stride-1 ones).
    """
    strides = [2] * n_layers + [1, 1]
    field, jump = 1, 1
    for s in strides:
        field += (4 - 1) * jump
        jump *= s
    return field


# ============================================================================================
# 3. The image history pool (§4 "Training details"; Shrivastava et al. 2017)
# ============================================================================================
class ImagePool:
    """A buffer of the last ``size`` generated images that the discriminators are trained on.

    "To reduce model oscillation, we follow Shrivastava et al.'s strategy and update the discriminators
    using a history of generated images rather than the ones produced by the latest generators. We keep
    an image buffer that stores the 50 previously created images" (§4). As in the official code: until
    the pool is full every new image is stored and returned; after that each new image is, with
    probability 1/2, swapped for a random stored one (the old image is returned, the new one kept), and
    otherwise returned as is. ``size=0`` turns the pool off.

    The pool is training state: :meth:`state_dict` / :meth:`load_state_dict` save it with a checkpoint,
    so a resumed run draws the same images. Random draws use torch's global generator (saved by the loop).
    """

    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"pool size {size}: need 0 (off) or more")
        self.size = size
        self.images: list[torch.Tensor] = []  # each (1, C, H, W), detached

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) newly generated -> (B, C, H, W) to show the discriminator (no gradient)."""
        images = images.detach().float()
        if self.size == 0:
            return images
        out = []
        for image in images.split(1):  # (1, C, H, W) each
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(len(self.images), ()))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [im.cpu() for im in self.images]}

    def load_state_dict(self, state: dict[str, Any], device: str | torch.device = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [im.to(device) for im in state["images"]]


# ============================================================================================
# 4. Losses (§3): adversarial (least squares, §4), cycle consistency (Eq. 2), identity (§5.2)
# ============================================================================================
# Each term is one shared function of deepfake_lab.losses; the step (section 5) writes them out.
#
# * Adversarial, Eq. 1: L_GAN(G, D_Y, X, Y) = E_y[log D_Y(y)] + E_x[log(1 - D_Y(G(x)))]. §4 replaces the log
#   loss by least squares (Mao et al. 2017), which "is more stable during training and generates higher
#   quality results": G minimises E_x[(D_Y(G(x)) - 1)^2], which is ``lsgan_loss(D_Y(G(x)), True)`` with no
#   factor 1/2 (the official GANLoss); D_Y minimises E_y[(D_Y(y) - 1)^2] + E_x[D_Y(G(x))^2], halved "to slow
#   down the rate at which D learns" (Appendix 7.1), which is ``lsgan_d_loss(D_Y(y), D_Y(G(x)))``.
#   ``losses.lsgan_loss``'s docstring says where LSGAN's 1/2 lives.
# * Cycle consistency, Eq. 2, the idea of the paper: L_cyc(G, F) = E_x[|F(G(x)) - x|_1] + E_y[|G(F(y)) - y|_1].
#   Adversarial losses alone only match distributions: G could map every x to any one image of Y; asking that
#   translating there and back returns the input rules out most such mappings. ``l1_loss(F(G(x)), x)``.
# * Identity mapping, §5.2 (after Taigman et al. 2017): L_identity(G, F) = E_y[|G(y) - y|_1] + E_x[|F(x) - x|_1].
#   A real sample of the target domain should come back unchanged; this keeps the colours of the input
#   (without it, Monet paintings of daytime came out as sunsets). Weight 0.5 lambda: the official
#   ``--lambda_identity 0.5`` is relative to lambda. ``l1_loss(G(y), y)``.


# ============================================================================================
# 5. Configuration and the training step (§3.3 Eq. 3-4, §4 "Training details")
# ============================================================================================
@dataclass
class CycleGANConfig:
    """Hyper-parameters of one CycleGAN; the defaults are the paper's and the official code's.

    Networks: ``ngf``/``ndf`` filters in the first layer of G/D (64), ``n_blocks`` residual blocks (9 for
    256x256, 6 for 128x128 images), ``n_layers_d`` stride-2 layers of D (3: the 70x70 PatchGAN), ``norm``
    instance (the paper's, after Ulyanov et al.) or batch.
    Objective (Eq. 3): :math:`\\lambda` = ``lambda_cycle`` = 10 for each cycle, identity weight
    ``lambda_identity`` x lambda = 0.5 x 10. Optimiser (§4): Adam, lr 0.0002, betas (0.5, 0.999), batch 1,
    constant for the first half of training then linearly to zero (``decay_fraction`` = 0.5: 100 + 100
    epochs), ``pool_size`` 50. Data: resize to ``load_size`` 286, random crop ``crop_size`` 256, random
    horizontal flip (``preprocess`` as in :mod:`deepfake_lab.data.unpaired`).
    ``bf16_ok``: bf16 autocast keeps the demo model's held-out PSNR and SSIM within 1 % of fp32
    (``tests/test_precision.py``), so the measured policy may use it where it is faster (:mod:`deepfake_lab.device`).
    """

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    n_layers_d: int = 3
    norm: str = "instance"
    use_dropout: bool = False
    upsample: str = "transposed"
    init_gain: float = 0.02
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_fraction: float = 0.5
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    flip: bool = True
    #: DiffAugment policy for D_X's and D_Y's inputs, real and generated, in both steps (Zhao et al. 2020;
    #: :mod:`deepfake_lab.diffaugment`), e.g. ``"color,translation,cutout"``; empty: the paper's CycleGAN
    diffaugment: str = ""
    bf16_ok: bool = True

    def __post_init__(self):
        if self.diffaugment:
            DiffAugment(self.diffaugment)  # raises for an unknown policy, naming the allowed ones


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGANModel(LessonModel):
    r"""CycleGAN's two generators G: X -> Y and F: Y -> X, two discriminators D_X and D_Y, and one training step.

    The full objective (Eq. 3) and the game it defines (Eq. 4):

    .. math::

        \mathcal{L}(G, F, D_X, D_Y) = \mathcal{L}_{GAN}(G, D_Y, X, Y) + \mathcal{L}_{GAN}(F, D_X, Y, X)
                                     + \lambda\, \mathcal{L}_{cyc}(G, F)
                                     \;[+\; 0.5 \lambda\, \mathcal{L}_{identity}(G, F)]

        G^*, F^* = \arg\min_{G, F} \max_{D_X, D_Y} \mathcal{L}(G, F, D_X, D_Y)

    One step (:meth:`optimize_parameters`), as in the official code: first G and F together (D frozen),
    then D_X and D_Y together on images from the history pools, with D's objective divided by 2, which
    "slows down the rate at which D learns, relative to the rate of G" (Appendix 7.1).

    ``set_input`` takes a batch ``{"A": (B, 3, H, W), "B": (B, 3, H, W)}`` in [-1, 1] (A = X, B = Y).
    ``total_steps`` sizes the learning-rate schedule (the loop steps schedulers once per step).
    """

    kind: ClassVar[str] = "cyclegan"
    Config: ClassVar[type] = CycleGANConfig
    inference_nets: ClassVar[tuple[str, ...]] = ("G", "F")

    def __init__(self, config: CycleGANConfig | None = None, device: str | torch.device = "cpu",
                 precision: Precision | None = None, total_steps: int = 1000):
        config = config or CycleGANConfig()
        super().__init__(config, device, precision)
        c = config
        g_args = dict(ngf=c.ngf, n_blocks=c.n_blocks, norm=c.norm, use_dropout=c.use_dropout, upsample=c.upsample)
        self.nets = {
            "G": ResnetGenerator(c.input_nc, c.output_nc, **g_args),   # X -> Y (official G_A)
            "F": ResnetGenerator(c.output_nc, c.input_nc, **g_args),   # Y -> X (official G_B)
            "D_X": NLayerDiscriminator(c.input_nc, c.ndf, c.n_layers_d, c.norm),   # official D_B
            "D_Y": NLayerDiscriminator(c.output_nc, c.ndf, c.n_layers_d, c.norm),  # official D_A
        }
        for net in self.nets.values():
            init_weights(net, "normal", c.init_gain).to(self.device)
        G, F, D_X, D_Y = (self.nets[k] for k in ("G", "F", "D_X", "D_Y"))
        betas = (c.beta1, c.beta2)
        self.opts = {"G": torch.optim.Adam(itertools.chain(G.parameters(), F.parameters()), lr=c.lr, betas=betas),
                     "D": torch.optim.Adam(itertools.chain(D_X.parameters(), D_Y.parameters()), lr=c.lr, betas=betas)}
        decay = linear_decay(total_steps, max(1, round(total_steps * c.decay_fraction)))
        self.scheds = {k: torch.optim.lr_scheduler.LambdaLR(opt, decay) for k, opt in self.opts.items()}
        self.pool_x = ImagePool(c.pool_size)  # past F(y), shown to D_X
        self.pool_y = ImagePool(c.pool_size)  # past G(x), shown to D_Y
        #: T of DiffAugment: every image a discriminator sees, real or generated, goes through it
        self.augment = DiffAugment(c.diffaugment) if c.diffaugment else nn.Identity()

    # -- the three verbs ------------------------------------------------------------------------
    def set_input(self, batch: dict[str, torch.Tensor]) -> None:
        """``batch["A"]`` are real x (domain X), ``batch["B"]`` real y (domain Y); both (B, C, H, W) in [-1, 1]."""
        if not isinstance(batch, dict) or "A" not in batch or "B" not in batch:
            raise ValueError("CycleGAN.set_input: expected a dict batch {'A': images of X, 'B': images of Y}")
        self.real_x = batch["A"].to(self.device, non_blocking=True)
        self.real_y = batch["B"].to(self.device, non_blocking=True)

    def forward(self) -> None:
        """Both cycles: x -> G(x) -> F(G(x)) and y -> F(y) -> G(F(y))."""
        G, F = self.nets["G"], self.nets["F"]
        self.fake_y = G(self.real_x)   # G(x)        (official fake_B)
        self.rec_x = F(self.fake_y)    # F(G(x)) ~ x (official rec_A)
        self.fake_x = F(self.real_y)   # F(y)        (official fake_A)
        self.rec_y = G(self.fake_x)    # G(F(y)) ~ y (official rec_B)

    def optimize_parameters(self) -> dict[str, float]:
        """One step: update G and F on Eq. 3 with D fixed, then D_X and D_Y on past fakes. Returns the losses."""
        c = self.config
        G, F, D_X, D_Y = (self.nets[k] for k in ("G", "F", "D_X", "D_Y"))
        T = self.augment  # identity unless config.diffaugment

        # generators G and F: fool the discriminators, close both cycles, keep target-domain inputs unchanged
        _set_requires_grad([D_X, D_Y], False)
        self.opts["G"].zero_grad(set_to_none=True)
        with self.precision.autocast():
            self.forward()
            losses = {
                "G_gan": lsgan_loss(D_Y(T(self.fake_y)), True),   # (D_Y(G(x)) - 1)^2, no 1/2: the official GANLoss
                "F_gan": lsgan_loss(D_X(T(self.fake_x)), True),   # (D_X(F(y)) - 1)^2
                "cycle_x": c.lambda_cycle * l1_loss(self.rec_x, self.real_x),  # Eq. 2: |F(G(x)) - x|_1
                "cycle_y": c.lambda_cycle * l1_loss(self.rec_y, self.real_y),  # Eq. 2: |G(F(y)) - y|_1
            }
            if c.lambda_identity > 0:  # §5.2
                w = c.lambda_cycle * c.lambda_identity
                losses["idt_G"] = w * l1_loss(G(self.real_y), self.real_y)  # G(y) ~ y
                losses["idt_F"] = w * l1_loss(F(self.real_x), self.real_x)  # F(x) ~ x
            loss_gf = sum(losses.values())
        loss_gf.backward()
        self.opts["G"].step()

        # discriminators D_Y (real y vs G(x)) and D_X (real x vs F(y)), on images from the history pools
        _set_requires_grad([D_X, D_Y], True)
        self.opts["D"].zero_grad(set_to_none=True)
        fake_y = self.pool_y.query(self.fake_y)
        fake_x = self.pool_x.query(self.fake_x)
        with self.precision.autocast():  # D's objective halved (Appendix 7.1): lsgan_d_loss carries the 1/2
            losses["D_Y"] = lsgan_d_loss(D_Y(T(self.real_y)), D_Y(T(fake_y)))
            losses["D_X"] = lsgan_d_loss(D_X(T(self.real_x)), D_X(T(fake_x)))
        (losses["D_Y"] + losses["D_X"]).backward()
        self.opts["D"].step()
        return {k: float(v.detach()) for k, v in losses.items()}

    # -- hooks of the loop ------------------------------------------------------------------------
    def sample_images(self) -> torch.Tensor | None:
        """Rows x, G(x), F(G(x)) and y, F(y), G(F(y)) of the first image of the last batch: (6, C, H, W)."""
        if not hasattr(self, "fake_y"):
            return None
        row = [self.real_x, self.fake_y, self.rec_x, self.real_y, self.fake_x, self.rec_y]
        return torch.cat([t[:1].detach().float().cpu() for t in row])

    def extra_state(self) -> dict[str, Any]:
        return {"pool_x": self.pool_x.state_dict(), "pool_y": self.pool_y.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool_x" in state:
            self.pool_x.load_state_dict(state["pool_x"], self.device)
            self.pool_y.load_state_dict(state["pool_y"], self.device)


#: named settings: (model config, loop config). ``default`` is the paper's (batch 1, 256 px, 200 epochs
#: when ``--steps`` is not given); ``demo`` trains on this package's embedded ``face2cartoon`` set (128 px
#: faces <-> cartoons) on a laptop CPU: 16 filters, 6 blocks (the paper's count at 128 px), batch 2 of the
#: whole 128x128 crops with flips (a 0.5 M-parameter generator, 1 MB in fp16), and two measured departures
#: (the third, BatchNorm statistics recomputed after training, is :func:`recompute_batchnorm_statistics`).
#: BatchNorm (the official ``--norm batch``) instead of InstanceNorm: InstanceNorm subtracts each feature
#: map's mean over the image, so a small generator cannot tell the overall brightness and colour it has to
#: keep or change (on the earlier photo2winter tiles an InstanceNorm run stayed below doing nothing).
#: Resize-convolutions instead of transposed ones (:class:`ResizeConv2d`: an 800-step photo2winter run with
#: the paper's transposed convolutions kept a checkerboard and lost to doing nothing on SSIM).
PRESETS: dict[str, tuple[CycleGANConfig, LoopConfig]] = {
    "default": (CycleGANConfig(),
                LoopConfig(steps=0, batch_size=1, out_dir="runs/cyclegan", log_every=100, sample_every=1000,
                           checkpoint_every=5000)),
    "demo": (CycleGANConfig(ngf=16, ndf=32, n_blocks=6, load_size=128, crop_size=128, preprocess="crop",
                            norm="batch", upsample="resize"),
             LoopConfig(steps=3000, batch_size=2, out_dir="runs/cyclegan-demo", log_every=20, sample_every=200,
                        checkpoint_every=100)),
}
#: epochs of the official schedule (100 constant + 100 decaying) used when ``default`` gets no ``--steps``
DEFAULT_EPOCHS = 200
#: steps in quick mode (DEEPFAKE_LAB_QUICK=1: CI and notebook runs)
QUICK_STEPS = 20
#: the demo weights shipped with the package
ASSETS = Path(__file__).resolve().parent / "assets" / "weights"


def demo_weights_path(data: str = "face2cartoon") -> Path:
    """The demo generators (G and F) shipped with the package, trained on the embedded ``data`` set."""
    return ASSETS / f"cyclegan-{data}.safetensors"


# ============================================================================================
# 6. After training: precise BatchNorm statistics (the demo preset's BatchNorm)
# ============================================================================================
@torch.no_grad()
def recompute_batchnorm_statistics(model: CycleGANModel, dataset, batch_size: int = 4, epochs: int = 4,
                                   seed: int = 0) -> int:
    """Replace G's and F's BatchNorm running statistics by averages over the training data ("precise
    BatchNorm", Wu and Johnson 2021, "Rethinking 'Batch' in BatchNorm", §3), with the weights frozen.

    During GAN training the running averages (momentum 0.1) trail weights that keep moving, so at the end
    they describe neither the final network nor the data; in eval mode that shows as noise and colour casts.
    ``epochs`` passes over the training set (its random crops and flips, seeded) in train mode with
    ``momentum=None`` (a plain average) fix them: G sees domain X, F domain Y, as in training. Use the
    training batch size: the network learned to work with the statistics of batches that size. A no-op for
    InstanceNorm, which keeps no statistics. Returns the number of images used.
    """
    nets = {"G": ("A", model.nets["G"]), "F": ("B", model.nets["F"])}
    norms = [m for _, net in nets.values() for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if not norms:
        return 0
    saved = [(m, m.momentum) for m in norms]
    modes = {id(net): net.training for _, net in nets.values()}
    seen = 0
    with torch.random.fork_rng(devices=[]):  # seeded crops, and the caller's random state left alone
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the passes
            for _, net in nets.values():
                net.train()
            for _ in range(epochs):
                for batch in loader:
                    for key, net in nets.values():
                        net(batch[key].to(model.device))
                    seen += batch["A"].shape[0]
        finally:
            for m, momentum in saved:
                m.momentum = momentum
            for _, net in nets.values():
                net.train(modes[id(net)])
    return seen


# ============================================================================================
# 7. This lesson's weights files: export, read back
# ============================================================================================
def export_generators(model: CycleGANModel, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write G and F (not the discriminators) as fp16 safetensors, kind ``cyclegan``: the demo-weights format."""
    return save_weights(path, {k: model.nets[k] for k in model.inference_nets}, model.kind,
                        config_to_dict(model.config), dtype=torch.float16, extra=extra)


def generator_from_weights(nets: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any], direction: str = "AtoB",
                           where: str = "this CycleGAN file") -> tuple[ResnetGenerator, CycleGANConfig]:
    """The generator that a ``cyclegan`` weights file (read by :func:`~deepfake_lab.checkpoints.load_weights`)
    holds for ``direction``: AtoB is G (X -> Y), BtoA is F (Y -> X). In eval mode, fp32, on the CPU.

    The one place a file's tensors become a network: :func:`load_generator` and the ``translate`` runner
    (:func:`deepfake_lab.importers.cyclegan.translator`) both call it. ``where`` names the file in errors.
    """
    name = {"AtoB": "G", "BtoA": "F"}.get(direction)
    if name is None:
        raise ValueError(f"--direction {direction!r}: use AtoB (G: X -> Y) or BtoA (F: Y -> X)")
    if name not in nets:
        raise CheckpointError(f"{where}: holds only {', '.join(sorted(nets))}, not {name} ({direction}); "
                              f"use --direction {'BtoA' if name == 'G' else 'AtoB'}")
    config = config_from_dict(CycleGANConfig, meta.get("config", {}))
    in_nc, out_nc = (config.input_nc, config.output_nc) if name == "G" else (config.output_nc, config.input_nc)
    G = ResnetGenerator(in_nc, out_nc, config.ngf, config.n_blocks, config.norm, config.use_dropout, config.upsample)
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in nets[name].items()})
    return G.eval(), config


def load_generator(path: str | Path, direction: str = "AtoB", device: str | torch.device = "cpu"
                   ) -> tuple[ResnetGenerator, CycleGANConfig]:
    """One generator of a weights file of this package, in eval mode, fp32 (see :func:`generator_from_weights`).

    ``path``: exported demo weights, a training checkpoint, an imported official file, or a run folder
    (its latest checkpoint). An official ``.pth`` is refused with the way to import it.
    """
    nets, meta, path = open_weights(path, "cyclegan", official_hint=(
        "import it with `deepfake_lab.importers.cyclegan.import_official_generator(path)`, or convert it once with "
        f"`deepfake-lab import cyclegan {Path(path).name} -o G.safetensors` and load that"))
    G, config = generator_from_weights(nets, meta, direction, str(path))
    return G.to(device), config


def gpu_check_generator() -> tuple[nn.Module, torch.Tensor]:
    """(network, example input) for the CUDA bf16-vs-fp32 check: the paper's generator (9 blocks) on a 256x256 pair."""
    torch.manual_seed(0)
    return ResnetGenerator().eval(), torch.rand(2, 3, 256, 256) * 2 - 1
