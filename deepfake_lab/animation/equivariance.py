"""Equivariance: keypoints must move *with* the image (§3.4 of the paper).

Nothing tells the detector where keypoints should be. What it is told is consistency: if we warp a
frame X by a known random transform :math:`\\mathcal{T}_{X\\leftarrow Y}` to get Y, the keypoints of Y,
mapped back through the transform, must land on the keypoints of X (eq. 7), and the Jacobians must
compose the same way (eq. 8):

.. math::

    \\mathcal{L}_{eq} = \\left\\lVert p^X_k - \\mathcal{T}_{X\\leftarrow Y}(p^Y_k) \\right\\rVert_1,
    \\qquad
    \\mathcal{L}_{jac} = \\left\\lVert \\mathbb{1} - (J^X_k)^{-1}\\, \\left.\\frac{d\\mathcal{T}_{X\\leftarrow Y}(p)}{dp}\\right|_{p = p^Y_k} J^Y_k \\right\\rVert_1

The random transforms are a small affine map (noise with standard deviation 0.05 added to the
identity) plus a thin-plate-spline bend with 5x5 control points (weights with standard deviation
0.005), as in the official vox-256 configuration. The TPS radial term is :math:`r^2 \\log r` of the
L1 distance to each control point, as in the official code.
"""
from __future__ import annotations

import torch

from .grids import full_precision, make_coordinate_grid, warp

__all__ = ["RandomTransform", "equivariance_value_loss", "equivariance_jacobian_loss"]


class RandomTransform:
    """A batch of random smooth maps :math:`\\mathcal{T}: [-1, 1]^2 \\to \\mathbb{R}^2` (affine + TPS).

    ``theta`` (B, 2, 3) is the affine part; ``control_params`` (B, 1, P^2) the TPS weights on a PxP grid
    of ``control_points``. Pass a ``generator`` for reproducible draws; ``sigma_tps=0`` gives affine only.
    """

    def __init__(self, batch_size: int, sigma_affine: float = 0.05, sigma_tps: float = 0.005, points_tps: int = 5,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None):
        self.bs = batch_size
        noise = torch.randn(batch_size, 2, 3, generator=generator) * sigma_affine
        self.theta = (noise + torch.eye(2, 3).view(1, 2, 3)).to(device)  # (B, 2, 3)
        self.tps = sigma_tps > 0 and points_tps > 0
        if self.tps:
            self.control_points = make_coordinate_grid((points_tps, points_tps), device=device).view(1, -1, 2)
            self.control_params = (torch.randn(batch_size, 1, points_tps ** 2, generator=generator)
                                   * sigma_tps).to(device)

    @classmethod
    def identity(cls, batch_size: int, device=None) -> "RandomTransform":
        return cls(batch_size, sigma_affine=0.0, sigma_tps=0.0, device=device)

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Apply the map to points: (B, N, 2) -> (B, N, 2).

        .. math:: \\mathcal{T}(z) = A z + t + \\sum_{c} w_c\\, r_c^2 \\log(r_c + 10^{-6}), \\quad r_c = \\lVert z - c \\rVert_1
        """
        theta = self.theta.to(coordinates.dtype).unsqueeze(1)  # (B, 1, 2, 3)
        out = torch.matmul(theta[..., :2], coordinates.unsqueeze(-1)) + theta[..., 2:]  # (B, N, 2, 1)
        out = out.squeeze(-1)
        if self.tps:
            cp = self.control_points.to(coordinates.dtype)  # (1, P^2, 2)
            dist = (coordinates.view(coordinates.shape[0], -1, 1, 2) - cp.view(1, 1, -1, 2)).abs().sum(-1)  # (B, N, P^2)
            radial = dist ** 2 * torch.log(dist + 1e-6) * self.control_params.to(coordinates.dtype)
            out = out + radial.sum(dim=2).view(self.bs, coordinates.shape[1], 1)  # same offset for x and y
        return out

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """:math:`d\\mathcal{T}/dz` at each point, by autograd: (B, N, 2) -> (B, N, 2, 2) (rows: d x', d y')."""
        with torch.enable_grad():
            z = coordinates if coordinates.requires_grad else coordinates.detach().requires_grad_(True)
            new = self.warp_coordinates(z)
            grad_x = torch.autograd.grad(new[..., 0].sum(), z, create_graph=True)[0]  # (B, N, 2)
            grad_y = torch.autograd.grad(new[..., 1].sum(), z, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Warp images by the map (reflection padding at the borders): (B, C, H, W) -> (B, C, H, W).

        Output pixel z shows input point :math:`\\mathcal{T}(z)`, so the map goes from the new frame's
        coordinates to the old frame's: :math:`\\mathcal{T}_{X\\leftarrow Y}` for Y = the returned frame.
        """
        b, _, h, w = frame.shape
        with full_precision(frame.device.type):
            grid = make_coordinate_grid((h, w), torch.float32, frame.device).view(1, h * w, 2).expand(b, -1, -1)
            grid = self.warp_coordinates(grid).view(b, h, w, 2)
        return warp(frame, grid, padding_mode="reflection")


def equivariance_value_loss(kp_x: torch.Tensor, kp_y: torch.Tensor, transform: RandomTransform) -> torch.Tensor:
    """Eq. 7: mean :math:`| p^X - \\mathcal{T}_{X\\leftarrow Y}(p^Y) |` over batch, keypoints and x/y."""
    with full_precision(kp_x.device.type):
        return (kp_x.float() - transform.warp_coordinates(kp_y.float())).abs().mean()


def equivariance_jacobian_loss(jac_x: torch.Tensor, kp_y: torch.Tensor, jac_y: torch.Tensor,
                               transform: RandomTransform) -> torch.Tensor:
    """Eq. 8: mean :math:`| \\mathbb{1} - (J^X)^{-1} \\, T'(p^Y) \\, J^Y |` (the official code's form)."""
    with full_precision(kp_y.device.type):
        composed = torch.matmul(transform.jacobian(kp_y.float()), jac_y.float())  # (B, K, 2, 2)
        value = torch.matmul(torch.inverse(jac_x.float()), composed)
        eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
        return (eye - value).abs().mean()
