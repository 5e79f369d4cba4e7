"""The blocks of the First Order Motion Model: down/up/same/residual blocks and the hourglass.

Both the keypoint detector and the dense motion network are an *hourglass* (Newell et al. 2016, as
the paper says in §3 and its supplement): an encoder that halves the resolution ``num_blocks`` times,
and a decoder that doubles it back, concatenating the encoder's features of the same size (U-Net
skips). Its output has ``block_expansion + in_features`` channels at the input's resolution.

The layouts follow the official code so state-dict keys match (``down_blocks.0.conv.weight``,
``down_blocks.0.norm.running_mean``...):

* every block is convolution -> BatchNorm (affine, with running statistics) -> ReLU;
* a down block then average-pools by 2; an up block *first* upsamples by 2 with
  ``F.interpolate(scale_factor=2)`` (nearest neighbour), then convolves;
* the residual block is pre-activation (norm, ReLU, conv, norm, ReLU, conv, plus the input;
  He et al. 2016b), used in the generator's bottleneck.

(The generic :mod:`deepfake_lab.blocks` use other key names and orders, so these are kept separate.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SameBlock2d", "DownBlock2d", "UpBlock2d", "ResBlock2d", "Encoder", "Decoder", "Hourglass"]


class SameBlock2d(nn.Module):
    """Conv -> BN -> ReLU at the same resolution: (B, in, H, W) -> (B, out, H, W)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """Conv -> BN -> ReLU -> 2x2 average pool: (B, in, H, W) -> (B, out, H/2, W/2)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock2d(nn.Module):
    """Nearest 2x upsampling -> conv -> BN -> ReLU: (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=2)  # mode="nearest", the official call
        return F.relu(self.norm(self.conv(out)))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: :math:`y = x + W_2 * \\mathrm{ReLU}(\\mathrm{BN}(W_1 * \\mathrm{ReLU}(\\mathrm{BN}(x))))`.

    Shapes: (B, C, H, W) -> (B, C, H, W). Keys ``conv1``, ``conv2``, ``norm1``, ``norm2``.
    """

    def __init__(self, in_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _width(block_expansion: int, level: int, max_features: int) -> int:
    """Channels at hourglass level ``level``: ``min(max_features, block_expansion * 2**level)``."""
    return min(max_features, block_expansion * (2 ** level))


class Encoder(nn.Module):
    """``num_blocks`` down blocks; returns the input and every block's output (the skips), finest first."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(in_features if i == 0 else _width(block_expansion, i, max_features),
                        _width(block_expansion, i + 1, max_features))
            for i in range(num_blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))  # (B, C_i, H/2^i, W/2^i)
        return outs


class Decoder(nn.Module):
    """``num_blocks`` up blocks, each followed by concatenation with the encoder output of its size."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * _width(block_expansion, i + 1, max_features)
            blocks.append(UpBlock2d(in_filters, _width(block_expansion, i, max_features)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()  # the coarsest features
        for block in self.up_blocks:
            out = block(out)
            out = torch.cat([out, skips.pop()], dim=1)  # U-Net skip
        return out  # (B, block_expansion + in_features, H, W)


class Hourglass(nn.Module):
    """Encoder + decoder with skips: (B, in_features, H, W) -> (B, block_expansion + in_features, H, W).

    H and W must be divisible by ``2 ** num_blocks``.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.num_blocks = num_blocks
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.num_blocks
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"hourglass input of {x.shape[-1]}x{x.shape[-2]}: width and height must be divisible "
                             f"by 2^num_blocks = {factor}; resize the frames or lower num_blocks")
        return self.decoder(self.encoder(x))
