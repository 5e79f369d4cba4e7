"""Tab "Compare checkpoints": one picture through two translation checkpoints, side by side.

Typical use: two steps of one training run (``runs/<name>/step-0000200.safetensors`` against
``step-0000800``), to see what more training changed, or a student's model against the demo weights.
A checkpoint is one of the demo models (:func:`~deepfake_lab.app.models.demo_view_names`), a model of the
cache's models folder by name (``cyclegan/horse2zebra.pth``, as ``deepfake-lab fetch ... --pretrained``
puts it; *Refresh* lists files added since), or a path on the computer that runs the app: a ``.safetensors``
of a CycleGAN/pix2pix model (training checkpoints hold both CycleGAN generators: the *generator* switch
picks G or F), a run folder (its latest checkpoint), or an official ``.pth``. "List checkpoints" fills
both menus with the steps of a run folder.

Inputs are checked and limited as in the Image-to-image tab (:mod:`~deepfake_lab.app.tab_translate`);
with a held-out example the table scores both outputs against its ground truth (PSNR, SSIM).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoints import CheckpointError, read_metadata
from .common import AppContext, fit_side, image_input, open_image, show_notes, upload_path, user_errors
from .examples import example_block, find_example, ground_truth, quality_scores
from .models import (MODEL_SIDE, TASKS, TRANSLATE, Entry, demo_entries, demo_view_names, find_user_model, run_entry,
                     user_models, user_translator)

TITLE = "Compare checkpoints"
MODELS = ()  # the demo models are the Image-to-image tab's (listed once in About)

#: the demo models by name (what the menus offer first)
DEMO_CHOICES = tuple(demo_view_names())
#: which CycleGAN generator a checkpoint path means: G maps X -> Y, F maps Y -> X
DIRECTIONS = {"G (X → Y)": "AtoB", "F (Y → X)": "BtoA"}
#: at most this many checkpoints of a run folder are listed (the newest)
MAX_LISTED = 50
TABLE_HEADERS = ["", "checkpoint", "latency (ms)", "PSNR (dB)", "SSIM"]


def _step(path: Path) -> int | None:
    match = re.fullmatch(r"step-(\d+)\.safetensors", path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(folder: str) -> list[tuple[str, str]]:
    """The translation checkpoints of a run folder (or its ``checkpoints/``), oldest step first: ``(label, path)``.

    A file path lists that file alone. Files whose metadata is not a CycleGAN or pix2pix model are left out.
    """
    text = str(folder or "").strip()
    if not text:
        raise ValueError("run folder is empty: type the path of a run folder (e.g. runs/cyclegan-demo) or a file")
    root = Path(text).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"run folder {text}: no such folder or file on the computer that runs the app")
    files = [root] if root.is_file() else sorted(
        {*root.glob("step-*.safetensors"), *root.glob("checkpoints/step-*.safetensors"), *root.glob("*.safetensors")})
    found = []
    for path in files:
        step = _step(path)
        if path.suffix in (".pth", ".pt"):
            found.append((-1, f"{path.name} (official)", str(path)))
            continue
        try:
            kind = read_metadata(path).get("kind")
        except CheckpointError:
            continue
        if kind in ("cyclegan", "pix2pix"):
            label = f"{kind} step {step:,}" if step is not None else f"{kind} {path.name}"
            found.append((-1 if step is None else step, label, str(path)))
    if not found:
        raise ValueError(f"run folder {text}: no CycleGAN or pix2pix checkpoint in it (step-*.safetensors, "
                         "written by `deepfake-lab train cyclegan|pix2pix`)")
    return [(label, path) for _, label, path in sorted(found)][-MAX_LISTED:]


def menu_choices() -> list[str]:
    """What both menus offer before a run folder is listed: the demo models, then the cache's models by name."""
    return [*DEMO_CHOICES, *(m.name for m in user_models(TRANSLATE))]


def open_checkpoint(ctx: AppContext, choice: str, direction: str) -> Entry:
    """A demo model or a model of the cache by name, or the checkpoint at path ``choice``, ready to run."""
    choice = str(choice or "").strip()
    if not choice:
        raise ValueError("checkpoint is empty: pick a demo model or a listed checkpoint, or type a path")
    if choice in DEMO_CHOICES:
        for entry in demo_entries(ctx):
            if entry.name == choice:
                return entry
        raise ValueError(f"{choice}: its weights could not be loaded (see the note at the top of the page)")
    if direction not in DIRECTIONS:
        raise ValueError(f"generator {direction!r}: use one of {', '.join(DIRECTIONS)}")
    cached = find_user_model(choice, TRANSLATE)
    translator, key = user_translator(ctx, cached.path if cached else choice, DIRECTIONS[direction])
    step = _step(Path(choice))
    name = cached.name if cached else translator.details.get("model", Path(choice).name)
    label = f"{name} ({translator.details.get('network', translator.kind)})" if step is None else \
        f"step {step:,} ({translator.details.get('network', translator.kind)})"
    return Entry(label, None, translator, ctx.models.lock(key), ctx.batcher)


@dataclass
class Comparison:
    """What :func:`compare` returns: both labelled outputs, the table and the notes."""

    a: Path
    b: Path
    table: list[list[str]]
    summary: str
    notes: list[str] = field(default_factory=list)


