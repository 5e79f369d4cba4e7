"""Coordinates, warping and smoothing: the geometry every part of the First Order Motion Model uses.

Siarohin et al., "First Order Motion Model for Image Animation" (NeurIPS 2019), describe motion as a
map :math:`\\mathcal{T}_{S \\leftarrow D}` from a point :math:`z` of the driving frame to a point of the
source frame (§3). In code a map is a *sampling grid*: a tensor (B, H, W, 2) holding, for every output
pixel, the source position to read, as (x, y) in [-1, 1]. ``F.grid_sample`` then reads the source there.

Conventions of the official code (AliaksandrSiarohin/first-order-model), matched exactly here so that
an official checkpoint reproduces its outputs:

* a pixel column ``i`` of a width-``w`` image sits at :math:`x = 2i/(w-1) - 1` (corners at exactly
  -1 and +1, which is the ``align_corners=True`` spacing), but
* ``F.grid_sample`` is called with PyTorch's default ``align_corners=False`` (where -1 and +1 are the
  *outer edges* of the corner pixels). The identity grid therefore samples a hair inside the image, a
  tiny shrink (by a factor (w-1)/w) that the trained networks have learnt to live with;
* downsampling blurs with a fixed Gaussian first (:class:`AntiAliasInterpolation2d`, its kernel stored
  as the buffer ``weight``, so it appears in checkpoints as ``down.weight``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["make_coordinate_grid", "warp", "kp2gaussian", "AntiAliasInterpolation2d", "ImagePyramid",
           "GRID_SAMPLE_ALIGN_CORNERS", "full_precision"]

#: the value the official code passes to ``F.grid_sample`` (by leaving it out: PyTorch's default)
GRID_SAMPLE_ALIGN_CORNERS = False


def full_precision(device_type: str):
    """A region where autocast is off: coordinates stay fp32 even in a bf16 forward pass.

    bf16 keeps 8 bits of mantissa, a step of ~0.008 near 1 in [-1, 1] grid units (a quarter pixel at
    64x64, one pixel at 256x256): fine for features, too coarse for where to sample them.
    """
    return torch.autocast(device_type=device_type, enabled=False)


def make_coordinate_grid(spatial_size: tuple[int, int], dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """The identity map: a (H, W, 2) grid of (x, y) coordinates in [-1, 1].

    .. math:: x_j = \\frac{2j}{W - 1} - 1, \\qquad y_i = \\frac{2i}{H - 1} - 1

    ``grid[i, j] = (x_j, y_i)``: x (the column) first, as ``F.grid_sample`` expects.
    """
    h, w = spatial_size
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1  # (W,)
    y = 2 * (y / (h - 1)) - 1  # (H,)
    xx = x.view(1, -1).expand(h, w)
    yy = y.view(-1, 1).expand(h, w)
    return torch.stack([xx, yy], dim=-1)  # (H, W, 2)


def warp(image: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Backward warping: ``out[b, :, i, j] = image[b, :, grid[b, i, j]]`` with bilinear interpolation.

    ``image`` (B, C, H, W); ``grid`` (B, H', W', 2) in [-1, 1] -> (B, C, H', W'). If the grid has
    another resolution than the image it is what the output takes. ``align_corners`` is PyTorch's
    default (False), as in the official code; see the module docstring.
    """
    with full_precision(image.device.type):  # sampling positions and weights in fp32, even under bf16 autocast
        return F.grid_sample(image.float(), grid.float(), mode="bilinear", padding_mode=padding_mode,
                             align_corners=GRID_SAMPLE_ALIGN_CORNERS)


def kp2gaussian(kp: torch.Tensor, spatial_size: tuple[int, int], kp_variance: float) -> torch.Tensor:
    """Gaussian blobs centred on the keypoints (the heatmap representation of §3.2, eq. 6).

    .. math:: H_k(z) = \\exp\\left(-\\frac{\\lVert z - p_k \\rVert^2}{2\\sigma^2}\\right)

    ``kp`` (B, K, 2) in [-1, 1] -> (B, K, H, W). ``kp_variance`` is :math:`\\sigma^2` (0.01 in the paper's
    code, in the [-1, 1] units of the grid).
    """
    grid = make_coordinate_grid(spatial_size, kp.dtype, kp.device)  # (H, W, 2)
    diff = grid.view(1, 1, *grid.shape) - kp.view(*kp.shape[:2], 1, 1, 2)  # (B, K, H, W, 2)
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / kp_variance)


class AntiAliasInterpolation2d(nn.Module):
    """Downsample by ``scale`` (e.g. 0.25) after a Gaussian blur, so that no detail aliases.

    The blur is a fixed (not learnt) Gaussian with :math:`\\sigma = (1/s - 1)/2` and kernel size
    :math:`2\\,\\mathrm{round}(4\\sigma) + 1` (13 at scale 1/4), applied per channel; then every
    :math:`1/s`-th pixel is kept. The kernel is a buffer named ``weight`` (shape (C, 1, k, k)), as in the
    official code, so official checkpoints carry it (``down.weight``) and load into this module.

    Shapes: (B, C, H, W) -> (B, C, ceil(H s), ceil(W s)).
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        if not 0 < scale <= 1:
            raise ValueError(f"anti-alias scale {scale}: need 0 < scale <= 1")
        self.scale = float(scale)
        self.groups = channels
        self.step = int(round(1 / scale))
        if abs(1 / scale - self.step) > 1e-6:
            raise ValueError(f"anti-alias scale {scale}: need 1/scale to be an integer (1, 1/2, 1/4 ...)")
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        coords = torch.arange(size, dtype=torch.float32)
        mean = (size - 1) / 2
        g = torch.exp(-((coords - mean) ** 2) / (2 * sigma ** 2)) if sigma > 0 else torch.ones(1)
        kernel = g.view(-1, 1) * g.view(1, -1)
        kernel = kernel / kernel.sum()  # (k, k), sums to 1
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight.to(out.dtype), groups=self.groups)  # blur, same size
        return out[:, :, ::self.step, ::self.step]  # (B, C, H*s, W*s)



class ImagePyramid(nn.Module):
    """The same image at several scales (1, 1/2, 1/4, 1/8 in the paper), as the multi-scale loss sees it (§3.4).

    Returns a list in the order of ``scales``; keys ``downs.1``, ``downs.0-5``... as in the official code.
    (Training computes the loss with :class:`deepfake_lab.perceptual.PerceptualLoss`, whose pyramid uses the
    same Gaussian kernels.)
    """

    def __init__(self, scales: tuple[float, ...], channels: int = 3):
        super().__init__()
        self.scales = tuple(scales)
        self.downs = nn.ModuleDict({str(s).replace(".", "-"): AntiAliasInterpolation2d(channels, s) for s in scales})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.downs[str(s).replace(".", "-")](x) for s in self.scales]
