"""The whole First Order Motion Model: configuration, the two networks together, the losses, one training step.

Training is self-supervised (§3.4 of Siarohin et al. 2019): take two frames of *one* video, a source S
and a driving frame D; detect keypoints in both; let the generator rebuild D from S and the keypoint
motion; compare the result with D itself. No labels, only videos of objects of one kind (faces).

.. math::

    \\mathcal{L} = \\underbrace{\\sum_{s} \\sum_i w_i \\, \\lvert N_i(\\hat D_s) - N_i(D_s) \\rvert}_{\\text{multi-scale perceptual}}
        + \\lambda_{eq}\\, \\mathcal{L}_{eq} + \\lambda_{jac}\\, \\mathcal{L}_{jac}

with VGG features :math:`N_i` on an image pyramid (scales 1, 1/2, 1/4, 1/8; weights 10) and the
equivariance losses of :mod:`.equivariance` (weights 10 and 10). The vox-256 configuration trains
no discriminator (its GAN weight is 0), and neither does this module.

* :class:`AnimationConfig`: the hyper-parameters; the defaults are the official ``vox-256.yaml``, at
  which the networks have the official parameter counts and state-dict keys;
* :data:`PRESETS`: ``default`` (vox-256), ``demo`` (64x64 frames, small networks: trains on a CPU) and
  ``demo-128`` (the same networks at 128x128, the shipped demo weights: ~1.1 CPU s per step of 8 in bf16 on
  an AMX CPU, about 4 in fp32 on an AVX2 one);
* :class:`FirstOrderModel`: the keypoint detector and the generator, for inference;
* :class:`AnimationModel`: the same plus optimizers, schedules and the training step, for
  :func:`deepfake_lab.train.fit`.

Images: the networks take and give RGB in **[0, 1]** (the official convention, so imported official
weights behave); :meth:`AnimationModel.set_input` takes the project's [-1, 1] batches and converts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from ..device import Precision
from ..train import LessonModel, LoopConfig
from .equivariance import RandomTransform, equivariance_jacobian_loss, equivariance_value_loss
from .generator import OcclusionAwareGenerator
from .keypoints import KPDetector, relative_keypoints

__all__ = ["AnimationConfig", "PRESETS", "LOOP_PRESETS", "FirstOrderModel", "AnimationModel", "build_networks",
           "OFFICIAL_PARAMETER_COUNTS", "gpu_check_generator", "reconstruct_relative"]

#: parameter counts of the official vox-256 networks (first-order-model, ``config/vox-256.yaml``)
OFFICIAL_PARAMETER_COUNTS = {"kp_detector": 14_215_368, "generator": 45_575_391, "dense_motion_network": 37_730_268}


@dataclass
class AnimationConfig:
    """Hyper-parameters; defaults are the official ``config/vox-256.yaml``.

    Keypoints (§3.1): ``num_kp`` 10, soft-argmax temperature ``kp_temperature`` 0.1, a Jacobian per
    keypoint; the detector's hourglass (``kp_block_expansion`` 32, ``kp_max_features`` 1024,
    ``kp_num_blocks`` 5) sees the image scaled by ``kp_scale_factor`` 1/4; its 7x7 heads use
    ``kp_pad`` 0. Dense motion (§3.2): hourglass 64/1024/5 at 1/4 scale, Gaussian heatmaps of variance
    ``kp_variance`` 0.01. Generator (§3.3): ``block_expansion`` 64, ``max_features`` 512, 2 down blocks,
    6 residual blocks, an occlusion map.

    Losses (§3.4): perceptual with VGG layers relu1_1..relu5_1 (``perceptual_layers``) weighted
    ``perceptual_weights`` 10 each over ``scales`` 1, 1/2, 1/4, 1/8 (VGG16 here, VGG19 in the paper:
    see :mod:`deepfake_lab.perceptual`); equivariance weights 10 and 10 under random transforms
    (affine sigma 0.05, TPS sigma 0.005 on 5x5 points). ``l1_weight`` adds a pixel L1 term (0 in the
    paper). Optimisation: Adam, lr 2e-4 for both networks, betas (0.5, 0.999), the learning rate
    divided by 10 at 60% and 90% of training (``lr_milestones``: epochs 60 and 90 of 100). Batch 40
    in the paper (a loop setting). ``bf16_ok``: bf16 autocast keeps the model within its parity
    bound (held-out L1 within 1 %, keypoints within 0.5 px at 256; ``tests/test_precision.py``); whether it pays
    is measured (:mod:`deepfake_lab.device`). Keypoint heatmaps, Jacobians, coordinate grids, ``grid_sample`` and
    the flow stay fp32 (:func:`.grids.full_precision`).
    """

    image_size: int = 256
    num_channels: int = 3
    num_kp: int = 10
    estimate_jacobian: bool = True
    # keypoint detector
    kp_block_expansion: int = 32
    kp_max_features: int = 1024
    kp_num_blocks: int = 5
    kp_scale_factor: float = 0.25
    kp_temperature: float = 0.1
    kp_pad: int = 0
    # generator
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    estimate_occlusion_map: bool = True
    # dense motion network
    dm_block_expansion: int = 64
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    dm_scale_factor: float = 0.25
    kp_variance: float = 0.01
    # losses
    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    perceptual_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    perceptual_weights: tuple[float, ...] = (10.0, 10.0, 10.0, 10.0, 10.0)
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5
    l1_weight: float = 0.0
    # optimisation
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_milestones: tuple[float, ...] = (0.6, 0.9)
    lr_gamma: float = 0.1
    bf16_ok: bool = True

    def __post_init__(self):
        factor = 1
        for name, blocks, scale in (("kp", self.kp_num_blocks, self.kp_scale_factor),
                                    ("dm", self.dm_num_blocks, self.dm_scale_factor)):
            side = self.image_size * scale
            if side != int(side) or int(side) % (2 ** blocks):
                raise ValueError(f"image_size {self.image_size} x {name}_scale_factor {scale} = {side}: must be "
                                 f"divisible by 2^{name}_num_blocks = {2 ** blocks}")
        factor = 2 ** self.num_down_blocks
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size}: must be divisible by 2^num_down_blocks = {factor}")
        if len(self.perceptual_weights) != len(self.perceptual_layers):
            raise ValueError("perceptual_weights: give one weight per entry of perceptual_layers")


# 64x64 frames; one down block in the generator (features at 32x32: sharper at this size); the
# perceptual loss on the half-size frame only, up to relu3_1, plus a pixel L1 on the full frame
_DEMO = AnimationConfig(
    image_size=64,
    kp_block_expansion=16, kp_max_features=128, kp_num_blocks=3, kp_scale_factor=0.5, kp_pad=3,
    block_expansion=32, max_features=128, num_down_blocks=1, num_bottleneck_blocks=2,
    dm_block_expansion=16, dm_max_features=128, dm_num_blocks=3, dm_scale_factor=0.5,
    scales=(0.5,), perceptual_layers=("relu1_1", "relu2_1", "relu3_1"), perceptual_weights=(10.0, 10.0, 10.0),
    l1_weight=10.0, lr=5e-4)
#: named configurations; ``demo`` trains on a laptop CPU in minutes (64x64 faces, ~1 M parameters)
PRESETS: dict[str, AnimationConfig] = {
    "default": AnimationConfig(),
    "demo": _DEMO,
    # 128x128 frames: the keypoint detector and the dense motion network see the same 32x32 (a quarter of the
    # frame); the generator gets a second down block, so its features are 32x32 as in ``demo``
    "demo-128": replace(_DEMO, image_size=128, kp_scale_factor=0.25, dm_scale_factor=0.25, num_down_blocks=2),
}

#: loop settings of each preset (the paper: batch 40, 100 epochs of 75 repeats of VoxCeleb)
LOOP_PRESETS: dict[str, LoopConfig] = {
    "default": LoopConfig(steps=100_000, batch_size=40, out_dir="runs/animation", sample_every=1000,
                          checkpoint_every=2000, log_every=50),
    "demo": LoopConfig(steps=1300, batch_size=8, out_dir="runs/animation", sample_every=200, checkpoint_every=200,
                       log_every=10),
    "demo-128": LoopConfig(steps=3600, batch_size=8, out_dir="runs/animation-128", sample_every=400,
                           checkpoint_every=200, log_every=10),
}


def build_networks(config: AnimationConfig) -> tuple[KPDetector, OcclusionAwareGenerator]:
    """The keypoint detector and the generator (with its dense motion network) of a config."""
    c = config
    kp = KPDetector(block_expansion=c.kp_block_expansion, num_kp=c.num_kp, num_channels=c.num_channels,
                    max_features=c.kp_max_features, num_blocks=c.kp_num_blocks, temperature=c.kp_temperature,
                    estimate_jacobian=c.estimate_jacobian, scale_factor=c.kp_scale_factor, pad=c.kp_pad)
    dense = dict(block_expansion=c.dm_block_expansion, max_features=c.dm_max_features, num_blocks=c.dm_num_blocks,
                 scale_factor=c.dm_scale_factor, kp_variance=c.kp_variance)
    gen = OcclusionAwareGenerator(num_channels=c.num_channels, num_kp=c.num_kp, block_expansion=c.block_expansion,
                                  max_features=c.max_features, num_down_blocks=c.num_down_blocks,
                                  num_bottleneck_blocks=c.num_bottleneck_blocks,
                                  estimate_occlusion_map=c.estimate_occlusion_map, dense_motion_params=dense)
    return kp, gen


class FirstOrderModel(nn.Module):
    """The two inference networks together: ``kp_detector`` and ``generator`` (official names).

    ``model(source, driving)`` reconstructs ``driving`` from ``source`` (both (B, 3, H, W) in [0, 1]) and
    returns the generator's dict (``prediction``, ``mask``, ``occlusion_map``, ``deformation`` ...)
    plus ``kp_source`` and ``kp_driving``. :mod:`.transfer` animates with *other* keypoints.
    """

    def __init__(self, config: AnimationConfig | None = None,
                 networks: tuple[KPDetector, OcclusionAwareGenerator] | None = None):
        super().__init__()
        self.config = config or AnimationConfig()
        self.kp_detector, self.generator = networks or build_networks(self.config)
        #: a note on where the weights came from (shown by the CLI and the app)
        self.source = "untrained"
        self.precision = Precision("cpu", None)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> dict[str, torch.Tensor]:
        return reconstruct(self.kp_detector, self.generator, source, driving)


def reconstruct(kp_detector: nn.Module, generator: nn.Module, source: torch.Tensor,
                driving: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's one pass: keypoints of both frames, then the generator warps ``source`` towards ``driving``.

    Takes the two networks as arguments so that training calls them through ``model.nets`` (where the loop
    puts the DDP wrappers under torchrun) and inference through :class:`FirstOrderModel`.
    """
    kp_source = kp_detector(source)
    kp_driving = kp_detector(driving)
    out = generator(source, kp_driving=kp_driving, kp_source=kp_source)
    out.update(kp_source=kp_source, kp_driving=kp_driving)
    return out


