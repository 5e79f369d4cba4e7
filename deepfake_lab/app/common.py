"""What every tab of the demo app shares: the models (loaded once), the labelled outputs, input checks.

* :class:`ModelSpec` describes one demo model: what it is, its data and licence, where its weights are
  (:mod:`~deepfake_lab.app.models` builds every one of them from the lesson table).
* :class:`ModelStore` loads each model the first time it is asked for and keeps it (one copy for all
  students, guarded by a lock); ``--weights DIR`` is looked in first, the weights inside the package after.
  It also keeps the last few models the user pointed at (:meth:`ModelStore.cached`) and hands out one lock
  per model (:meth:`ModelStore.lock`): every tab reaches them through the :class:`AppContext` it is given,
  with the :class:`~deepfake_lab.app.batching.Batcher` that stacks simultaneous requests for one model.
* :class:`OutputWriter` writes every image the app returns as a PNG with the visible SYNTHETIC strip and
  the provenance text chunks (:func:`deepfake_lab.provenance.save_labelled_png`); the browser and
  ``gradio_client`` receive exactly that file.
* :func:`user_errors` turns a wrong input or a missing file into a one-line message in the page
  (``gr.Error``), never a traceback.
* :func:`open_image` and :func:`fit_side` are the checks every uploaded picture goes through: refused when
  unreadable, corrupt, too small or too large (from its header, before any pixel is decoded), converted
  to 8-bit RGB with a note that says what changed; :func:`image_input` is the upload component whose
  file reaches them unopened (:func:`upload_path`), and :func:`show_notes` puts the notes on the page
  (``gr.Warning``).

Nothing here imports gradio at module level: only :func:`user_errors`, :func:`image_input` and
:func:`show_notes` do, when called by a tab module.
"""
from __future__ import annotations

import functools
import logging
import math
import shutil
import tempfile
import threading
import uuid
import warnings
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from ..checkpoints import CheckpointError
from ..provenance import save_labelled_png, save_reference_png
from ..settings import demo_weights
from .batching import Batcher

__all__ = ["ModelSpec", "ModelStore", "ModelUnavailable", "OutputWriter", "AppContext", "check_int", "check_float",
           "user_errors", "MAX_SEED", "open_image", "fit_side", "image_input", "upload_path", "show_notes"]

log = logging.getLogger("deepfake_lab.app")

#: seeds are whole numbers in [0, MAX_SEED] (the range of a 32-bit signed integer, what students expect)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class ModelSpec:
    """One demo model, as the About tab describes it and the :class:`ModelStore` loads it.

    ``load(path, device)`` returns the ready-to-run model. Its weights are the file ``key`` of the package's
    weights folder (:meth:`embedded`); with ``--weights DIR`` the file of the same name in ``DIR`` is used
    when it exists.
    """

    key: str  # "gan-digits": the name of its demo weights in the lesson table, the file stem of the model card
    lesson: str  # "gan": the lesson row it comes from
    title: str  # "DCGAN: handwritten digits"
    what: str  # one paragraph: the network and what it makes
    #: the training data, where it comes from, its licence; or a function of the weights path that says so
    data: str | Callable[[Path], str]
    load: Callable[[Path, torch.device], Any]

    def embedded(self) -> Path:
        """The weights shipped in the package (:func:`deepfake_lab.settings.demo_weights`)."""
        return demo_weights(self.key)


class ModelUnavailable(Exception):
    """Weights that cannot be found or read; the message names the file and what to do."""


