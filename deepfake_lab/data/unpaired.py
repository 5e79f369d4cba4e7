"""Unpaired image data for CycleGAN, in the official "unaligned" folder layout.

A data root holds ``trainA/`` and ``trainB/`` (and usually ``testA/`` and ``testB/``): images of
domain A (X in the paper) and domain B (Y), any number of each, any sizes, with no correspondence
between the two folders. This is what ``deepfake-lab fetch cyclegan horse2zebra`` unpacks, and what
the embedded ``face2cartoon`` and ``photo2winter`` sets are built as (:mod:`deepfake_lab.data.embedded`).

Every item is a dict ``{"A": (3, h, w), "B": (3, h, w), "A_path": str, "B_path": str}`` with images in
[-1, 1]. As in the official ``UnalignedDataset``, the data set is as long as the larger folder; item i
takes A image ``i mod |A|`` and a *random* B image, so the pairs change every epoch (the loop gives
each item its own seed, so this is still reproducible).

Preprocessing (``preprocess``), as the official ``--preprocess`` option:

* ``resize_and_crop`` (the paper's): resize to ``load_size`` x ``load_size`` (286), random crop
  ``crop_size`` (256); changes the aspect ratio of rectangular images, like the official code;
* ``scale_width_and_crop``: scale the width to ``load_size`` keeping the aspect ratio, random crop;
* ``crop``: random crop ``crop_size`` at the native size (images smaller than that are first scaled up
  so their short side is ``crop_size``);
* ``none``: keep the image, centre-cropped to a multiple of 4 on each side (at most 3 pixels are
  dropped); for batch size 1, or folders of images of one size.

then a random horizontal flip (``flip``). Grayscale, RGBA, CMYK, 16-bit and palette images are
converted to RGB with a warning (:mod:`deepfake_lab.data.images`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from . import DataError, evenly_spaced
from .images import crop_to_multiple, list_images, load_image, pil_to_tensor

__all__ = ["PREPROCESS", "transform_image", "UnpairedImageFolder", "check_unaligned_root", "resolve_data_root"]

PREPROCESS = ("resize_and_crop", "scale_width_and_crop", "crop", "none")


def _random_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    if min(w, h) < size:  # too small to crop: scale up so the short side is `size`
        scale = size / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = image.size
    x = int(torch.randint(0, w - size + 1, ()))
    y = int(torch.randint(0, h - size + 1, ()))
    return image.crop((x, y, x + size, y + size))


def transform_image(image: Image.Image, preprocess: str = "resize_and_crop", load_size: int = 286,
                    crop_size: int = 256, flip: bool = True) -> torch.Tensor:
    """One RGB PIL image -> (3, H, W) in [-1, 1], with the random resize/crop/flip of ``preprocess``.

    Randomness comes from torch's global generator (seeded per item by the training loop).
    """
    if preprocess == "resize_and_crop":
        image = _random_crop(image.resize((load_size, load_size), Image.BICUBIC), crop_size)
    elif preprocess == "scale_width_and_crop":
        w, h = image.size
        if w != load_size:
            image = image.resize((load_size, max(crop_size, round(h * load_size / w))), Image.BICUBIC)
        image = _random_crop(image, crop_size)
    elif preprocess == "crop":
        image = _random_crop(image, crop_size)
    elif preprocess == "none":
        image = crop_to_multiple(image, 4)
    else:
        raise DataError(f"preprocess {preprocess!r}: use one of {', '.join(PREPROCESS)}")
    x = pil_to_tensor(image)  # (3, H, W)
    if flip and bool(torch.rand(()) < 0.5):
        x = x.flip(-1)
    return x


def check_unaligned_root(root: str | os.PathLike, phase: str = "train") -> tuple[Path, Path]:
    """The ``<phase>A`` and ``<phase>B`` folders of ``root``, or a :class:`DataError` that says what is wrong."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    a, b = root / f"{phase}A", root / f"{phase}B"
    if a.is_dir() and b.is_dir():
        return a, b
    present = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
    hint = ""
    if any(n in present for n in ("train/", "val/")):
        hint = (" It has train/ or val/: that is the pix2pix layout of side-by-side A|B pairs; "
                "use `deepfake-lab train pix2pix` for it.")
    raise DataError(f"{root}: not an unaligned (CycleGAN) data folder: it needs {phase}A/ and {phase}B/ "
                    f"(found: {', '.join(present) or 'no sub-folders'}).{hint}")


