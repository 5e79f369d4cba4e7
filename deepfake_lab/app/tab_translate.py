"""Tab "Image-to-image" (lessons 2 and 3): one picture through every translation model, side by side.

* **CycleGAN** (Zhu et al. 2017) learned two mappings from *unpaired* pictures: :math:`G: X \\to Y`
  (face -> cartoon) and :math:`F: Y \\to X` (cartoon -> face), from ``cyclegan-face2cartoon.safetensors``.
* **pix2pix** (Isola et al. 2017) learned one mapping from *pairs*: Canny edges of a face -> the face,
  from ``pix2pix-carphone-edges.safetensors``.
* **Your model**: an official CycleGAN/pix2pix ``.pth`` from the cache's models folder, chosen by name
  (``deepfake-lab fetch cyclegan horse2zebra --pretrained`` puts one there; *Refresh* lists files added
  since), or any other file by its path: an official ``.pth`` (``latest_net_G_A.pth``...), a ``.safetensors``
  of this package's translation models or a run folder. Read by :func:`deepfake_lab.translate.load_translator`
  (``weights_only``: no code in the file runs) when it is chosen.

Which demo models run, and their names, come from :mod:`deepfake_lab.app.models`; the held-out examples
and the PSNR/SSIM against their ground truth from :mod:`deepfake_lab.app.examples`.

Input limits (:func:`deepfake_lab.app.common.open_image`): at least 32x32 pixels; pictures over 40 megapixels
are refused from their header, before decoding; larger than :data:`~deepfake_lab.app.models.MODEL_SIDE` (512)
pixels on the long side, they are scaled down first. Grayscale, RGBA, CMYK and 16-bit pictures are converted,
with a warning.

The computations are plain functions (:func:`translate_image`); :func:`build` lays them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .common import (AppContext, ModelUnavailable, fit_side, image_input, open_image, show_notes, upload_path,
                     user_errors)
from .examples import example_block, find_example, ground_truth, quality_scores
from .models import (MODEL_SIDE, TASKS, TRANSLATE, TRANSLATION_LESSONS, Entry, demo_entries, demo_view_names,
                     find_user_model, models_dir, run_entry, specs_of, user_models, user_translator)

TITLE = "Image-to-image"
#: the demo models of this tab (the About tab lists them): every lesson that translates pictures
MODELS = specs_of(*TRANSLATION_LESSONS)

#: the choices of the before/after slider: "auto" shows the model made for the example's task
AUTO = "auto"
YOURS = "your checkpoint"
SHOW_CHOICES = (AUTO, *demo_view_names(), YOURS)
#: the choice of the models menu that adds no model of the cache
NONE = "none"
TABLE_HEADERS = ["model", "trained for", "latency (ms)", "PSNR (dB)", "SSIM"]


def model_choices() -> list[str]:
    """The models menu: :data:`NONE`, then the image-to-image files of the cache's models folder by name."""
    return [NONE, *(m.name for m in user_models(TRANSLATE))]


def cached_entry(ctx: AppContext, name: str) -> Entry:
    """The model called ``name`` in the cache's models folder, loaded (once) and ready to run."""
    found = find_user_model(name, TRANSLATE)
    if found is None:
        raise ValueError(f"model {name!r}: not in {models_dir()} (any more); click Refresh for the current list, "
                         "or fetch it with `deepfake-lab fetch cyclegan|pix2pix NAME --pretrained`")
    translator, key = user_translator(ctx, found.path)
    return Entry(f"{YOURS}: {found.name}", None, translator, ctx.models.lock(key), ctx.batcher)


def all_entries(ctx: AppContext, checkpoint: str | None, model: str | None = NONE) -> list[Entry]:
    """The demo models, plus the model chosen from the cache and the checkpoint at path ``checkpoint``, if given."""
    entries = demo_entries(ctx)
    if model and model != NONE:
        entries.append(cached_entry(ctx, model))
    if checkpoint and str(checkpoint).strip():
        translator, key = user_translator(ctx, checkpoint)
        entries.append(Entry(f"{YOURS}: {translator.details.get('model', '?')}", None, translator,
                             ctx.models.lock(key), ctx.batcher))
    if not entries:
        raise ModelUnavailable("no translation model could be loaded (see the note at the top of the page); "
                               "give the path of a checkpoint instead")
    return entries


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