class ModelStore:
    """Loads each demo model once and hands the same instance to every request.

    Loading happens on first use (so the app starts even when some weights are missing, and says which
    ones on the page), under a lock so that two simultaneous first requests do not load twice. Models the
    user points at (an official checkpoint, a run folder) are kept too, the :data:`USER_MODELS_KEPT` most
    recently used ones (:meth:`cached`).
    """

    #: models the user points at, kept loaded (the least recently used one is dropped)
    USER_MODELS_KEPT = 4

    def __init__(self, device: torch.device, weights_dir: str | Path | None = None):
        self.device = device
        self.weights_dir = Path(weights_dir) if weights_dir else None
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._user: OrderedDict[tuple, Any] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, spec: ModelSpec) -> Path:
        """The weights file for ``spec``: in ``--weights DIR`` if there, else the one shipped in the package."""
        embedded = spec.embedded()
        if self.weights_dir is not None:
            candidate = self.weights_dir / embedded.name
            if candidate.exists():
                return candidate
        return embedded

    def card_path(self, spec: ModelSpec) -> Path:
        """The model card (``<name>.md``) beside the weights that are used."""
        return self.path(spec).with_suffix(".md")

    def get(self, spec: ModelSpec) -> Any:
        """The loaded model for ``spec`` (loaded on the first call, cached after)."""
        model = self._models.get(spec.key)
        if model is not None:
            return model
        with self._lock:
            if spec.key not in self._models:
                path = self.path(spec)
                if not path.exists():
                    where = f" nor in --weights {self.weights_dir}" if self.weights_dir else ""
                    raise ModelUnavailable(
                        f"{spec.title}: weights file {path.name} not found in the package{where}; "
                        f"reinstall deepfake_lab or train it and pass --weights DIR")
                try:
                    self._models[spec.key] = spec.load(path, self.device)
                except (CheckpointError, OSError, KeyError, RuntimeError, ValueError) as err:
                    # the loaders start their message with the file: name it once
                    raise ModelUnavailable(f"{spec.title}: cannot load {path}: "
                                           f"{str(err).removeprefix(f'{path}: ')}") from err
                log.info("loaded %s from %s on %s", spec.key, path, self.device)
            return self._models[spec.key]

    def cached(self, key: tuple, load: Callable[[], Any]) -> Any:
        """The user's model under ``key`` (path, file date, size, options...): ``load()`` the first time, kept after.

        Requests that ask for the same file at once wait for one load of it (``lock(("load", key))``); other
        files, and the other users' requests, are not held up by it.
        """
        with self.lock(("load", key)):
            with self._guard:
                if key in self._user:
                    self._user.move_to_end(key)
                    return self._user[key]
            model = load()
            with self._guard:
                self._user[key] = model
                while len(self._user) > self.USER_MODELS_KEPT:
                    self._user.popitem(last=False)
        return model

    def lock(self, key: str) -> threading.Lock:
        """The one lock of the model called ``key``: one picture at a time per model (official pix2pix switches
        to train mode while it runs)."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def preload(self, specs) -> dict[str, str]:
        """Load every model that can be loaded now; return ``{key: message}`` for those that cannot."""
        problems = {}
        for spec in specs:
            try:
                self.get(spec)
            except ModelUnavailable as err:
                problems[spec.key] = str(err)
        return problems


class OutputWriter:
    """Writes the app's output images as labelled PNGs (visible strip + provenance chunks) in a private folder.

    Gradio copies each returned file into its own cache before sending it, so only the most recent
    ``keep`` files are kept here; the folder is removed when the writer is garbage-collected or at exit.
    """

    def __init__(self, keep: int = 256):
        self.folder = Path(tempfile.mkdtemp(prefix="deepfake-lab-app-"))
        self._recent: deque[Path] = deque()
        self._keep = keep
        self._lock = threading.Lock()
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.folder, True)

    def _name(self, details: dict[str, Any], suffix: str) -> Path:
        return self.folder / f"{details.get('what', 'image').replace(' ', '-')}-{uuid.uuid4().hex[:12]}{suffix}"

    def _remember(self, path: Path) -> Path:
        with self._lock:
            self._recent.append(path)
            while len(self._recent) > self._keep:
                self._recent.popleft().unlink(missing_ok=True)
        return path

    def png(self, image: Image.Image, details: dict[str, Any]) -> Path:
        """Label ``image`` and write it with provenance chunks; ``details`` (model, seed...) go into the chunks."""
        path = self._name(details, ".png")
        save_labelled_png(image, path, {"app": "deepfake-lab demo", **details})
        return self._remember(path)

    def reference_png(self, image: Image.Image, details: dict[str, Any]) -> Path:
        """A real picture shown beside generated ones (input, ground truth): the grey "REAL - not generated"
        strip, as high as the SYNTHETIC one so that the two line up, and ``synthetic=false`` in its chunks."""
        path = self._name(details, ".png")
        save_reference_png(image, path, {"app": "deepfake-lab demo", **details})
        return self._remember(path)

    def video(self, frames, fps: float, details: dict[str, Any]) -> Path:
        """Label every frame ((H, W, 3) uint8) and write an H.264 MP4 whose metadata says it is synthetic.

        The same two labels as :meth:`png`: the strip under every frame, and ``details`` in the container's
        ``description`` tag (:func:`deepfake_lab.animation.media.write_labelled_video`).
        """
        from ..animation.media import write_labelled_video

        path = self._name(details, ".mp4")
        write_labelled_video(path, frames, fps, {"app": "deepfake-lab demo", **details})
        return self._remember(path)


@dataclass
class AppContext:
    """Handed to every tab builder: the device, the model store, the output writer and the batcher."""

    device: torch.device
    models: ModelStore
    outputs: OutputWriter = field(default_factory=OutputWriter)
    #: stacks simultaneous requests for one image-to-image model into one forward pass (:mod:`.batching`)
    batcher: Batcher = field(default_factory=Batcher)
    #: the models of every tab (filled in by ``build_app``; the About tab lists them)
    specs: list[ModelSpec] = field(default_factory=list)


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as a whole number in ``[low, high]``, or a ValueError that says what was wrong and what to do."""
    if value is None or value == "":
        raise ValueError(f"{name} is empty: type a whole number from {low} to {high}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r}: not a number; type a whole number from {low} to {high}") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name} {value}: not a whole number; type a whole number from {low} to {high}")
    if not low <= number <= high:
        raise ValueError(f"{name} {int(number)}: out of range; use a whole number from {low} to {high}")
    return int(number)


