"""Lesson 1: generative adversarial networks, from the first MLP GAN to DCGAN.

Read in the papers' order:

1. Goodfellow et al. 2014, "Generative Adversarial Nets": a generator :math:`G(z)` and a
   discriminator :math:`D(x)` play the minimax game

   .. math:: \\min_G \\max_D\\ \\mathbb{E}_{x\\sim p_{data}}[\\log D(x)] + \\mathbb{E}_{z\\sim p_z}[\\log(1 - D(G(z)))]

   with multilayer perceptrons (:class:`MLPGenerator`, :class:`MLPDiscriminator`), alternating one
   step of D and one of G (the paper's Algorithm 1 with k = 1).
2. Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional GANs" (DCGAN):
   the same game with all-convolutional networks (:class:`DCGANGenerator`, :class:`DCGANDiscriminator`)
   and the recipe that made GANs train reliably on images (§3-4).
3. The losses people use instead of the original (non-saturating, LSGAN, hinge, WGAN-GP) are in
   :mod:`deepfake_lab.losses`; :class:`GANConfig` picks one by name.
4. A categorical code in the noise (InfoGAN, AC-GAN: ``code``), so that a sample is one digit and not a
   blend of two: :mod:`deepfake_lab.gan_codes`.

The models train on 2-D Gaussian mixtures (:mod:`deepfake_lab.data.toy`), where mode collapse can be
seen and counted, and on real handwritten digits (:mod:`deepfake_lab.data.digits`);
:mod:`deepfake_lab.gan_metrics` measures both.

    deepfake-lab train gan --data ring8                      # MLP GAN on 8 Gaussians, about a minute
    deepfake-lab train gan --data ring8 --preset collapse    # the same recipe, 16-D noise: mode collapse
    deepfake-lab train gan --data digits --preset demo       # DCGAN on digits, a few CPU minutes
    deepfake-lab sample --model runs/gan-digits -o digits.png
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from . import checkpoints as ckpt
from .blocks import ConvNormAct, DownBlock, UpBlock, init_weights, mlp_layer, standing_statistics
from .device import Precision
from .diffaugment import DiffAugment
from .distributed import unwrap
from .gan_codes import CodedDCGANDiscriminator, CodedDCGANGenerator, check_code, code_of, split_scores
from .losses import LOSSES, code_loss, d_loss, g_loss, gradient_penalty
from .settings import demo_weights
from .train import LessonModel, LoopConfig, config_from_dict, config_to_dict
from .viz import scatter_plot  # part of this lesson's API (and sample_images draws with it)
from .run_folder import open_weights

__all__ = ["GANConfig", "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator", "build_generator",
           "average_statistics", "build_discriminator", "GANModel", "PRESETS", "preset", "make_dataset",
           "demo_weights_path", "load_generator", "sample", "interpolate_latents", "scatter_plot", "export_generator",
           "gpu_check_generator"]

#: data sets this lesson trains on: 2-D mixtures and digit images
POINT_DATA = ("ring8", "grid25")
IMAGE_DATA = ("digits", "mnist-subset", "mnist", "fashion-mnist")


# ==============================================================================================
# 1. The configuration, with the papers' defaults
# ==============================================================================================
@dataclass
class GANConfig:
    """Everything that defines one GAN; the defaults are DCGAN's (Radford et al. 2015, §4).

    Batch size and number of steps belong to the training loop (:class:`~deepfake_lab.train.LoopConfig`);
    :data:`PRESETS` pairs a model config with a loop config.
    """

    #: "mlp" (Goodfellow et al. 2014) or "dcgan" (Radford et al. 2015)
    arch: str = "dcgan"
    #: training data: ring8, grid25 (2-D points) or digits, mnist-subset, mnist, fashion-mnist (images)
    data: str = "digits"
    #: image channels and side (DCGAN here: a power of two, at least 16); ignored for 2-D points
    channels: int = 1
    image_size: int = 32
    #: dimension of the noise z ~ N(0, I) (DCGAN: 100)
    latent_dim: int = 100
    #: hidden widths of the MLP generator and discriminator (arch "mlp")
    g_hidden: tuple[int, ...] = (256, 256, 256)
    d_hidden: tuple[int, ...] = (256, 256, 256)
    #: DCGAN base widths: G's last hidden layer has ngf channels, D's first has ndf
    ngf: int = 64
    ndf: int = 64
    #: normalisation in G and D (batch, instance, layer or none); DCGAN: BatchNorm in both, except
    #: G's output layer and D's input layer (§3). D's first layer never has one.
    g_norm: str = "batch"
    d_norm: str = "batch"
    #: adversarial loss: minimax, nonsaturating, lsgan, hinge or wgan-gp (see deepfake_lab.losses)
    loss: str = "nonsaturating"
    #: Adam (Kingma & Ba 2015) learning rate and betas; DCGAN: 2e-4 and beta1 = 0.5 (§4)
    lr: float = 2e-4
    #: D's learning rate when it differs from G's (None: the same)
    d_lr: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    #: discriminator steps per generator step (Goodfellow et al.'s k; WGAN-GP uses 5)
    d_steps: int = 1
    #: WGAN-GP penalty weight lambda (Gulrajani et al. 2017: 10)
    gp_weight: float = 10.0
    #: linear learning-rate decay to 0 over this share of the steps at the end (0: constant)
    lr_decay: float = 0.0
    #: weight init: "normal" is N(0, 0.02) (DCGAN §4); "default" keeps PyTorch's (better for small MLPs)
    init: str = "normal"
    #: number of points drawn for a 2-D mixture data set
    n_points: int = 50_000
    #: keep an exponential moving average of G's weights with this decay per G step, and sample and export it
    #: (Karras et al. 2018, §A.1; Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training");
    #: e.g. 0.999; 0 (default): the last weights, as DCGAN
    ema: float = 0.0
    #: DiffAugment policy for D's inputs, real and generated (:mod:`deepfake_lab.diffaugment`; Zhao et al. 2020),
    #: e.g. "color,translation,cutout"; "" (default): none. Images only
    diffaugment: str = ""
    #: a categorical code of this many classes, read from z (:mod:`deepfake_lab.gan_codes`; InfoGAN, Chen et al.
    #: 2016), with D's code head and the loss :func:`~deepfake_lab.losses.code_loss` weighted by ``code_weight``
    #: (InfoGAN's lambda, 1); ``code_labels``: the head also learns the real images' labels (AC-GAN, Odena et al.
    #: 2017), so code k draws class k. 0 (default): plain noise
    code: int = 0
    code_weight: float = 1.0
    code_labels: bool = False
    #: bf16 autocast keeps this model within its parity bound; whether it pays is measured (:mod:`deepfake_lab.device`)
    bf16_ok: bool = True

    @property
    def is_points(self) -> bool:
        return self.data in POINT_DATA

    def validate(self) -> "GANConfig":
        """Check the combination; raise a ValueError that says what to change."""
        if self.arch not in ("mlp", "dcgan"):
            raise ValueError(f"arch {self.arch!r}: use 'mlp' or 'dcgan'")
        if self.data not in POINT_DATA + IMAGE_DATA:
            raise ValueError(f"--data {self.data!r}: unknown; use one of {', '.join(POINT_DATA + IMAGE_DATA)}")
        if self.is_points and self.arch != "mlp":
            raise ValueError(f"--data {self.data}: 2-D points need --arch mlp (DCGAN is for images)")
        if self.loss not in LOSSES:
            raise ValueError(f"--loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.latent_dim < 1:
            raise ValueError(f"--latent-dim {self.latent_dim}: need at least 1")
        if self.d_steps < 1:
            raise ValueError(f"--d-steps {self.d_steps}: need at least 1")
        if self.arch == "dcgan" and (self.image_size < 16 or self.image_size & (self.image_size - 1)):
            raise ValueError(f"image_size {self.image_size}: DCGAN here needs a power of two >= 16 (e.g. 32)")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"--ema {self.ema}: the decay must be in [0, 1), e.g. 0.999 (0: no average)")
        if self.diffaugment and self.is_points:
            raise ValueError(f"--diffaugment {self.diffaugment!r} with --data {self.data}: DiffAugment transforms "
                             "images; leave it off for 2-D points")
        if self.diffaugment:
            DiffAugment(self.diffaugment)  # raises for an unknown policy, naming the allowed ones
        check_code(self)
        if self.loss == "wgan-gp" and self.d_norm == "batch":
            raise ValueError("loss wgan-gp with a batch-normalised critic: the gradient penalty is per sample, "
                             "so Gulrajani et al. (§4) drop batch norm in D; set d_norm='layer' (or 'none')")
        return self

    def with_loss(self, loss: str) -> "GANConfig":
        """A copy with another loss, switching D off batch norm for WGAN-GP (see :meth:`validate`)."""
        d_norm = "layer" if loss == "wgan-gp" and self.d_norm == "batch" else self.d_norm
        return replace(self, loss=loss, d_norm=d_norm)


# ==============================================================================================
# 2. Goodfellow et al. 2014: multilayer perceptrons
# ==============================================================================================
class MLPGenerator(nn.Module):
    """G: noise z (B, latent_dim) -> a sample: (B, 2) points or (B, C, H, W) images in [-1, 1].

    Hidden layers are Linear -> norm -> ReLU; the output layer is linear for points and tanh for images.
    The paper's generator used "a mixture of rectifier linear activations and sigmoid activations" (§5).
    (Note: the popular PyTorch-GAN ``gan.py`` writes ``nn.BatchNorm1d(n, 0.8)``, which sets eps = 0.8,
    a forty-thousand-fold larger epsilon than intended; here BatchNorm keeps eps = 1e-5.)
    """

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 256, 256),
                 norm: str = "none", tanh: bool = False):
        super().__init__()
        self.latent_dim, self.out_shape = latent_dim, tuple(out_shape)
        layers, width = [], latent_dim
        for h in hidden:
            layers.append(mlp_layer(width, h, norm=norm, act="relu"))
            width = h
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)  # (B, latent) -> (B, *out_shape)


class MLPDiscriminator(nn.Module):
    """D: a sample (B, 2) or (B, C, H, W) -> one raw score (logit) per sample, (B,).

    Hidden layers are Linear -> norm -> LeakyReLU(0.2). The paper's discriminator used maxout units and
    dropout (§5); LeakyReLU is the common modern choice. No sigmoid: the losses take logits.
    """

    def __init__(self, in_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 256, 256), norm: str = "none"):
        super().__init__()
        layers, width = [], math.prod(in_shape)
        for h in hidden:
            layers.append(mlp_layer(width, h, norm=norm, act="leaky"))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # (B, ...) -> (B, D_in) -> (B,)


# ==============================================================================================
# 3. Radford et al. 2015: DCGAN
# ==============================================================================================
class DCGANGenerator(nn.Module):
    """DCGAN's generator (Radford et al. 2015, Fig. 1), for ``image_size`` x ``image_size`` images.

    z is projected to a 4x4 map by a transposed convolution, then each up block doubles the side and
    halves the width; BatchNorm + ReLU everywhere except the output, which is tanh (§3).
    At 32x32 with ngf = 64::

        z (B, 100) -> (B, 100, 1, 1) -> (B, 256, 4, 4) -> (B, 128, 8, 8) -> (B, 64, 16, 16) -> (B, C, 32, 32)
    """

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 32, ngf: int = 64,
                 norm: str = "batch"):
        super().__init__()
        self.latent_dim, self.out_shape = latent_dim, (channels, image_size, image_size)
        n_up = int(math.log2(image_size)) - 2  # 4 -> image_size in n_up doublings (3 at 32x32)
        width = ngf * 2 ** (n_up - 1)
        layers = [ConvNormAct(latent_dim, width, 4, 1, 0, norm=norm, act="relu", transposed=True)]  # 1x1 -> 4x4
        for _ in range(n_up - 1):
            layers.append(UpBlock(width, width // 2, 4, norm=norm, act="relu"))  # (w, s, s) -> (w/2, 2s, 2s)
            width //= 2
        layers.append(UpBlock(width, channels, 4, norm="none", act="tanh"))  # -> (C, size, size) in [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator: strided convolutions, LeakyReLU 0.2, BatchNorm except on the input layer (§3).

    At 32x32 with ndf = 64::

        (B, C, 32, 32) -> (B, 64, 16, 16) -> (B, 128, 8, 8) -> (B, 256, 4, 4) -> (B, 1, 1, 1) -> (B,)
    """

    def __init__(self, channels: int = 1, image_size: int = 32, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        n_down = int(math.log2(image_size)) - 2
        layers = [DownBlock(channels, ndf, 4, norm="none", act="leaky")]  # no norm on D's first layer
        width = ndf
        for _ in range(n_down - 1):
            layers.append(DownBlock(width, width * 2, 4, norm=norm, act="leaky"))
            width *= 2
        layers.append(ConvNormAct(width, 1, 4, 1, 0, norm="none", act="none"))  # 4x4 -> one score
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()  # (B, 1, 1, 1) -> (B,)


def _sample_shape(config: GANConfig) -> tuple[int, ...]:
    return (2,) if config.is_points else (config.channels, config.image_size, config.image_size)


def build_generator(config: GANConfig) -> nn.Module:
    """The generator ``config`` describes, initialised (``config.init``)."""
    config.validate()
    if config.arch == "mlp":
        G = MLPGenerator(config.latent_dim, _sample_shape(config), config.g_hidden, config.g_norm,
                         tanh=not config.is_points)
    else:
        G = DCGANGenerator(config.latent_dim, config.channels, config.image_size, config.ngf, config.g_norm)
        G = CodedDCGANGenerator(G, config.code) if config.code else G
    return init_weights(G, "normal", 0.02) if config.init == "normal" else G


def average_statistics(G: nn.Module, config: GANConfig) -> nn.Module:
    """An averaged G with BatchNorm statistics of its own: 16 batches of 64 noise vectors from a fixed seed."""
    noise, device = torch.Generator().manual_seed(4321), next(G.parameters()).device
    return standing_statistics(G, lambda i: torch.randn(64, config.latent_dim, generator=noise).to(device))


def build_discriminator(config: GANConfig) -> nn.Module:
    """The discriminator ``config`` describes, initialised (``config.init``)."""
    config.validate()
    if config.arch == "mlp":
        D = MLPDiscriminator(_sample_shape(config), config.d_hidden, config.d_norm)
    else:
        D = DCGANDiscriminator(config.channels, config.image_size, config.ndf, config.d_norm)
        D = CodedDCGANDiscriminator(D, config.code) if config.code else D
    return init_weights(D, "normal", 0.02) if config.init == "normal" else D


# ==============================================================================================
# 4. One training step: D, then G
# ==============================================================================================
class GANModel(LessonModel):
    """A GAN on the shared training loop: each step updates D once, and G every ``d_steps``-th step.

    D step: minimise :func:`~deepfake_lab.losses.d_loss` on a real batch and a generated batch, kept in
    separate forward passes so batch norm never mixes them (DCGAN's advice); for WGAN-GP add the
    gradient penalty. G step: minimise :func:`~deepfake_lab.losses.g_loss` on the same generated batch,
    scored by the just-updated D, with D's weights frozen. With ``config.diffaugment`` both steps show D
    T(x) and T(G(z)) instead (:mod:`deepfake_lab.diffaugment`).
    Logged: ``loss_D``, ``loss_G``, and ``D_real``/``D_fake``: D's mean probability "real" on each batch
    for the BCE losses (minimax, nonsaturating), its mean raw score for the others; with ``config.code`` also
    ``loss_Q``, the code head's loss in D's (with labels plus the real digits' term: chance is 2 log K, not log K).
    """

    kind = "gan"
    Config = GANConfig
    inference_nets = ("G",)

    def __init__(self, config: GANConfig, device: str | torch.device = "cpu", precision: Precision | None = None,
                 total_steps: int | None = None):
        super().__init__(config.validate(), device, precision)
        self.nets = {"G": build_generator(config).to(self.device), "D": build_discriminator(config).to(self.device)}
        self.opts = {
            "G": torch.optim.Adam(self.nets["G"].parameters(), lr=config.lr, betas=config.betas),
            "D": torch.optim.Adam(self.nets["D"].parameters(), lr=config.d_lr or config.lr, betas=config.betas),
        }
        if config.lr_decay > 0:
            if not total_steps:
                raise ValueError(f"lr_decay={config.lr_decay} needs the run's length: GANModel(config, "
                                 "total_steps=loop.steps), or set lr_decay=0")
            decay_steps = max(1, int(round(config.lr_decay * total_steps)))
            start = total_steps - decay_steps
            factor = lambda step: min(1.0, max(0.0, (total_steps - step) / decay_steps)) if step > start else 1.0  # noqa: E731
            self.scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in self.opts.items()}
        # a fixed noise batch (2000 points, 64 images) from its own generator: grids show the same z at every step
        fixed = torch.Generator().manual_seed(1234)
        self.fixed_z = torch.randn(2000 if config.is_points else 64, config.latent_dim, generator=fixed).to(self.device)
        self.d_updates = 0
        # the averaged generator (config.ema): a frozen copy that follows G after each of its steps
        self.G_ema = copy.deepcopy(self.nets["G"]).eval().requires_grad_(False) if config.ema else None
        # T of DiffAugment, or D sees the images as they are
        self.augment = DiffAugment(config.diffaugment) if config.diffaugment else nn.Identity()
        self.last_loss_G = float("nan")

    # -- the three verbs ------------------------------------------------------------------------
    def set_input(self, batch) -> None:
        """A batch is (B, 2) points or an (images (B, C, H, W), labels) pair; labels are used by ``code_labels``."""
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.real = real.to(self.device, non_blocking=True).float()
        if self.config.code_labels:
            self.labels = batch[1].to(self.device, non_blocking=True).long()  # (B,)

    def forward(self) -> torch.Tensor:
        """Draw z ~ N(0, I) and generate ``self.fake = G(z)``, one sample per real sample."""
        z = torch.randn(self.real.shape[0], self.config.latent_dim, device=self.device)  # (B, latent)
        self.code = code_of(z, self.config.code) if self.config.code else None  # (B,): the class G must draw
        self.fake = self.nets["G"](z)  # (B, 2) or (B, C, H, W)
        return self.fake

    def optimize_parameters(self) -> dict[str, float]:
        cfg, G, D = self.config, self.nets["G"], self.nets["D"]
        g_step = (self.d_updates + 1) % cfg.d_steps == 0
        with self.precision.autocast(), torch.set_grad_enabled(g_step):
            self.forward()  # build G's graph only when G will be updated

        # D step: real -> "real", G(z) -> "fake" (G's output detached: only D learns here)
        self.opts["D"].zero_grad(set_to_none=True)
        with self.precision.autocast():
            real, fake = self.augment(self.real), self.augment(self.fake.detach())  # T(x), T(G(z)); T = id by default
            real_scores, real_logits = split_scores(D(real))  # (B,), and with a code (B, K)
            fake_scores, fake_logits = split_scores(D(fake))
            loss_D = d_loss(cfg.loss, real_scores, fake_scores)
            if cfg.code:  # Q reads the code back from G(z) (InfoGAN), and the label from x (AC-GAN)
                loss_Q = code_loss(fake_logits, self.code)
                loss_Q = loss_Q + code_loss(real_logits, self.labels) if cfg.code_labels else loss_Q
                loss_D = loss_D + cfg.code_weight * loss_Q
            if cfg.loss == "wgan-gp":
                loss_D = loss_D + gradient_penalty(D, real, fake, cfg.gp_weight)
        loss_D.backward()
        self.opts["D"].step()
        self.d_updates += 1

        # G step: make D call G(z) real, through D's frozen weights
        if g_step:
            D.requires_grad_(False)
            self.opts["G"].zero_grad(set_to_none=True)
            with self.precision.autocast():
                scores, logits = split_scores(D(self.augment(self.fake)))  # through T: DiffAugment's G step
                loss_G = g_loss(cfg.loss, scores)
                if cfg.code:  # ... and draw the class its code names
                    loss_G = loss_G + cfg.code_weight * code_loss(logits, self.code)
            loss_G.backward()
            self.opts["G"].step()
            D.requires_grad_(True)
            self.last_loss_G = float(loss_G.detach())
            if self.G_ema is not None:
                self.update_average()

        bce = cfg.loss in ("minimax", "nonsaturating")
        show = torch.sigmoid if bce else (lambda s: s)
        logged = {"loss_D": float(loss_D.detach()), "loss_G": self.last_loss_G,
                  "D_real": float(show(real_scores.detach().float()).mean()),
                  "D_fake": float(show(fake_scores.detach().float()).mean())}
        return logged | ({"loss_Q": float(loss_Q.detach())} if cfg.code else {})

    @torch.no_grad()
    def update_average(self) -> None:
        """theta_ema <- decay * theta_ema + (1 - decay) * theta_G (weights only; see inference_generator)."""
        for averaged, current in zip(self.G_ema.parameters(), unwrap(self.nets["G"]).parameters()):
            averaged.lerp_(current.detach(), 1.0 - self.config.ema)

    def inference_generator(self) -> nn.Module:
        """The generator to sample, evaluate and export: G itself, or with ``config.ema`` the average, whose
        BatchNorm statistics are measured for its own weights (16 fixed noise batches; G's would not fit)."""
        return unwrap(self.nets["G"]) if self.G_ema is None else average_statistics(self.G_ema, self.config)

    # -- hooks ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_images(self):
        """Images: G(fixed z) as a (64, C, H, W) grid tensor in [-1, 1]; points: a scatter plot (PIL)."""
        fake = self.inference_generator()(self.fixed_z).float().cpu()  # the average is always in eval mode
        if self.config.is_points:
            from .data.toy import mixture

            real = mixture(self.config.data, n=len(fake), seed=1).points
            return scatter_plot(fake, real, title=f"{self.config.data}: generated vs real")
        return fake

    def extra_state(self) -> dict:
        state = {"d_updates": self.d_updates, "last_loss_G": self.last_loss_G}
        return state | ({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {})

    def load_extra_state(self, state: dict) -> None:
        self.d_updates = int(state.get("d_updates", 0))
        self.last_loss_G = float(state.get("last_loss_G", float("nan")))
        if self.G_ema is not None:
            if "G_ema" not in state:
                raise ValueError("this run's checkpoint has no averaged generator (it was trained without --ema); "
                                 "resume it without --ema, or start a new run")
            self.G_ema.load_state_dict(state["G_ema"])


# ==============================================================================================
# 5. Presets: the recipes, as separate instances
# ==============================================================================================
#: ring8/grid25 "default": non-saturating loss, 2-D noise, MLPs 3x128 (ReLU / LeakyReLU, no norm), Adam 1e-3
#: with DCGAN's betas, batch 256, 4,000 steps; the learning rate decays linearly to 0 over the second half,
#: which turns the modes G hops between into modes it holds. Measured (2,500 samples): seed 0 8/8 modes,
#: 94 % high quality (the demo weights); seeds 1 and 2: 7/8 modes, 94 % and 93 %.
POINTS_DEFAULT = GANConfig(arch="mlp", data="ring8", latent_dim=2, g_hidden=(128, 128, 128),
                           d_hidden=(128, 128, 128), g_norm="none", d_norm="none", loss="nonsaturating",
                           lr=1e-3, betas=(0.5, 0.999), lr_decay=0.5, init="default")
#: the same recipe with 16-dimensional noise: measured, G piles its samples onto a few modes (3 of 8 covered,
#: 58 % high quality, seed 0; in two shorter runs 1 and 0 modes). For contrast, the original minimax loss with
#: the default recipe otherwise (``--loss minimax``, no decay) reached 6 of 8 modes at 59 %.
POINTS_COLLAPSE = replace(POINTS_DEFAULT, latent_dim=16)
#: digits "default": DCGAN as published (ngf = ndf = 64, z 100, batch 128)
IMAGES_DEFAULT = GANConfig()
#: digits "demo": a half-width generator and a quarter-width discriminator (~0.11 CPU s per step of 64),
#: so it trains in a few CPU minutes; fp16 generator ~0.7 MB
IMAGES_DEMO = replace(IMAGES_DEFAULT, ngf=32, ndf=16, lr_decay=0.3)

#: preset name -> (model config, loop config), per kind of data
PRESETS: dict[str, dict[str, tuple[GANConfig, LoopConfig]]] = {
    "points": {
        "default": (POINTS_DEFAULT, LoopConfig(steps=4000, batch_size=256, sample_every=500, checkpoint_every=1000)),
        "demo": (POINTS_DEFAULT, LoopConfig(steps=4000, batch_size=256, sample_every=500, checkpoint_every=1000)),
        "collapse": (POINTS_COLLAPSE, LoopConfig(steps=4000, batch_size=256, sample_every=500,
                                                 checkpoint_every=1000)),
    },
    "images": {
        "default": (IMAGES_DEFAULT, LoopConfig(steps=10_000, batch_size=128, sample_every=500,
                                               checkpoint_every=1000)),
        "demo": (IMAGES_DEMO, LoopConfig(steps=1500, batch_size=64, sample_every=250, checkpoint_every=500)),
    },
}
#: steps under DEEPFAKE_LAB_QUICK=1 (CI and notebook runs)
QUICK_STEPS = {"points": 300, "images": 40}


def preset(name: str, data: str) -> tuple[GANConfig, LoopConfig]:
    """The (model config, loop config) of preset ``name`` for ``data``, with ``config.data`` filled in."""
    if data not in POINT_DATA + IMAGE_DATA:
        raise ValueError(f"--data {data!r}: unknown; use one of {', '.join(POINT_DATA + IMAGE_DATA)}")
    group = "points" if data in POINT_DATA else "images"
    if name not in PRESETS[group]:
        raise ValueError(f"--preset {name!r} is not defined for --data {data}; use one of {', '.join(PRESETS[group])}")
    config, loop = PRESETS[group][name]
    return replace(config, data=data), replace(loop, out_dir=f"runs/gan-{data}")


def make_dataset(config: GANConfig, split: str = "train", download: bool = False):
    """The training set of ``config.data``: a 2-D mixture of ``config.n_points`` points, or digit images."""
    if config.is_points:
        from .data.toy import mixture

        return mixture(config.data, n=config.n_points, seed=0)
    from .data.digits import digit_dataset

    return digit_dataset(config.data, split, download=download)


# ==============================================================================================
# 6. Using a trained generator (the demo app and the notebook call these)
# ==============================================================================================
def demo_weights_path(data: str) -> Path:
    """The demo generator shipped with the package for ``data`` (``ring8`` or ``digits``)."""
    return demo_weights(f"gan-{data}")


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, GANConfig]:
    """Load a GAN generator in eval mode, in fp32, with its config.

    ``path`` is a weights file written by :func:`export_generator` (fp16 or fp32), a training
    checkpoint ``step-*.safetensors``, or a run folder (its latest checkpoint is used).
    """
    nets, meta, path = open_weights(path, "gan", networks=("G",))
    config = config_from_dict(GANConfig, meta.get("config") or {})
    G = build_generator(config)
    try:
        G.load_state_dict({k: v.float() for k, v in nets["G"].items()})
    except RuntimeError as err:
        raise ckpt.CheckpointError(f"{path}: the generator weights do not fit its own config ({err})") from err
    return G.to(device).eval(), config


