"""Reading image files for the lessons, with errors a person can act on.

:func:`load_image` opens any file Pillow reads and returns an 8-bit RGB image, or raises
:class:`~deepfake_lab.data.DataError` naming the file and what to do:

* not there, a folder, empty (0 bytes), not an image (a text file renamed ``.png``), or an image format
  Pillow cannot decode;
* corrupt or truncated data (a half-downloaded JPEG);
* too small (less than ``MIN_SIDE`` = 32 pixels a side: the networks downsample several times) or too
  large (more than ``MAX_PIXELS`` = 40 megapixels: it would not fit in memory as float tensors); the
  size is read from the header, before any pixel is decoded. A "decompression bomb" (a few kB that claim
  20000x20000 pixels) gets the same message, with its size, and never a Pillow traceback.

These two limits are the one size policy of every entry point (the CLI's ``translate``, ``swap``, ``eval``,
``animate`` and the app): use :func:`check_size` for sizes known without this loader (video frames).

What can be converted is converted, with a :class:`ImageConversionWarning` that says what changed:
grayscale (copied to 3 channels), transparency (composited over white), palette, CMYK, 16-bit and
floating-point images (scaled to 8 bits). The EXIF orientation tag is applied, so a phone photo comes
out the way up it was taken. Animated files use their first frame. The command line prints each warning
as one line (``deepfake-lab: note: photo.png: is grayscale; ...``); the app shows it on the page.

:func:`pil_to_tensor` turns an image into the (3, H, W) tensor in [-1, 1] every lesson uses;
:func:`pad_to_multiple` / :func:`unpad` let a network that needs sizes divisible by 4 (or 256) run
on any image and give back the original size.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from . import DataError

__all__ = ["IMAGE_EXTENSIONS", "MIN_SIDE", "MAX_PIXELS", "ImageConversionWarning", "load_image", "to_rgb",
           "check_size", "list_images", "pil_to_tensor", "pad_to_multiple", "unpad", "crop_to_multiple"]

#: file name endings taken as images when a folder is listed (compared in lower case): the one list of them
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
                    ".pnm", ".tga")
#: smallest side accepted, in pixels (every network here downsamples at least 3 times; SSIM needs 11)
MIN_SIDE = 32
#: largest image (or video frame) accepted, in pixels (width x height)
MAX_PIXELS = 40_000_000
#: what to do with an image over :data:`MAX_PIXELS`
DOWNSCALE_IMAGE = "downscale it first (e.g. to 2048 pixels on the long side)"


class ImageConversionWarning(UserWarning):
    """An image was converted to 8-bit RGB (grayscale, transparency, CMYK, 16-bit, palette...)."""


def _note(name: str, text: str) -> None:
    warnings.warn(f"{name}: {text}", ImageConversionWarning, stacklevel=3)


def check_size(width: int, height: int, name: str = "image", min_side: int = MIN_SIDE,
               max_pixels: int = MAX_PIXELS, fix: str = DOWNSCALE_IMAGE) -> None:
    """Raise :class:`DataError` if a ``width`` x ``height`` image is too small or too large to use.

    ``fix`` says what to do about a size over the limit (a video needs an ``ffmpeg`` command instead).
    """
    if min(width, height) < min_side:
        raise DataError(f"{name}: {width}x{height} pixels; need at least {min_side}x{min_side}: give a larger image")
    if width * height > max_pixels:
        raise DataError(f"{name}: {width}x{height} pixels = {width * height / 1e6:.1f} megapixels, over the limit of "
                        f"{max_pixels / 1e6:.0f} megapixels; {fix}")


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as the file's header states it, read past Pillow's decompression-bomb guard.

    Only the header is parsed (Pillow's format plugins decode nothing when opening); None if no plugin
    recognises the file.
    """
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            verdict = accept(prefix) if accept else True
            if not verdict or isinstance(verdict, str):
                continue
            try:
                fp.seek(0)
                return factory(fp, str(path)).size
            except Exception:  # not this format after all: try the next plugin
                continue
    return None


def _not_an_image(path: Path) -> str:
    """Why Pillow recognised no image in ``path``: it holds text, or bytes of no format Pillow knows."""
    with open(path, "rb") as fp:
        head = fp.read(512)
    text = head.decode("utf-8", errors="replace")[:-1]  # the last character may be cut in two
    if text.strip() and b"\0" not in head and "\ufffd" not in text:
        return "the file holds text, not image data; give a picture file (PNG, JPEG, WebP ...)"
    return (f"its contents match no image format ({path.suffix or 'no extension'}); if it is a picture, re-save "
            "it as PNG or JPEG with an image editor")


