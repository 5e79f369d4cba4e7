"""Small helpers that turn tensors into pictures (grids, scatter plots) for logs, notebooks and the app."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

__all__ = ["to_pil", "to_grid_image", "tensor_to_uint8", "scatter_plot"]


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


def scatter_plot(fake: torch.Tensor, real: torch.Tensor | None = None, title: str = "", limit: float | None = None,
                 size: int = 400):
    """A PIL scatter plot of generated points (N, 2) over real ones (M, 2); matplotlib's Agg backend, no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size / 100, size / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=4, c="#1f77b4", alpha=0.5, linewidths=0, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="#d62728", alpha=0.5, linewidths=0, label="generated")
    ref = real if real is not None else fake
    lim = limit or float(max(3.0, 1.25 * ref.abs().max()))
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