def compare(ctx: AppContext, image_path, choice_a: str, choice_b: str, direction: str = "G (X → Y)") -> Comparison:
    """The picture at ``image_path`` through checkpoints A and B; with an example's ground truth, PSNR and SSIM."""
    image, notes = open_image(image_path, "input image")
    name = Path(image_path).name
    image, scaled = fit_side(image, MODEL_SIDE, name)
    notes += [scaled] if scaled else []
    entries = {"A": open_checkpoint(ctx, choice_a, direction), "B": open_checkpoint(ctx, choice_b, direction)}
    example = find_example(image_path)
    truth = ground_truth(example, image)
    outputs, rows = {}, []
    for side, entry in entries.items():
        output, ms = run_entry(entry, image)
        outputs[side] = ctx.outputs.png(output, {"what": f"checkpoint {side}", "input": name, "tab": TITLE,
                                                 **entry.translator.details, "name": entry.name,
                                                 "latency_ms": round(ms, 1)})
        p, s = quality_scores(output, truth) if truth is not None else ("—", "—")
        rows.append([side, entry.name, f"{ms:.1f}", p, s])
    if truth is not None:
        p, s = quality_scores(image, truth)
        rows.append(["", "input unchanged (baseline)", "—", p, s])
    summary = f"**Input** `{name}`, {image.width}x{image.height} pixels"
    if truth is not None:
        summary += (f" · scored against the ground truth of {example.caption} "
                    f"({TASKS[example.task]})")
    if notes:
        summary += "\n\n" + "\n".join(f"* {n}" for n in notes)
    return Comparison(outputs["A"], outputs["B"], rows, summary, notes)


def build(ctx: AppContext, demo) -> None:
    """Lay out the tab inside the current ``gr.Tab`` and wire its events."""
    import gradio as gr

    gr.Markdown(
        "### Two checkpoints, one picture\nPick two demo models or models of the cache's models folder (*Refresh "
        "models* re-reads it), or type a run folder and list its checkpoints to compare two training steps. Same "
        "input limits as *Image-to-image*.")
    choices = menu_choices()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            image = image_input(label="Input image", elem_id="compare-input", height=260)
            with gr.Row():
                folder = gr.Textbox(label="Run folder or checkpoint file", placeholder="runs/cyclegan-demo",
                                    elem_id="compare-folder", scale=3)
                listing = gr.Button("List checkpoints", elem_id="compare-list", scale=1)
                refresh = gr.Button("Refresh models", elem_id="compare-refresh", scale=1)
            choice_a = gr.Dropdown(choices, value=DEMO_CHOICES[0], label="Checkpoint A", allow_custom_value=True,
                                   elem_id="compare-a")
            choice_b = gr.Dropdown(choices, value=DEMO_CHOICES[1], label="Checkpoint B", allow_custom_value=True,
                                   elem_id="compare-b")
            direction = gr.Radio(list(DIRECTIONS), value="G (X → Y)", label="Generator of CycleGAN checkpoints",
                                 elem_id="compare-direction")
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            example_block([image], "compare-examples")
        with gr.Column(scale=2):
            with gr.Row():
                out_a = gr.Image(label="A", type="filepath", format="png", interactive=False, elem_id="compare-out-a",
                                 height=360)
                out_b = gr.Image(label="B", type="filepath", format="png", interactive=False, elem_id="compare-out-b",
                                 height=360)
            slider = gr.ImageSlider(label="A / B (drag the divider)", type="filepath", format="png",
                                    interactive=False, elem_id="compare-slider", max_height=420)
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str"] * len(TABLE_HEADERS), interactive=False,
                                 label="Latency and, against the ground truth, quality", elem_id="compare-table")
            summary = gr.Markdown(elem_id="compare-summary")

    def on_compare(image, a, b, which):
        result = compare(ctx, upload_path(image, "input image"), a, b, which)
        show_notes(result.notes)
        return result.a, result.b, (result.a, result.b), result.table, result.summary

    def on_list(path):
        found = list_checkpoints(path)
        menu = [*((c, c) for c in menu_choices()), *found]
        first, last = found[0][1], found[-1][1]
        text = f"{len(found)} checkpoint(s) in `{path.strip()}`: A is the first, B the last."
        return gr.Dropdown(choices=menu, value=first), gr.Dropdown(choices=menu, value=last), text

    def on_refresh(a, b):
        """Both menus re-read from the cache's models folder; a choice that is still there stays chosen."""
        choices = menu_choices()

        def keep(value, default):  # a typed or listed path stays too (the menus take custom values)
            return value if value in choices or Path(str(value or "")).expanduser().is_file() else default

        return (gr.Dropdown(choices=choices, value=keep(a, DEMO_CHOICES[0])),
                gr.Dropdown(choices=choices, value=keep(b, DEMO_CHOICES[1])))

    run.click(user_errors(on_compare), inputs=[image, choice_a, choice_b, direction],
              outputs=[out_a, out_b, slider, table, summary], api_name="compare", preprocess=False)  # see image_input
    listing.click(user_errors(on_list), inputs=folder, outputs=[choice_a, choice_b, summary],
                  api_name="list_checkpoints")
    folder.submit(user_errors(on_list), inputs=folder, outputs=[choice_a, choice_b, summary],
                  api_visibility="private")
    refresh.click(user_errors(on_refresh), inputs=[choice_a, choice_b], outputs=[choice_a, choice_b],
                  api_name="refresh_compare_models", api_visibility="undocumented")