def load_image(path: str | os.PathLike, *, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an 8-bit RGB PIL image (EXIF orientation applied), or raise :class:`DataError`."""
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise DataError(f"{name}: no such file")
    if path.is_dir():
        raise DataError(f"{name}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise DataError(f"{name}: not an image format Pillow can read: empty file (0 bytes); the download or copy "
                        "did not finish: get the file again")
    try:
        with warnings.catch_warnings():  # over Pillow's own limit: refused below, by check_size, from the header
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError as err:
        raise DataError(f"{name}: not an image format Pillow can read: {_not_an_image(path)}") from err
    except Image.DecompressionBombError as err:  # claims over twice Pillow's limit: it would not even open
        size = _header_size(path)
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        what = f"{size[0]}x{size[1]} pixels = {size[0] * size[1] / 1e6:.1f} megapixels" if size else str(err)
        raise DataError(f"{name}: too large to open safely: {what}, over the limit of {limit / 1e6:.0f} megapixels "
                        f"(a possible decompression bomb); {DOWNSCALE_IMAGE}") from err
    except OSError as err:  # unreadable, or a header cut short
        raise DataError(f"{name}: cannot be read: corrupt or truncated ({err}); re-export or re-download the file"
                        ) from err
    with image:
        check_size(image.width, image.height, name, min_side, max_pixels)  # header only: nothing decoded yet
        try:
            image.seek(0)
            if getattr(image, "n_frames", 1) > 1:
                _note(name, f"has {image.n_frames} frames; using the first")
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as err:
            raise DataError(f"{name}: the image data is corrupt or truncated ({err}); re-export or re-download "
                            "the file") from err
        try:
            oriented = ImageOps.exif_transpose(image)
        except Exception:  # a broken EXIF block must not make a readable image unusable
            _note(name, "its EXIF orientation tag is unreadable; used as stored")
            oriented = image.copy()
        return to_rgb(oriented if oriented is not None else image, name)


def to_rgb(image: Image.Image, name: str = "image") -> Image.Image:
    """Convert any PIL image to 8-bit RGB, warning (:class:`ImageConversionWarning`) about what changed.

    * ``L``/``1`` grayscale: the gray value copied to R, G and B;
    * ``RGBA``/``LA``/``PA`` and palettes with transparency: composited over white (transparent areas
      become white, not the arbitrary colour stored under them);
    * ``P`` palette, ``CMYK`` (without colour management), ``YCbCr``, ``LAB``, ``HSV``: converted;
    * 16-bit (``I;16*``, ``I``) and float (``F``) images: scaled to 0..255 (16-bit by /257, floats in [0, 1]
      by x255, other floats clipped).
    """
    mode = image.mode
    if mode == "RGB":
        return image.copy() if image.readonly else image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        _note(name, f"has transparency ({mode}); composited over a white background")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1"):
        _note(name, "is grayscale; its gray values are copied to the 3 RGB channels")
        return image.convert("RGB")
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(image)
        if mode == "F":
            scaled = arr * 255.0 if np.nanmax(arr) <= 1.0 else arr
            _note(name, "is a floating-point image; scaled to 8 bits")
        else:
            scaled = arr / 257.0 if arr.max(initial=0) > 255 or "16" in mode else arr
            _note(name, f"is a {'16' if '16' in mode or arr.max(initial=0) > 255 else '32'}-bit image ({mode}); "
                        "scaled to 8 bits")
        gray = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
        if gray.ndim == 2:
            gray = np.repeat(gray[..., None], 3, axis=2)
        return Image.fromarray(gray[..., :3], "RGB")
    if mode == "CMYK":
        _note(name, "is CMYK; converted to RGB without colour management (colours may shift)")
        return image.convert("RGB")
    _note(name, f"has mode {mode}; converted to RGB")
    return image.convert("RGB")


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """The image files in ``folder`` (by extension, sorted by path; sub-folders too unless ``recursive=False``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder" if not folder.exists() else f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern)
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    return files


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB (or L) PIL image -> a float tensor (C, H, W) in [-1, 1]."""
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()  # (H, W, C) -> (C, H, W)
    return x.div_(127.5).sub_(1.0)


def pad_to_multiple(x: torch.Tensor, multiple: int = 4, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) on the right and bottom so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`unpad`. Reflection padding (the default)
    continues the image without a hard edge; it needs the padding to be smaller than the image, so for
    tiny images it falls back to replication.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        if mode == "reflect" and (ph >= h or pw >= w):
            mode = "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def unpad(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: crop (B, C, H', W') back to the original (H, W)."""
    return x[..., : size[0], : size[1]]


def crop_to_multiple(image: Image.Image, multiple: int = 4) -> Image.Image:
    """Centre-crop a PIL image so both sides are multiples of ``multiple`` (drops at most ``multiple - 1`` pixels)."""
    w, h = image.size
    nw, nh = w - w % multiple, h - h % multiple
    if (nw, nh) == (w, h):
        return image
    left, top = (w - nw) // 2, (h - nh) // 2
    return image.crop((left, top, left + nw, top + nh))
