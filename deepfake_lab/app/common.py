"""What every tab of the demo app shares: the models (loaded once), the labelled outputs, input checks.

* :class:`ModelSpec` describes one demo model: what it is, its data and licence, where its weights are.
* :class:`ModelStore` loads each model the first time it is asked for and keeps it (one copy for all
  students, guarded by a lock); ``--weights DIR`` is looked in first, the weights inside the package after.
* :class:`OutputWriter` writes every image the app returns as a PNG with the visible SYNTHETIC strip and
  the provenance text chunks (:func:`deepfake_lab.provenance.save_labelled_png`); the browser and
  ``gradio_client`` receive exactly that file.
* :func:`user_errors` turns a wrong input or a missing file into a one-line message in the page
  (``gr.Error``), never a traceback.

Nothing here imports gradio at module level except :func:`user_errors`, which is only used by tab modules.
"""
from __future__ import annotations

import functools
import logging
import math
import shutil
import tempfile
import threading
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from ..checkpoints import CheckpointError
from ..provenance import save_labelled_png

__all__ = ["ModelSpec", "ModelStore", "ModelUnavailable", "OutputWriter", "AppContext", "check_int", "check_float",
           "user_errors", "MAX_SEED"]

log = logging.getLogger("deepfake_lab.app")

#: seeds are whole numbers in [0, MAX_SEED] (the range of a 32-bit signed integer, what students expect)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class ModelSpec:
    """One demo model, as the About tab describes it and the :class:`ModelStore` loads it.

    ``embedded`` returns the path of the weights shipped in the package; ``load(path, device)`` returns the
    ready-to-run model. With ``--weights DIR`` the file ``DIR/<embedded file name>`` is used when it exists.
    """

    key: str  # "gan-digits": also the file stem of the weights and of the model card
    title: str  # "DCGAN: handwritten digits"
    what: str  # one paragraph: the network and what it makes
    #: the training data, where it comes from, its licence; or a function of the weights path that says so
    data: str | Callable[[Path], str]
    embedded: Callable[[], Path]
    load: Callable[[Path, torch.device], Any]


class ModelUnavailable(Exception):
    """Weights that cannot be found or read; the message names the file and what to do."""


class ModelStore:
    """Loads each demo model once and hands the same instance to every request.

    Loading happens on first use (so the app starts even when some weights are missing, and says which
    ones on the page), under a lock so that two simultaneous first requests do not load twice.
    """

    def __init__(self, device: torch.device, weights_dir: str | Path | None = None):
        self.device = device
        self.weights_dir = Path(weights_dir) if weights_dir else None
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

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
                    raise ModelUnavailable(f"{spec.title}: cannot load {path}: {err}") from err
                log.info("loaded %s from %s on %s", spec.key, path, self.device)
            return self._models[spec.key]

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

    def png(self, image: Image.Image, details: dict[str, Any]) -> Path:
        """Label ``image`` and write it with provenance chunks; ``details`` (model, seed...) go into the chunks."""
        path = self.folder / f"{details.get('what', 'image').replace(' ', '-')}-{uuid.uuid4().hex[:12]}.png"
        save_labelled_png(image, path, {"app": "deepfake-lab demo", **details})
        with self._lock:
            self._recent.append(path)
            while len(self._recent) > self._keep:
                self._recent.popleft().unlink(missing_ok=True)
        return path


@dataclass
class AppContext:
    """Handed to every tab builder: the device, the model store and the output writer."""

    device: torch.device
    models: ModelStore
    outputs: OutputWriter = field(default_factory=OutputWriter)
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