def resolve_data_root(spec: str | os.PathLike) -> Path:
    """``--data`` for CycleGAN: an embedded data set name (built on first use), a folder in the official layout,
    or the name of an official set already downloaded by ``deepfake-lab fetch cyclegan NAME``."""
    from .embedded import embedded_names, embedded_path, is_embedded

    if is_embedded(str(spec)):
        return embedded_path(str(spec))
    path = Path(spec).expanduser()
    if path.exists():
        check_unaligned_root(path, "train")
        return path
    from .fetch import CYCLEGAN_DATASETS, dataset_path

    if str(spec) in CYCLEGAN_DATASETS:
        fetched = dataset_path("cyclegan", str(spec))
        if (fetched / ".fetch.json").exists():
            check_unaligned_root(fetched, "train")
            return fetched
        raise DataError(f"--data {spec}: no such folder; download the official set with "
                        f"`deepfake-lab fetch cyclegan {spec}` (then --data {spec} finds it)")
    raise DataError(f"--data {spec}: neither a folder nor an embedded data set ({', '.join(embedded_names())})")


class UnpairedImageFolder(Dataset):
    """Images of ``<root>/<phase>A`` and ``<root>/<phase>B``, unpaired (see the module docstring).

    ``max_items`` limits the data set's length (the official ``--max_dataset_size``); ``train_images`` keeps
    only that many images of *each* folder, evenly spaced in name order (the data-size curves of the lesson).
    """

    def __init__(self, root: str | os.PathLike, phase: str = "train", preprocess: str = "resize_and_crop",
                 load_size: int = 286, crop_size: int = 256, flip: bool = True, max_items: int | None = None,
                 train_images: int | None = None):
        if preprocess not in PREPROCESS:
            raise DataError(f"preprocess {preprocess!r}: use one of {', '.join(PREPROCESS)}")
        if crop_size % 4:
            raise DataError(f"crop size {crop_size}: must be a multiple of 4 (the generator halves it twice)")
        if preprocess != "none" and crop_size < 32:
            raise DataError(f"crop size {crop_size}: need at least 32")
        self.root = Path(root)
        dir_a, dir_b = check_unaligned_root(self.root, phase)
        self.paths_a, self.paths_b = list_images(dir_a), list_images(dir_b)
        for folder, paths in ((dir_a, self.paths_a), (dir_b, self.paths_b)):
            if not paths:
                raise DataError(f"{folder}: no images in it (looked for .png, .jpg, .jpeg, .bmp, .tif, .webp ...)")
        if train_images is not None:
            self.paths_a, self.paths_b = (
                [paths[i] for i in evenly_spaced(len(paths), train_images, f"images of {folder} (--train-images)")]
                for folder, paths in ((dir_a, self.paths_a), (dir_b, self.paths_b)))
        self.preprocess, self.load_size, self.crop_size, self.flip = preprocess, load_size, crop_size, flip
        self.max_items = max_items

    def __len__(self) -> int:
        n = max(len(self.paths_a), len(self.paths_b))
        return min(n, self.max_items) if self.max_items else n

    def _load(self, path: Path) -> torch.Tensor:
        return transform_image(load_image(path), self.preprocess, self.load_size, self.crop_size, self.flip)

    def __getitem__(self, index: int) -> dict:
        path_a = self.paths_a[index % len(self.paths_a)]
        path_b = self.paths_b[int(torch.randint(len(self.paths_b), ()))]  # unpaired: a random B each time
        return {"A": self._load(path_a), "B": self._load(path_b), "A_path": str(path_a), "B_path": str(path_b)}