def pick_shown(entries: list[Entry], show: str, task: str | None) -> Entry:
    """The model the before/after slider shows: ``auto`` is the one made for the example's task."""
    if show not in SHOW_CHOICES:
        raise ValueError(f"before/after {show!r}: use one of {', '.join(SHOW_CHOICES)}")
    if show == AUTO:
        return next((e for e in entries if task and e.task == task), entries[0])
    if show == YOURS:
        found = [e for e in entries if e.task is None]
        if not found:
            raise ValueError(f"before/after {YOURS!r}: choose one of your models or type the path of a checkpoint "
                             f"first (or choose {AUTO!r})")
        return found[0]
    for entry in entries:
        if entry.name == show:
            return entry
    raise ValueError(f"before/after {show!r}: that model is not available here (see the note at the top of the page)")


def translate_image(ctx: AppContext, image_path, checkpoint: str | None = "", show: str = AUTO,
                    model: str | None = NONE) -> Translation:
    """Run one picture through every available translation model; outputs as labelled PNGs plus a table.

    ``image_path``: the uploaded file (see the module docstring for the limits); ``checkpoint``: an optional
    path to an official ``.pth`` or a ``.safetensors``/run folder; ``show``: the model of the before/after
    slider (:data:`SHOW_CHOICES`); ``model``: a model of the cache's models folder by name
    (:func:`model_choices`), or :data:`NONE`.
    """
    image, notes = open_image(image_path, "input image")
    name = Path(image_path).name
    image, scaled = fit_side(image, MODEL_SIDE, name)
    notes += [scaled] if scaled else []
    example = find_example(image_path)
    entries = all_entries(ctx, checkpoint, model)
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
        if entry.task is None and YOURS not in pairs:  # the first of the user's models, as pick_shown takes
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


def build(ctx: AppContext, demo) -> None:
    """Lay out the tab inside the current ``gr.Tab`` and wire its events."""
    import gradio as gr

    gr.Markdown(
        "### One picture, every translation model\n"
        "CycleGAN learned *face ↔ cartoon* from unpaired frames; pix2pix learned *edges → face* from pairs. "
        "Upload a picture (at least 32x32 pixels, at most 40 megapixels; larger than "
        f"{MODEL_SIDE} pixels on the long side it is scaled down) or click an example: the examples are held out "
        "from training and come with the true answer, so the table can score each model against doing nothing.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            image = image_input(label="Input image", elem_id="translate-input", height=300)
            with gr.Row(equal_height=True):
                model = gr.Dropdown(model_choices(), value=NONE, label="Your model (optional)", scale=4,
                                    elem_id="translate-model",
                                    info=f"Official CycleGAN/pix2pix models in {models_dir()}: fetch one with "
                                         "`deepfake-lab fetch cyclegan horse2zebra --pretrained`, or copy a .pth "
                                         "there.")
                refresh = gr.Button("Refresh", elem_id="translate-refresh", size="sm", scale=1, min_width=80)
            checkpoint = gr.Textbox(label="Other file (optional)", elem_id="translate-checkpoint",
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

    def on_run(image, checkpoint_path, shown, chosen=None):  # None: scripts that leave it out add no model
        result = translate_image(ctx, upload_path(image, "input image"), checkpoint_path, shown, chosen)
        show_notes(result.notes)
        return result.gallery, result.before_after, result.truth, result.table, result.summary, result.pairs

    def on_show(shown, known):
        key = shown if shown in known else AUTO
        if key not in known:
            return None  # nothing translated yet
        return tuple(known[key])

    def on_refresh(chosen):
        choices = model_choices()
        return gr.Dropdown(choices=choices, value=chosen if chosen in choices else NONE)

    # preprocess=False: the upload reaches the handler unopened (see common.image_input); the handler checks it
    run.click(user_errors(on_run), inputs=[image, checkpoint, show, model], outputs=[gallery, slider, truth, table,
              summary, pairs], api_name="image_to_image", preprocess=False)
    refresh.click(user_errors(on_refresh), inputs=model, outputs=model, api_name="refresh_translate_models",
                  api_visibility="undocumented")
    show.change(user_errors(on_show), inputs=[show, pairs], outputs=slider, api_visibility="private",
                show_progress="hidden")
