"""The occlusion-aware generator (§3.3): warp the source's *features*, not its pixels, then decode.

.. math:: \\xi' = \\hat{\\mathcal{O}}_{S\\leftarrow D} \\odot f_w\\!\\left(\\xi, \\hat{\\mathcal{T}}_{S\\leftarrow D}\\right)

An encoder (a 7x7 block and two down blocks) turns the source into features :math:`\\xi` at 1/4
resolution; the dense flow from :class:`~.dense_motion.DenseMotionNetwork` warps them (:math:`f_w` is
``grid_sample``), the occlusion map dims what the source cannot show, residual blocks and two up blocks
decode the result, and a 7x7 convolution with a sigmoid gives the image in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dense_motion import DenseMotionNetwork
from .grids import warp
from .hourglass import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d

__all__ = ["OcclusionAwareGenerator", "resize_flow"]


def resize_flow(deformation: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a sampling grid (B, h, w, 2) to (B, H, W, 2) (its values are already in [-1, 1])."""
    if tuple(deformation.shape[1:3]) == tuple(size):
        return deformation
    grid = deformation.permute(0, 3, 1, 2)  # (B, 2, h, w)
    grid = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
    return grid.permute(0, 2, 3, 1)


class OcclusionAwareGenerator(nn.Module):
    """(source (B, 3, H, W) in [0, 1], keypoints of driving and source) -> dict with ``prediction``.

    Also returns ``deformed`` (the source *image* warped by the dense flow, for pictures and for
    understanding), ``mask``, ``sparse_deformed``, ``occlusion_map`` and ``deformation`` from the
    dense motion network.
    """

    def __init__(self, num_channels: int = 3, num_kp: int = 10, block_expansion: int = 64, max_features: int = 512,
                 num_down_blocks: int = 2, num_bottleneck_blocks: int = 6, estimate_occlusion_map: bool = True,
                 dense_motion_params: dict | None = None):
        super().__init__()
        self.dense_motion_network = (DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                        estimate_occlusion_map=estimate_occlusion_map,
                                                        **dense_motion_params)
                                     if dense_motion_params is not None else None)
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        width = [min(max_features, block_expansion * (2 ** i)) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(width[i], width[i + 1]) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(UpBlock2d(width[num_down_blocks - i], width[num_down_blocks - i - 1])
                                       for i in range(num_down_blocks))
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width[num_down_blocks]))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.num_down_blocks = num_down_blocks

    def encode(self, source_image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> features :math:`\\xi` (B, C, H/4, W/4) (with two down blocks)."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Warped features (B, C, H/4, W/4) -> image (B, 3, H, W) in [0, 1]."""
        out = self.bottleneck(features)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(self, source_image: torch.Tensor, kp_driving: dict[str, torch.Tensor],
                kp_source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        factor = 2 ** self.num_down_blocks
        if source_image.shape[-2] % factor or source_image.shape[-1] % factor:
            raise ValueError(f"generator input of {source_image.shape[-1]}x{source_image.shape[-2]}: width and "
                             f"height must be divisible by {factor}")
        out = self.encode(source_image)  # (B, C, H/4, W/4)
        result: dict[str, torch.Tensor] = {}
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(source_image, kp_driving, kp_source)
            result.update(motion)
            flow = resize_flow(motion["deformation"], tuple(out.shape[2:]))
            out = warp(out, flow)  # f_w(xi, T)
            occlusion = motion.get("occlusion_map")
            if occlusion is not None:
                if occlusion.shape[2:] != out.shape[2:]:
                    occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear", align_corners=False)
                out = out * occlusion.to(out.dtype)  # O (.) f_w(xi, T)
            result["deformed"] = warp(source_image, resize_flow(motion["deformation"], tuple(source_image.shape[2:])))
        result["prediction"] = self.decode(out)  # (B, 3, H, W) in [0, 1]
        return result
