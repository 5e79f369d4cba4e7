"""The keypoint detector: where the object's parts are, and how each part is locally rotated and stretched.

§3.1 of Siarohin et al. (2019) approximates the motion near each keypoint :math:`p_k` by its first-order
Taylor expansion, so the detector predicts, for each of K keypoints (10 in the paper),

* its position :math:`p_k \\in [-1, 1]^2`: the *soft-argmax* of a heatmap. An hourglass predicts K
  score maps, a softmax over all pixels turns each into a probability map :math:`H_k` (sharpened by a
  temperature :math:`\\tau = 0.1`), and the position is the expected coordinate (eq. in §3.1 and supp.):

  .. math:: p_k = \\sum_z H_k(z)\\, z, \\qquad H_k = \\mathrm{softmax}_z\\!\\left(\\frac{s_k(z)}{\\tau}\\right)

* its Jacobian :math:`J_k \\in \\mathbb{R}^{2\\times 2}`: four more maps per keypoint, averaged with the
  keypoint's own heatmap as weights, :math:`J_k = \\sum_z H_k(z)\\, M_k(z)`. The head starts at zero
  weights and bias (1, 0, 0, 1), so every :math:`J_k` starts as the identity.

Being differentiable, both are learnt without any keypoint labels: only the reconstruction and
equivariance losses (:mod:`.equivariance`) shape them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .grids import AntiAliasInterpolation2d, full_precision, make_coordinate_grid
from .hourglass import Hourglass

__all__ = ["KPDetector", "soft_argmax", "relative_keypoints"]


def soft_argmax(heatmap: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) of probability maps: (B, K, H, W) summing to 1 over (H, W) -> (B, K, 2) in [-1, 1]."""
    grid = make_coordinate_grid(heatmap.shape[2:], heatmap.dtype, heatmap.device)  # (H, W, 2)
    return (heatmap.unsqueeze(-1) * grid.view(1, 1, *grid.shape)).sum(dim=(2, 3))


class KPDetector(nn.Module):
    """Image -> ``{"value": (B, K, 2), "jacobian": (B, K, 2, 2), "heatmap": (B, K, h, w)}``.

    The image (B, 3, H, W) in [0, 1] is first downsampled by ``scale_factor`` (1/4 at 256x256, so the
    hourglass sees 64x64). The 7x7 heads use ``pad`` (0 in the official vox config: the heatmap is then
    6 pixels smaller than the features, and its [-1, 1] grid spans that smaller map).
    """

    def __init__(self, block_expansion: int = 32, num_kp: int = 10, num_channels: int = 3, max_features: int = 1024,
                 num_blocks: int = 5, temperature: float = 0.1, estimate_jacobian: bool = True,
                 scale_factor: float = 0.25, single_jacobian_map: bool = False, pad: int = 0):
        super().__init__()
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.predictor = Hourglass(block_expansion, in_features=num_channels, max_features=max_features,
                                   num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7),
                                      padding=pad)
            self.reset_jacobian()
        else:
            self.jacobian = None
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    @torch.no_grad()
    def reset_jacobian(self) -> None:
        """Start every Jacobian at the identity: zero weights, bias (1, 0, 0, 1) per map."""
        self.jacobian.weight.zero_()
        self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            x = self.down(x)  # (B, 3, H, W) -> (B, 3, H*s, W*s)
        features = self.predictor(x)  # (B, block_expansion + 3, h, w)
        scores = self.kp(features)  # (B, K, h', w')
        maps = self.jacobian(features) if self.jacobian is not None else None  # (B, 4K, h', w')
        b, k, h, w = scores.shape
        with full_precision(x.device.type):  # positions in fp32 even under bf16 autocast
            heatmap = F.softmax(scores.view(b, k, -1).float() / self.temperature, dim=2).view(b, k, h, w)
            out = {"value": soft_argmax(heatmap), "heatmap": heatmap}  # value: (B, K, 2)
            if maps is not None:
                maps = maps.float().reshape(b, self.num_jacobian_maps, 4, h, w)
                jacobian = (heatmap.unsqueeze(2) * maps).view(b, k, 4, -1).sum(dim=-1)  # weighted mean, (B, K, 4)
                out["jacobian"] = jacobian.view(b, k, 2, 2)
        return out


def relative_keypoints(kp_source: dict[str, torch.Tensor], kp_driving: dict[str, torch.Tensor],
                       kp_reference: dict[str, torch.Tensor], scale: float = 1.0,
                       jacobians: bool = True) -> dict[str, torch.Tensor]:
    """The source's keypoints moved as the driver's moved since its reference frame (relative transfer, §3.5):
    :math:`p^S + \\alpha (p^{D_t} - p^{D_1})`, and with ``jacobians`` :math:`J^{D_t} (J^{D_1})^{-1} J^S`.
    Dicts of ``value`` (B, K, 2) and optionally ``jacobian`` (B, K, 2, 2); ``scale`` is :math:`\\alpha`."""
    new = {"value": kp_source["value"] + (kp_driving["value"] - kp_reference["value"]) * scale}
    if "jacobian" in kp_driving:
        if jacobians:
            change = torch.matmul(kp_driving["jacobian"], torch.inverse(kp_reference["jacobian"]))
            new["jacobian"] = torch.matmul(change, kp_source["jacobian"])
        else:
            new["jacobian"] = kp_driving["jacobian"]
    return new
