"""Lesson 3: pix2pix, image-to-image translation with a conditional GAN.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017.
Given pairs (x, y) (an edge map and its photo, labels and their street scene), learn G: x -> y. An L1
loss alone learns the *average* plausible y, which is blurry; a discriminator that sees the pair
(x, y) and judges whether y is a real photo *for this x* pushes G towards sharp, plausible detail.

This file reads in the paper's order:

1. :class:`UnetSkipLevel` and :class:`UnetGenerator`: the "U-Net" generator with skip connections (§3.2.1);
2. :func:`conditional_discriminator`: the conditional "PatchGAN", 70x70 patches of (x, y) stacked (§3.2.2);
3. the objective (Eq. 1-4): :func:`discriminator_loss`, :func:`generator_loss`, weight lambda = 100;
4. :class:`Pix2Pix`: one training step, D then G (§3.3), on the shared loop (:func:`deepfake_lab.train.fit`);
5. inference and the paper's test-time convention (:func:`translate`, :func:`generator_mode`), and this
   lesson's weights files (:func:`export_weights`, :func:`generator_from_weights`, :func:`load_generator`).

Around it, elsewhere: importing the official PyTorch weights
(:func:`deepfake_lab.importers.pix2pix.load_official_generator`, ``deepfake-lab import pix2pix``), measuring
results (:func:`deepfake_lab.evaluation.evaluate`, :func:`~deepfake_lab.evaluation.face_task_report`), the
training data (:func:`deepfake_lab.data.paired.open_paired`) and the command line (the lesson's row in
:mod:`deepfake_lab.lessons`: ``deepfake-lab train pix2pix``, ``translate``).

Precision: the measured policy of :mod:`deepfake_lab.device` decides (fp32 on CPUs without native bf16, where
the U-Net is 8.6x *slower* in bf16; ``benchmarks/bench_pix2pix.py`` measures it); ``bf16_ok`` says whether bf16
keeps the demo model within its parity bound (``tests/test_precision.py``).

Networks and keys match the official code (junyanz/pytorch-CycleGAN-and-pix2pix), so its
``latest_net_G.pth`` files load unchanged; where the official code behaves in a way that is easy to
miss, a comment says so.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .blocks import init_weights, norm_layer
from .checkpoints import CheckpointError, save_weights
from .cyclegan import NLayerDiscriminator
from .diffaugment import DiffAugment
from .losses import l1_loss, nonsaturating_d_loss, nonsaturating_g_loss
from .train import LessonModel, LoopConfig, config_from_dict, config_to_dict, linear_decay
from .run_folder import open_weights

__all__ = ["Pix2PixConfig", "UnetSkipLevel", "UnetGenerator", "conditional_discriminator", "discriminator_loss",
           "generator_loss", "Pix2Pix", "PRESETS", "UNET_LEVELS", "build_generator", "translate", "generator_mode",
           "export_weights", "generator_from_weights", "load_generator", "gpu_check_generator"]

#: official generator names -> number of down-samplings (``unet_256``: 256 -> 1 pixel at the bottleneck)
UNET_LEVELS = {"unet_256": 8, "unet_128": 7}


# --------------------------------------------------------------------------------------------
# Configuration: the paper's defaults
# --------------------------------------------------------------------------------------------
@dataclass
class Pix2PixConfig:
    """pix2pix hyper-parameters; the defaults are the paper's and the official code's (``train.py`` flags).

    ``objective`` selects the paper's ablation (Table 1): ``"l1+cgan"`` (the method), ``"l1"``
    (regression only, no discriminator), ``"cgan"`` (adversarial only, lambda = 0).
    """

    input_nc: int = 3
    output_nc: int = 3
    #: generator: ``unet_256`` (8 levels, for 256x256) or ``unet_128`` (7 levels)
    netG: str = "unet_256"
    ngf: int = 64
    ndf: int = 64
    #: PatchGAN depth: 3 -> 70x70 receptive field (the paper's choice, §4.4)
    n_layers_D: int = 3
    norm: str = "batch"
    #: dropout in the three inner decoder levels (and the only noise z; §3.2)
    dropout: float = 0.5
    objective: str = "l1+cgan"
    lambda_L1: float = 100.0
    #: weight of a VGG feature loss on G (pix2pixHD's, Wang et al. 2018, lambda_feat 10); 0: the paper's pix2pix
    lambda_vgg: float = 0.0
    #: DiffAugment policy for D's input pairs (one draw for x and y of a pair; Zhao et al. 2020), e.g.
    #: ``"color,translation,cutout"``; empty: the paper's pix2pix
    diffaugment: str = ""
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    #: fraction of the run with linearly decaying learning rate (official: 100 of 100 + 100 epochs)
    decay_fraction: float = 0.5
    init_gain: float = 0.02
    #: data: resize to load_size, random crop_size crop, flip (official 286 / 256)
    load_size: int = 286
    crop_size: int = 256
    direction: str = "AtoB"
    #: bf16 autocast keeps the demo model within its parity bound (tests/test_precision.py); speed is measured
    bf16_ok: bool = True

    def __post_init__(self):
        if self.netG not in UNET_LEVELS:
            raise ValueError(f"netG {self.netG!r}: use one of {', '.join(UNET_LEVELS)}")
        if self.objective not in ("l1+cgan", "l1", "cgan"):
            raise ValueError(f"objective {self.objective!r}: use 'l1+cgan' (pix2pix), 'l1' or 'cgan' (ablations)")
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"norm {self.norm!r}: use batch (official) or instance")
        if self.direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction {self.direction!r}: use AtoB or BtoA")
        if self.lambda_vgg < 0:
            raise ValueError(f"lambda_vgg {self.lambda_vgg} (--lambda-vgg): need 0 (off) or a positive weight "
                             "(pix2pixHD: 10)")
        if self.diffaugment:
            DiffAugment(self.diffaugment)  # raises for an unknown policy, naming the allowed ones

    @property
    def num_downs(self) -> int:
        return UNET_LEVELS[self.netG]


# --------------------------------------------------------------------------------------------
# 1. Generator: the U-Net (§3.2.1, Fig. 3; Ronneberger et al. 2015)
# --------------------------------------------------------------------------------------------
class UnetSkipLevel(nn.Module):
    """One level of the U-Net: down-sample, the levels inside, up-sample, and the skip connection.

    The U-Net is built from the inside out, each level wrapping the next (the official
    ``UnetSkipConnectionBlock``, hence the nested keys ``model.model.1.model.3.model...``)::

        x ──LeakyReLU──┬──────────────────────────────────────────────┐ skip
                       └─ Conv4x4/2 ─ BN ─ [inner levels] ─ ReLU ─ ConvT4x4/2 ─ BN (─ Dropout) ─ cat ─> out

    Shapes (middle level): (B, outer, H, W) -> (B, 2*outer, H, W): the skip's ``outer`` channels and
    the decoder's ``outer`` channels, concatenated (the paper: "concatenate all channels at layer i
    with those at layer n - i").

    * outermost: no activation or norm before the first convolution, no skip; the decoder ends in
      ConvT -> tanh: (B, input_nc, H, W) -> (B, output_nc, H, W).
    * innermost (the 1x1 bottleneck at 256): no norm after its convolution (at batch 1 a norm of a
      1x1 map would be meaningless), no inner level.

    The convolutions have no bias where a BatchNorm follows (its shift does that job).

    *The skip carries LeakyReLU(x)*: the official code applies the level's first LeakyReLU
    **in place** to ``x`` before ``torch.cat([x, model(x)])`` reads it, so the concatenated skip is
    the activated tensor. That is what the official weights were trained with; this class applies
    the activation once and uses it for both paths, which gives the same numbers.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        self.outermost, self.innermost = outermost, innermost
        input_nc = outer_nc if input_nc is None else input_nc
        bias = norm != "batch"  # the official code: bias only for InstanceNorm (no affine shift)

        def norm_(channels: int) -> nn.Module:
            return norm_layer(norm, channels)  # BatchNorm2d, or InstanceNorm2d without parameters

        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)  # H -> H/2
        if outermost:
            # (B, in, H, W) -> conv -> [inner] -> (B, 2*ngf, H/2, W/2) -> ReLU, ConvT -> (B, out, H, W) -> tanh
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(), up_conv, nn.Tanh()]
        elif innermost:
            # keys: 0 LeakyReLU, 1 conv, 2 ReLU, 3 ConvT, 4 BN
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(), up_conv, norm_(outer_nc)]
        else:
            # keys: 0 LeakyReLU, 1 conv, 2 BN, 3 inner level, 4 ReLU, 5 ConvT, 6 BN, (7 Dropout)
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, norm_(inner_nc), submodule, nn.ReLU(), up_conv, norm_(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        x = self.model[0](x)  # LeakyReLU(0.2): the skip gets the activated x, as in the official code
        h = x
        for layer in list(self.model)[1:]:
            h = layer(h)  # (B, outer, H, W) -> ... -> (B, outer, H, W)
        return torch.cat([x, h], dim=1)  # (B, 2*outer, H, W)


class UnetGenerator(nn.Module):
    """The pix2pix generator: an encoder-decoder with skips between mirrored levels (§3.2.1, Fig. 3).

    Encoder C64-C128-C256-C512-C512-C512-C512-C512 (unet_256, 8 levels; the paper's appendix 6.1.1),
    decoder CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 counting the skip channels, dropout 0.5 in
    the three decoder levels nearest the bottleneck ("D"). Channels: ``ngf * min(2**i, 8)``.
    ``num_downs`` down-samplings need H and W to be multiples of ``2**num_downs``.

    Shapes: (B, input_nc, H, W) -> (B, output_nc, H, W), values in (-1, 1).
    Official parameter counts (ngf 64, BatchNorm): unet_256 54,413,955; unet_128 41,828,995.
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs {num_downs}: the official U-Net has at least 5 levels")
        self.num_downs = num_downs
        level = UnetSkipLevel(ngf * 8, ngf * 8, norm=norm, innermost=True)  # the bottleneck
        for _ in range(num_downs - 5):  # ngf*8 levels with dropout (3 of them in unet_256)
            level = UnetSkipLevel(ngf * 8, ngf * 8, submodule=level, norm=norm, dropout=dropout)
        level = UnetSkipLevel(ngf * 4, ngf * 8, submodule=level, norm=norm)
        level = UnetSkipLevel(ngf * 2, ngf * 4, submodule=level, norm=norm)
        level = UnetSkipLevel(ngf, ngf * 2, submodule=level, norm=norm)
        self.model = UnetSkipLevel(output_nc, ngf, input_nc=input_nc, submodule=level, outermost=True, norm=norm)

    def check_size(self, height: int, width: int) -> None:
        """Raise a clear error when (height, width) cannot pass through every level."""
        m = 2 ** self.num_downs
        if height % m or width % m or height < m or width < m:
            name = {8: "unet_256", 7: "unet_128"}.get(self.num_downs, f"a {self.num_downs}-level U-Net")
            raise ValueError(
                f"input {width}x{height}: {name} halves the size {self.num_downs} times, so height and width must "
                f"be multiples of {m} ({m}, {2 * m}, {3 * m}, ...); resize or crop to e.g. {m}x{m}"
                + (", or use unet_128 for 128x128" if self.num_downs > 7 and max(height, width) < m else ""))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(x.shape[-2], x.shape[-1])
        return self.model(x)  # (B, in, H, W) -> (B, out, H, W)


# --------------------------------------------------------------------------------------------
# 2. Discriminator: the conditional PatchGAN (§3.2.2)
# --------------------------------------------------------------------------------------------
def conditional_discriminator(config: "Pix2PixConfig") -> NLayerDiscriminator:
    """The conditional PatchGAN: a fully convolutional D that scores every 70x70 patch (§3.2.2).

    It is CycleGAN's PatchGAN (:class:`deepfake_lab.cyclegan.NLayerDiscriminator`, C64-C128-C256-C512
    then a 1-channel convolution; appendix 6.1.2) with two changes that make it pix2pix's:

    * **conditional**: it sees the input and the output stacked, ``cat(x, y)`` with
      ``input_nc + output_nc`` (6) channels, so it judges whether y is right *for this x*, not only
      whether y looks real (an unconditional D cannot see a mismatch; the paper's Table 1 and Fig. 4);
    * BatchNorm instead of InstanceNorm (the official pix2pix default, ``--norm batch``).

    Shapes: (B, 6, 256, 256) -> (B, 1, 30, 30) logits. Official count (6 channels, BatchNorm, ndf 64):
    2,768,705. Keys as the official ``NLayerDiscriminator``: ``model.0`` conv, ``model.2``/``3`` conv/BN, ...
    """
    return NLayerDiscriminator(config.input_nc + config.output_nc, config.ndf, config.n_layers_D, config.norm)


# --------------------------------------------------------------------------------------------
# 3. The objective (§3.1, Eq. 1-4)
# --------------------------------------------------------------------------------------------
def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """D's side of the conditional GAN loss (Eq. 1), halved as in the paper's §3.3.

    .. math:: L_D = \\tfrac12\\big(-\\mathbb{E}_{x,y}[\\log D(x, y)] - \\mathbb{E}_{x,z}[\\log(1 - D(x, G(x, z)))]\\big)

    "We divide the objective by 2 while optimizing D, which slows down the rate at which D learns
    relative to G." Scores are logits; the means run over the batch and every patch.
    """
    return 0.5 * nonsaturating_d_loss(real_scores, fake_scores)


def generator_loss(fake_scores: torch.Tensor | None, fake: torch.Tensor, real: torch.Tensor,
                   lambda_L1: float = 100.0, perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                   lambda_vgg: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's objective (Eq. 4): fool D, and stay near the target in L1.

    .. math:: G^* = \\arg\\min_G \\max_D \\mathcal{L}_{cGAN}(G, D) + \\lambda\\, \\mathcal{L}_{L1}(G),
              \\quad \\mathcal{L}_{L1} = \\mathbb{E}_{x,y,z}\\lVert y - G(x, z)\\rVert_1

    The adversarial term is the non-saturating one, :math:`-\\log D(x, G(x, z))` (§3.3).
    ``fake_scores=None`` leaves it out (the "L1 only" ablation); ``lambda_L1=0`` leaves out L1
    ("cGAN only"). With ``perceptual`` (a :class:`~deepfake_lab.perceptual.PerceptualLoss`) and ``lambda_vgg``
    > 0, pix2pixHD's feature term :math:`\\lambda_{vgg} \\sum_i w_i \\lVert N_i(y) - N_i(G(x, z))\\rVert_1`
    (Wang et al. 2018, §3.2) is added: it charges wrong texture where L1 only charges wrong pixel values.
    Returns (total, {"G_GAN": ..., "G_L1": ..., "G_VGG": ...}).
    """
    parts: dict[str, torch.Tensor] = {}
    total = fake.new_zeros(())
    if fake_scores is not None:
        parts["G_GAN"] = nonsaturating_g_loss(fake_scores)
        total = total + parts["G_GAN"]
    if lambda_L1:
        parts["G_L1"] = l1_loss(fake, real)
        total = total + lambda_L1 * parts["G_L1"]
    if perceptual is not None and lambda_vgg:
        parts["G_VGG"] = perceptual(fake, real)
        total = total + lambda_vgg * parts["G_VGG"]
    return total, parts


# --------------------------------------------------------------------------------------------
# 4. The model and its training step (§3.3)
# --------------------------------------------------------------------------------------------
def build_generator(config: Pix2PixConfig) -> UnetGenerator:
    """The U-Net that ``config`` describes (weights not initialised)."""
    return UnetGenerator(config.input_nc, config.output_nc, config.num_downs, config.ngf, config.norm, config.dropout)


class Pix2Pix(LessonModel):
    """pix2pix on the shared loop: ``G`` (U-Net) and ``D`` (conditional PatchGAN).

    Batches are dicts with ``"A"`` (input x) and ``"B"`` (target y), (B, 3, H, W) in [-1, 1];
    the data set has already applied ``direction``. Optimisers: Adam(2e-4, betas (0.5, 0.999)) each;
    learning rate constant, then linear to 0 over the last ``decay_fraction`` of ``total_steps``.

    The step calls the networks through ``self.nets["G"]`` / ``self.nets["D"]``, which the loop wraps
    for DDP under torchrun (gradients averaged over ranks); :attr:`G` and :attr:`D` are the bare
    networks, for reading (hooks, exporting, sampling).
    """

    kind = "pix2pix"
    Config = Pix2PixConfig
    inference_nets = ("G",)

    def __init__(self, config: Pix2PixConfig | None = None, device: str | torch.device = "cpu", precision=None,
                 total_steps: int = 1000):
        config = config or Pix2PixConfig()
        super().__init__(config, device, precision)
        c = config
        self.nets["G"] = init_weights(build_generator(c), "normal", c.init_gain).to(self.device)
        self.opts["G"] = torch.optim.Adam(self.nets["G"].parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        self.use_gan = c.objective in ("l1+cgan", "cgan")
        self.lambda_L1 = 0.0 if c.objective == "cgan" else c.lambda_L1
        self.perceptual = None  # frozen ImageNet VGG16, not trained, not saved
        if c.lambda_vgg:
            from .perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss.pix2pixhd().to(self.device)
        self.augment = DiffAugment(c.diffaugment) if c.diffaugment else None  # T, for D's inputs only
        if self.use_gan:
            self.nets["D"] = init_weights(conditional_discriminator(c), "normal", c.init_gain).to(self.device)
            self.opts["D"] = torch.optim.Adam(self.nets["D"].parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        decay = linear_decay(total_steps, max(1, int(round(total_steps * c.decay_fraction))))
        self.scheds = {name: torch.optim.lr_scheduler.LambdaLR(opt, decay) for name, opt in self.opts.items()}
        self.real_A = self.real_B = self.fake_B = None

    @property
    def G(self) -> UnetGenerator:
        """The generator itself (not its DDP wrapper)."""
        return _bare(self.nets["G"])

    @property
    def D(self) -> NLayerDiscriminator:
        """The discriminator itself (not its DDP wrapper); only with a GAN objective."""
        return _bare(self.nets["D"])

    def set_input(self, batch: dict) -> None:
        self.real_A = batch["A"].to(self.device, non_blocking=True)  # x: (B, 3, H, W)
        self.real_B = batch["B"].to(self.device, non_blocking=True)  # y: (B, 3, H, W)

    def forward(self) -> torch.Tensor:
        with self.precision.autocast():
            self.fake_B = self.nets["G"](self.real_A)  # G(x, z): z is the dropout noise
        return self.fake_B

    def optimize_parameters(self) -> dict[str, float]:
        """One step, D then G, as the official ``optimize_parameters``: forward once, update D on
        (x, y) vs (x, G(x)) with G(x) detached, then update G against the *updated* D."""
        self.forward()
        logs: dict[str, float] = {}
        if self.use_gan:
            D = self.nets["D"]
            D.requires_grad_(True)
            self.opts["D"].zero_grad(set_to_none=True)
            with self.precision.autocast():
                fake_AB = self._pair(self.real_A, self.fake_B.detach())  # (B, 6, H, W): D sees the pair
                real_AB = self._pair(self.real_A, self.real_B)
                loss_D = discriminator_loss(D(real_AB).float(), D(fake_AB).float())
            loss_D.backward()
            self.opts["D"].step()
            logs["D"] = loss_D.item()
            D.requires_grad_(False)  # G's step needs D's gradients w.r.t. its input only
        self.opts["G"].zero_grad(set_to_none=True)
        with self.precision.autocast():
            scores = self.nets["D"](self._pair(self.real_A, self.fake_B)).float() if self.use_gan else None
            loss_G, parts = generator_loss(scores, self.fake_B.float(), self.real_B, self.lambda_L1, self.perceptual,
                                           self.config.lambda_vgg)
        loss_G.backward()
        self.opts["G"].step()
        logs.update({k: v.item() for k, v in parts.items()})
        logs["G"] = loss_G.item()
        return logs

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """D's input: x and y stacked on channels, (B, 6, H, W); with DiffAugment, one draw of T for both."""
        if self.augment is not None:
            x, y = self.augment(x, y)
        return torch.cat([x, y], 1)

    def sample_images(self):
        """A grid with one row per item (up to 4 of the current batch): input x | output G(x) | target y."""
        from .viz import to_grid_image

        if self.real_A is None:
            return None
        n = min(4, self.real_A.shape[0])
        with torch.no_grad():
            fake = self.G(self.real_A[:n]).float()
        rows = torch.cat([torch.stack([self.real_A[i], fake[i], self.real_B[i]]) for i in range(n)])  # (3n, C, H, W)
        return to_grid_image(rows.cpu(), nrow=3)


def _bare(net: nn.Module) -> nn.Module:
    """``net`` without the DistributedDataParallel wrapper the loop may have put around it."""
    return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net


# --------------------------------------------------------------------------------------------
# 5. Inference, the paper's test-time convention, this lesson's weights files
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def generator_mode(G: nn.Module, mode: str = "eval"):
    """Put ``G`` in a test-time mode for the ``with`` block, then restore it exactly.

    * ``"eval"``: BatchNorm uses its running statistics, dropout off: deterministic; one image's
      output does not depend on the others in its batch.
    * ``"official"``: the paper's convention (§3.3, "At inference time, we run the generator net in
      exactly the same manner as during the training phase"): dropout **on** (the noise z) and
      BatchNorm with the statistics of the *test batch*, which at batch size 1 is instance
      normalisation. The official ``test.py`` runs this way unless ``--eval`` is given, and the
      released weights are meant to run so. Outputs are random (seed torch for repeatability).
      The running statistics are saved and put back, so this mode does not change the model.
    """
    if mode not in ("eval", "official"):
        raise ValueError(f"test-time mode {mode!r}: use 'eval' (running BatchNorm statistics, no dropout) or "
                         "'official' (batch statistics and dropout, as the paper and the official test.py)")
    was_training = G.training
    buffers = {k: v.clone() for k, v in G.state_dict().items() if "running_" in k or "num_batches" in k}
    G.train(mode == "official")
    try:
        yield G
    finally:
        G.train(was_training)
        if buffers:
            G.load_state_dict(buffers, strict=False)


@torch.no_grad()
def translate(G: nn.Module, images: torch.Tensor, mode: str = "eval", batch_size: int = 8) -> torch.Tensor:
    """Run ``G`` on (N, C, H, W) images in [-1, 1]; returns (N, output_nc, H, W) in [-1, 1] (fp32, CPU).

    ``mode`` is ``"eval"`` or ``"official"`` (see :func:`generator_mode`). In ``"official"`` mode every image
    is its own batch (the official test.py uses batch size 1), so its BatchNorm sees only itself.
    """
    device = next(G.parameters()).device
    outs = []
    step = 1 if mode == "official" else batch_size
    with generator_mode(G, mode):
        for i in range(0, images.shape[0], step):
            outs.append(G(images[i:i + step].to(device)).float().cpu())
    return torch.cat(outs)


def export_weights(model_or_G, config: Pix2PixConfig, path: str | Path, details: dict | None = None) -> Path:
    """Write the generator alone as fp16 safetensors (kind ``pix2pix``) for the app, ``translate`` and demos."""
    G = model_or_G.G if isinstance(model_or_G, Pix2Pix) else model_or_G
    return save_weights(path, {"G": G}, "pix2pix", config_to_dict(config), dtype=torch.float16, extra=details)


def generator_from_weights(nets: dict[str, dict[str, torch.Tensor]], meta: dict,
                           where: str = "this pix2pix file") -> tuple[UnetGenerator, Pix2PixConfig]:
    """The U-Net of a ``pix2pix`` weights file (read by :func:`~deepfake_lab.checkpoints.load_weights`), in eval
    mode, fp32, on the CPU. The one place a file's tensors become a network: :func:`load_generator` and the
    ``translate`` runner (:func:`deepfake_lab.importers.pix2pix.translator`) both call it."""
    if "G" not in nets:
        raise CheckpointError(f"{where}: holds {', '.join(sorted(nets)) or 'no networks'}, no generator G")
    config = config_from_dict(Pix2PixConfig, meta.get("config", {}))
    G = build_generator(config)
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in nets["G"].items()})
    return G.eval(), config


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[UnetGenerator, Pix2PixConfig]:
    """Load a pix2pix generator from a weights file of this package (exported weights, a training checkpoint,
    or a run folder: its latest checkpoint). Returns (G in eval mode, fp32; config).

    An official ``.pth`` is refused with the way to import it.
    """
    nets, meta, path = open_weights(path, "pix2pix", official_hint=(
        "import it with `deepfake_lab.importers.pix2pix.load_official_generator(path)`, or convert it once with "
        f"`deepfake-lab import pix2pix {Path(path).name} -o G.safetensors` and load that"))
    G, config = generator_from_weights(nets, meta, str(path))
    return G.to(device), config


# --------------------------------------------------------------------------------------------
# Presets: the paper's settings and the CPU demo
# --------------------------------------------------------------------------------------------
#: named configurations (config, loop, data): ``default`` is the paper's (its length, 200 epochs, is set from the
#: data set size when ``--steps`` is not given); ``demo`` trains the embedded face task in about an hour on both
#: cores of a native-bf16 CPU (7,622 CPU s, bf16): a narrow unet_128 (2.6 M parameters, 5.2 MB in fp16), PatchGAN
#: (ndf 16), the paper's random jitter (resize to 143, random 128 crop, flip) and pix2pixHD's VGG feature term
#: (``lambda_vgg`` 10) for 6,400 steps. Against 4,800 steps without jitter, held-out LPIPS-Alex (a network the loss
#: does not use) fell from 0.125 to 0.090 (``assets/weights/pix2pix-carphone-edges.md``); jitter had hurt only in
#: the short runs of ``assets/weights/pix2pix-ablation.md``
PRESETS: dict[str, tuple[Pix2PixConfig, LoopConfig, str]] = {
    "default": (Pix2PixConfig(), LoopConfig(steps=0, batch_size=1, out_dir="runs/pix2pix", sample_every=1000,
                                             checkpoint_every=5000, log_every=50), "carphone-edges"),
    "demo": (Pix2PixConfig(netG="unet_128", ngf=16, ndf=16, load_size=143, crop_size=128, lambda_vgg=10.0),
             LoopConfig(steps=6400, batch_size=4, out_dir="runs/pix2pix-demo", sample_every=200, checkpoint_every=200,
                        log_every=25), "carphone-edges"),
}


def gpu_check_generator() -> tuple[nn.Module, torch.Tensor]:
    """(network, example input) for the CUDA bf16-vs-fp32 check: the official unet_256 on two 256x256 images,
    in eval mode (BatchNorm running statistics, no dropout) so both precisions compute the same function."""
    torch.manual_seed(0)
    return build_generator(Pix2PixConfig()).eval(), torch.rand(2, 3, 256, 256) * 2 - 1
