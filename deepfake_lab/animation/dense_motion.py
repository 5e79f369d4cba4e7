"""Dense motion: from K keypoint motions to one flow field and an occlusion map (§3.2 of the paper).

Each keypoint k gives a *sparse motion*, the first-order (affine) approximation of the backward map
near that keypoint (eq. 4):

.. math:: \\mathcal{T}_{S\\leftarrow D}(z) \\approx p^S_k + J_k\\,(z - p^D_k), \\qquad J_k = J^S_k \\left(J^D_k\\right)^{-1}

plus one more, the identity (k = 0), for the background that does not move. The source image is
warped by all K + 1 motions, and an hourglass looks at the warped copies together with the keypoint
heatmap differences :math:`H_k(z) = G(z; p^D_k) - G(z; p^S_k)` (eq. 6). It outputs

* masks :math:`M_k`, a softmax over the K + 1 motions at every pixel, which blend them into one dense
  flow (eq. 5): :math:`\\hat{\\mathcal{T}}_{S\\leftarrow D}(z) = \\sum_{k=0}^{K} M_k(z)\\,\\mathcal{T}_k(z)`;
* the occlusion map :math:`\\hat{\\mathcal{O}}_{S\\leftarrow D} \\in [0, 1]` (a sigmoid): where the source
  cannot be seen in the driving pose (0), the generator has to inpaint (§3.3).

All of this runs at a reduced resolution (1/4 at 256x256) and is upsampled by the generator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .grids import AntiAliasInterpolation2d, full_precision, kp2gaussian, make_coordinate_grid, warp
from .hourglass import Hourglass

__all__ = ["DenseMotionNetwork", "sparse_motions", "heatmap_difference"]


def heatmap_difference(kp_driving: torch.Tensor, kp_source: torch.Tensor, spatial_size: tuple[int, int],
                       kp_variance: float) -> torch.Tensor:
    """Eq. 6: :math:`G(z; p^D_k) - G(z; p^S_k)`, plus a zero map for the background.

    (B, K, 2) x 2 -> (B, K + 1, 1, H, W).
    """
    heat = kp2gaussian(kp_driving, spatial_size, kp_variance) - kp2gaussian(kp_source, spatial_size, kp_variance)
    zeros = torch.zeros_like(heat[:, :1])
    return torch.cat([zeros, heat], dim=1).unsqueeze(2)


def sparse_motions(kp_driving: dict[str, torch.Tensor], kp_source: dict[str, torch.Tensor],
                   spatial_size: tuple[int, int]) -> torch.Tensor:
    """Eq. 4 for every keypoint, and the identity for the background: (B, K + 1, H, W, 2).

    ``motions[:, 0]`` is the identity grid; ``motions[:, k]`` maps each driving-frame point z to
    :math:`p^S_k + J^S_k (J^D_k)^{-1} (z - p^D_k)` (without Jacobians: :math:`p^S_k + z - p^D_k`).
    """
    p_d, p_s = kp_driving["value"], kp_source["value"]  # (B, K, 2)
    b, k, _ = p_d.shape
    h, w = spatial_size
    identity = make_coordinate_grid((h, w), p_d.dtype, p_d.device).view(1, 1, h, w, 2)
    z = identity - p_d.view(b, k, 1, 1, 2)  # z - p^D_k: (B, K, H, W, 2)
    if "jacobian" in kp_driving and "jacobian" in kp_source:
        jac = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))  # (B, K, 2, 2)
        z = torch.einsum("bkij,bkhwj->bkhwi", jac, z)
    to_source = z + p_s.view(b, k, 1, 1, 2)
    return torch.cat([identity.expand(b, 1, h, w, 2), to_source], dim=1)  # (B, K + 1, H, W, 2)


class DenseMotionNetwork(nn.Module):
    """(source image, keypoints of driving and source) -> masks, dense flow, occlusion map.

    Returns a dict with ``sparse_deformed`` (B, K+1, C, h, w): the source warped by each motion;
    ``mask`` (B, K+1, h, w); ``deformation`` (B, h, w, 2): the dense backward flow as a sampling grid;
    and ``occlusion_map`` (B, 1, h, w) when ``estimate_occlusion_map``. h, w = H, W times ``scale_factor``.
    """

    def __init__(self, block_expansion: int = 64, num_blocks: int = 5, max_features: int = 1024, num_kp: int = 10,
                 num_channels: int = 3, estimate_occlusion_map: bool = True, scale_factor: float = 0.25,
                 kp_variance: float = 0.01):
        super().__init__()
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        # input per motion: its heatmap difference (1) + the warped source (C)
        self.hourglass = Hourglass(block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
                          if estimate_occlusion_map else None)
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, source_image: torch.Tensor, kp_driving: dict[str, torch.Tensor],
                kp_source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            source_image = self.down(source_image)  # (B, C, H, W) -> (B, C, h, w)
        b, c, h, w = source_image.shape
        out: dict[str, torch.Tensor] = {}

        with full_precision(source_image.device.type):  # keypoint geometry in fp32 under bf16 autocast
            kp_d = {k: v.float() for k, v in kp_driving.items() if k in ("value", "jacobian")}
            kp_s = {k: v.float() for k, v in kp_source.items() if k in ("value", "jacobian")}
            heatmaps = heatmap_difference(kp_d["value"], kp_s["value"], (h, w), self.kp_variance)
            motions = sparse_motions(kp_d, kp_s, (h, w))  # (B, K+1, h, w, 2)
        # warp the source once per motion: fold the K+1 motions into the batch
        repeated = source_image.unsqueeze(1).expand(b, self.num_kp + 1, c, h, w).reshape(-1, c, h, w)
        deformed = warp(repeated, motions.reshape(-1, h, w, 2)).view(b, self.num_kp + 1, c, h, w)
        out["sparse_deformed"] = deformed

        x = torch.cat([heatmaps.to(deformed.dtype), deformed], dim=2).view(b, -1, h, w)  # (B, (K+1)(C+1), h, w)
        features = self.hourglass(x)
        mask = F.softmax(self.mask(features).float(), dim=1)  # (B, K+1, h, w), sums to 1 over motions
        out["mask"] = mask
        with full_precision(mask.device.type):
            deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)  # eq. 5: (B, h, w, 2)
        out["deformation"] = deformation
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features).float())  # (B, 1, h, w)
        return out