@torch.no_grad()
def sample(generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Run ``generator`` on noise z (N, latent_dim): (N, C, H, W) images in [-1, 1], or (N, 2) points."""
    if z.dim() != 2 or z.shape[1] != generator.latent_dim:
        raise ValueError(f"z of shape {tuple(z.shape)}: need (N, {generator.latent_dim})")
    device = next(generator.parameters()).device
    return generator(z.to(device)).float()


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """``steps`` latent vectors from z0 to z1 (both ends included): (steps, latent_dim).

    ``"linear"``: :math:`z_t = (1-t) z_0 + t z_1`. ``"slerp"`` (White 2016, "Sampling Generative
    Networks"): along the great circle,

    .. math:: z_t = \\frac{\\sin((1-t)\\Omega)}{\\sin\\Omega} z_0 + \\frac{\\sin(t\\Omega)}{\\sin\\Omega} z_1,
              \\quad \\cos\\Omega = \\frac{z_0 \\cdot z_1}{\\lVert z_0\\rVert \\lVert z_1\\rVert}

    which keeps the norm typical of a Gaussian z, where a straight line passes through the unlikely
    region near the origin. (DCGAN §6.1 walks the latent space linearly.)
    """
    z0, z1 = z0.reshape(-1).float(), z1.reshape(-1).float()
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)}: need one latent size")
    if steps < 2:
        raise ValueError(f"steps={steps}: need at least 2 (the two ends)")
    t = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
    if mode == "linear":
        return (1 - t) * z0 + t * z1
    if mode != "slerp":
        raise ValueError(f"interpolation mode {mode!r}: use 'slerp' or 'linear'")
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-4:  # (nearly) parallel: slerp tends to the straight line
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def export_generator(G: nn.Module, config: GANConfig, path: str | Path, extra: dict | None = None) -> Path:
    """Write the generator alone as fp16 safetensors (the demo weights' format)."""
    return ckpt.save_weights(path, {"G": G}, "gan", config_to_dict(config), dtype=torch.float16, extra=extra)


def evaluate_generator(G: nn.Module, config: GANConfig, n: int | None = None, seed: int = 0) -> dict:
    """The lesson's metrics on ``n`` fresh samples from a fixed seed (see :mod:`deepfake_lab.gan_metrics`).

    2-D mixtures: modes covered and high-quality share; digits: the digit classifier's class coverage and
    mean confidence, for MNIST the FID to the held-out digits in its features, and with ``code_labels`` the
    share drawn as their code says (empty when the classifier's weights are missing)."""
    from . import gan_metrics

    n = n or (2500 if config.is_points else 1000)
    z = torch.randn(n, config.latent_dim, generator=torch.Generator().manual_seed(seed))
    was_training = G.training
    G.eval()
    out = sample(G, z).cpu()
    G.train(was_training)
    if config.is_points:
        return gan_metrics.mixture_metrics(out, config.data).as_dict()
    if config.data in ("digits", "mnist-subset", "mnist") and gan_metrics.classifier_path().exists():
        scores = gan_metrics.digit_metrics(out).as_dict()
        if config.data in ("mnist-subset", "mnist"):  # the held-out digits FID compares with are MNIST's
            scores["fid_heldout"] = gan_metrics.digit_fid(out)
        if config.code_labels:  # AC-GAN: does code k draw digit k?
            scores["code_agreement"] = gan_metrics.code_agreement(out, code_of(z, config.code))
        return scores
    return {}


def gpu_check_generator() -> tuple[nn.Module, torch.Tensor]:
    """(network, example input) for the CUDA bf16-vs-fp32 check: the digits DCGAN generator on 8 noise vectors."""
    torch.manual_seed(0)
    config = IMAGES_DEMO
    return build_generator(config).eval(), torch.randn(8, config.latent_dim)