def reconstruct_relative(kp_detector: nn.Module, generator: nn.Module, source: torch.Tensor, driving: torch.Tensor,
                         reference: torch.Tensor, relative: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`reconstruct` where the items marked in ``relative`` ((B,) bool) are animated as ``animate`` animates
    another person: the source's keypoints moved by the driving keypoints' change since the ``reference`` frame
    (relative values and Jacobians, :func:`.keypoints.relative_keypoints`). The others take the driving keypoints
    themselves (the paper's task; their reference is not used). ``kp_driving`` in the result is the driving frame's
    own, for the equivariance losses.
    """
    kp_source, kp_driving, kp_reference = kp_detector(source), kp_detector(driving), kp_detector(reference)
    moved = relative_keypoints(kp_source, kp_driving, kp_reference)
    pick = relative.view(-1, 1, 1)
    kp = {"value": torch.where(pick, moved["value"], kp_driving["value"])}
    if "jacobian" in kp_driving:
        kp["jacobian"] = torch.where(pick[..., None], moved["jacobian"], kp_driving["jacobian"])
    out = generator(source, kp_driving=kp, kp_source=kp_source)
    out.update(kp_source=kp_source, kp_driving=kp_driving)
    return out


class AnimationModel(LessonModel):
    """The First Order Motion Model with its training step, for :func:`deepfake_lab.train.fit`.

    Networks ``kp_detector`` and ``generator``, one Adam each (as the official code), multi-step
    learning-rate schedules in units of steps (``total_steps`` sizes them). ``set_input`` takes
    ``{"source": (B, 3, H, W), "driving": (B, 3, H, W)}`` in [-1, 1], two frames of one video; with
    ``"reference"``, ``"target"`` and ``"transplant"`` as well (:class:`~deepfake_lab.data.animation_data.
    TransplantPairs`), the marked items are relative transfers with a ground truth: the target is rebuilt from the
    source and the driving frame's motion since the reference (:func:`reconstruct_relative`).
    """

    kind: ClassVar[str] = "animation"
    Config: ClassVar[type] = AnimationConfig
    inference_nets: ClassVar[tuple[str, ...]] = ("kp_detector", "generator")

    def __init__(self, config: AnimationConfig | None = None, device: str | torch.device = "cpu",
                 precision: Precision | None = None, total_steps: int = 1000, perceptual: nn.Module | None = None):
        config = config or AnimationConfig()
        super().__init__(config, device, precision)
        c = config
        self.model = FirstOrderModel(c).to(self.device)
        self.nets = {"kp_detector": self.model.kp_detector, "generator": self.model.generator}
        betas = (c.beta1, c.beta2)
        self.opts = {name: torch.optim.Adam(net.parameters(), lr=c.lr, betas=betas) for name, net in self.nets.items()}
        milestones = sorted({max(1, round(total_steps * f)) for f in c.lr_milestones})
        self.scheds = {name: torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=c.lr_gamma)
                       for name, opt in self.opts.items()}
        if perceptual is None and sum(c.perceptual_weights) > 0:
            from ..perceptual import PerceptualLoss

            perceptual = PerceptualLoss(layers=c.perceptual_layers, weights=c.perceptual_weights, scales=c.scales)
        self.perceptual = perceptual.to(self.device) if perceptual is not None else None

    # -- the three verbs ------------------------------------------------------------------------
    def set_input(self, batch: dict[str, torch.Tensor]) -> None:
        """``batch["source"]`` and ``batch["driving"]``: (B, 3, H, W) in [-1, 1] -> kept in [0, 1]; with
        ``"reference"`` and ``"target"`` (of the same shape) and ``"transplant"`` ((B,) bool) as well, the items
        marked are relative transfers, the prediction compared with the target
        (:class:`~deepfake_lab.data.animation_data.TransplantPairs`); otherwise the target is the driving frame."""
        if not isinstance(batch, dict) or "source" not in batch or "driving" not in batch:
            raise ValueError("AnimationModel.set_input: expected {'source': frames, 'driving': frames of the same videos}")
        self.source = (batch["source"].to(self.device, non_blocking=True) + 1) / 2
        self.driving = (batch["driving"].to(self.device, non_blocking=True) + 1) / 2
        relative = ("reference", "target", "transplant")
        if any(k in batch for k in relative) and not all(k in batch for k in relative):
            raise ValueError("AnimationModel.set_input: 'reference', 'target' and 'transplant' come together "
                             "(TransplantPairs' items)")
        self.reference = self.transplant = None
        self.target = self.driving                                       # what the prediction is compared with
        if "reference" in batch:
            self.reference = (batch["reference"].to(self.device, non_blocking=True) + 1) / 2
            self.target = (batch["target"].to(self.device, non_blocking=True) + 1) / 2
            self.transplant = batch["transplant"].to(self.device, non_blocking=True).bool()

    def forward(self) -> dict[str, torch.Tensor]:
        """Reconstruct the driving frame from the source and the keypoints of both (the training task); items with
        a reference are relative transfers to their target instead (:func:`reconstruct_relative`)."""
        nets = self.nets["kp_detector"], self.nets["generator"]
        if self.reference is None:
            self.generated = reconstruct(*nets, self.source, self.driving)
        else:
            self.generated = reconstruct_relative(*nets, self.source, self.driving, self.reference, self.transplant)
        return self.generated

    def compute_losses(self) -> dict[str, torch.Tensor]:
        """The weighted loss terms of §3.4 for the current input (forward included)."""
        c = self.config
        gen = self.forward()
        prediction = gen["prediction"]
        losses: dict[str, torch.Tensor] = {}
        if self.perceptual is not None:
            # [0, 1] -> [-1, 1], the perceptual module's convention; weights and pyramid are inside it
            losses["perceptual"] = self.perceptual(prediction.float() * 2 - 1, self.target * 2 - 1)
        if c.l1_weight:
            losses["l1"] = c.l1_weight * (prediction.float() - self.target).abs().mean()
        if c.equivariance_value or c.equivariance_jacobian:
            # warp the driving frame by a random T_{X<-Y}; its keypoints must follow (eq. 7, 8)
            transform = RandomTransform(self.driving.shape[0], c.sigma_affine, c.sigma_tps, c.points_tps,
                                        device=self.device)
            transformed = transform.transform_frame(self.driving)
            kp_t = self.nets["kp_detector"](transformed)
            kp_d = gen["kp_driving"]
            self.transformed = transformed
            if c.equivariance_value:
                losses["equivariance_value"] = c.equivariance_value * equivariance_value_loss(
                    kp_d["value"], kp_t["value"], transform)
            if c.equivariance_jacobian and "jacobian" in kp_d:
                losses["equivariance_jacobian"] = c.equivariance_jacobian * equivariance_jacobian_loss(
                    kp_d["jacobian"], kp_t["value"], kp_t["jacobian"], transform)
        return losses

    def optimize_parameters(self) -> dict[str, float]:
        """One step: both networks on the sum of the losses. Returns them, plus the plain L1 for monitoring."""
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        with self.precision.autocast():
            losses = self.compute_losses()
        total = sum(v.float() for v in losses.values())
        total.backward()
        for opt in self.opts.values():
            opt.step()
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["total"] = float(total.detach())
        out["rec_l1"] = float((self.generated["prediction"].detach().float() - self.target).abs().mean())
        return out

    # -- hooks of the loop ------------------------------------------------------------------------
    def sample_images(self):
        """A PIL grid of up to 4 rows of source | driving frame | deformed source | occlusion | prediction; with
        a batch of :class:`~deepfake_lab.data.animation_data.TransplantPairs`, the target after the driving frame
        (for transplanted items the driving frame shows another person)."""
        from ..viz import to_grid_image

        if not hasattr(self, "generated"):
            return None
        with torch.no_grad():
            self.forward()  # eval mode: running BatchNorm statistics, as at inference
        g = self.generated
        n = min(4, self.source.shape[0])
        size = self.source.shape[2:]
        occ = g.get("occlusion_map")
        occ = (torch.nn.functional.interpolate(occ[:n].float(), size=size, mode="bilinear", align_corners=False)
               .expand(-1, 3, -1, -1) if occ is not None else torch.zeros_like(self.source[:n]))
        shown = [self.driving[:n]] if self.reference is None else [self.driving[:n], self.target[:n]]
        columns = [self.source[:n], *shown, g["deformed"][:n].float(), occ, g["prediction"][:n].float()]
        grid = torch.stack(columns, dim=1).flatten(0, 1)  # (n * 5 or n * 6, 3, H, W), row-major
        return to_grid_image(grid.detach().cpu() * 2 - 1, nrow=len(columns))  # one item a row

    def inference_model(self) -> FirstOrderModel:
        """The trained networks as a :class:`FirstOrderModel` (shares the weights)."""
        return self.model


class _Reconstruct(nn.Module):
    """One-tensor wrapper for device checks: (B, 6, H, W) = source | driving in [-1, 1] -> prediction in [-1, 1]."""

    def __init__(self, model: FirstOrderModel):
        super().__init__()
        self.model = model

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        source, driving = ((pair + 1) / 2).chunk(2, dim=1)
        return self.model(source, driving)["prediction"] * 2 - 1


def gpu_check_generator() -> tuple[nn.Module, torch.Tensor]:
    """(network, example input) for the CUDA bf16-vs-fp32 check: the demo config rebuilding a frame pair."""
    torch.manual_seed(0)
    size = PRESETS["demo"].image_size
    return _Reconstruct(FirstOrderModel(PRESETS["demo"])).eval(), torch.rand(2, 6, size, size) * 2 - 1
