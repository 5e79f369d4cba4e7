"""Small helpers that turn tensors into pictures (grids, scatter plots) for logs, notebooks and the app."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

__all__ = ["to_pil", "to_grid_image", "tensor_to_uint8"]


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) in [-1, 1] -> uint8 array (N, H, W, C) or (H, W, C)."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """One (C, H, W) image in [-1, 1] (C = 1 or 3) as a PIL image."""
    arr = tensor_to_uint8(image)
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def to_grid_image(images: torch.Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """(N, C, H, W) in [-1, 1] -> one RGB PIL image with the images on a grid (``scale`` enlarges small digits)."""
    from torchvision.utils import make_grid

    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    x = images.detach().float().cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    grid = make_grid(x, nrow=nrow, padding=padding, pad_value=1.0)
    image = to_pil(grid)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image