def check_float(value: Any, name: str, low: float, high: float) -> float:
    """``value`` as a number in ``[low, high]``, or a ValueError that says what to do."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r}: not a number; use a number from {low} to {high}") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{name} {value}: out of range; use a number from {low} to {high}")
    return number


# --------------------------------------------------------------------------------------------- uploaded images

#: one picture is decoded at a time (a 40-megapixel PNG takes ~120 MB as 8-bit RGB, and warnings are
#: recorded per decode): memory stays bounded however many students upload at once
_DECODE_LOCK = threading.Lock()


def open_image(path: str | Path | None, what: str = "image") -> tuple[Image.Image, list[str]]:
    """Open an uploaded picture as 8-bit RGB, or raise a ValueError that names the file and what to do.

    Uses :func:`deepfake_lab.data.images.load_image`: refused when there is no file, when it is not an image
    Pillow reads (a text file renamed ``.png``), corrupt or truncated, under ``MIN_SIDE`` (32) pixels a side,
    or over ``MAX_PIXELS`` (40 megapixels, read from the header before any pixel is decoded). Grayscale,
    transparency (RGBA), palette, CMYK and 16-bit pictures are converted; the returned notes say how.
    Messages name the file, not the server's temporary folder it was uploaded to.
    """
    from ..data.images import ImageConversionWarning, load_image

    if path is None or str(path) == "":
        raise ValueError(f"no {what}: upload a picture, take one with the webcam, or click an example")
    path = Path(path)
    with _DECODE_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            image = load_image(path)
        except ValueError as err:  # DataError: missing, not an image, corrupt, too small, too large
            raise ValueError(str(err).replace(str(path), path.name)) from None
    notes = [str(w.message).replace(str(path), path.name) for w in caught
             if issubclass(w.category, ImageConversionWarning)]
    return image, notes


def fit_side(image: Image.Image, max_side: int, name: str = "image") -> tuple[Image.Image, str | None]:
    """Downscale ``image`` (Lanczos) so its longer side is at most ``max_side``; the note says so, or is None."""
    if max(image.size) <= max_side:
        return image, None
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    note = (f"{name}: {image.width}x{image.height} pixels, scaled down to {size[0]}x{size[1]} "
            f"(the models here work on at most {max_side} pixels on the long side)")
    return image.resize(size, Image.LANCZOS), note


def image_input(**kwargs):
    """The component every tab takes pictures with: upload, webcam or clipboard, handed over as a file path.

    Keyword arguments go to ``gr.Image`` (``label``, ``elem_id``, ``height``...). Wire its events with
    ``preprocess=False`` and read the value with :func:`upload_path`: ``gr.Image`` would otherwise open the
    upload with Pillow before the handler runs, and a file that is not an image would fail inside Gradio,
    with no message that says why. :func:`open_image` does the opening and the checks instead.
    """
    import gradio as gr

    options = dict(type="filepath", image_mode=None, format="png", sources=["upload", "webcam", "clipboard"])
    return gr.Image(**{**options, **kwargs})


def upload_path(value, what: str = "file") -> str | None:
    """The server-side path of an uploaded file as an event with ``preprocess=False`` receives it.

    ``value`` is None, a path, or Gradio's file payload: ``{"path": ...}`` (``gr.Image``) or
    ``{"video": {"path": ...}}`` (``gr.Video``).
    """
    if isinstance(value, dict):
        value = value.get("video", value)
        if isinstance(value, dict):
            if not value.get("path") and str(value.get("url") or "").startswith("data:"):
                raise ValueError(f"{what}: arrived inline, not as a file; save it and upload the file instead")
            value = value.get("path")
    return None if value in (None, "") else str(value)


def show_notes(notes) -> None:
    """Show each note (a conversion, a downscale, a cap) as a yellow warning on the page."""
    import gradio as gr

    for note in notes:
        gr.Warning(note)


def user_errors(fn: Callable) -> Callable:
    """Wrap an event handler so every failure reaches the page as one clear line (``gr.Error``).

    Wrong inputs and missing weights show their own message. Anything unexpected is logged with its
    traceback on the server and shown as a short note; the app keeps serving either way.
    """
    import gradio as gr

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, ModelUnavailable, CheckpointError, FileNotFoundError) as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception as err:  # a bug, not a user mistake: log it here, keep the page clean
            log.exception("%s failed", fn.__name__)
            raise gr.Error(f"Unexpected error ({type(err).__name__}); the app is still running, try again. "
                           "Details are in the server log.", print_exception=False) from None

    return handler
