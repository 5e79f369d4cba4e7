"""Tab "GAN basics" (lesson 1): what a generator does with a random vector.

Four panels, each a question a student asks in the first lesson:

* **Samples**: a grid of digits from one seed. Same seed, same digits: the generator is a function
  :math:`G(z)` of the noise :math:`z \\sim \\mathcal{N}(0, I)`. The demo generator reads a class code from
  z (AC-GAN, :mod:`deepfake_lab.gan_codes`), so a chosen digit is drawn from noise whose code names it.
* **Walk through latent space**: digits along the path between the noise of two seeds (slerp or linear).
  The style morphs smoothly (:math:`G` is continuous in the rest of z); where the path crosses from one
  code to another the digit jumps, at one step, to another class.
* **Mode coverage**: the 2-D ``ring8`` GAN, its samples against the 8 true modes; a collapsed GAN puts
  all its points on a few of them (Goodfellow et al. 2014, section 6; Metz et al. 2017, Fig. 1).
* **Training progress**: sample grids saved during training, side by side (only when the weights folder
  has them).

The computations are plain functions of the :class:`~deepfake_lab.app.common.AppContext` (testable without a
browser); :func:`build` lays them out and wires the events, each with an ``api_name``.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import torch
from PIL import Image

from .. import gan
from ..gan_codes import noise_for_code
from ..data.toy import modes
from ..gan_metrics import mixture_metrics
from ..provenance import read_provenance
from ..viz import to_grid_image, to_pil
from .common import MAX_SEED, AppContext, ModelSpec, ModelUnavailable, check_float, check_int, user_errors
from .models import spec, specs_of

TITLE = "GAN basics"

MAX_DIGITS = 64  # one 8x8 grid
MAX_STEPS = 16  # frames in the interpolation strip
MAX_POINTS = 5000  # ring8 samples in one scatter plot
INTERPOLATION_MODES = ("slerp", "linear")
DIGIT_CHOICES = ("any",) + tuple(str(d) for d in range(10))  # "any": plain z; "k": z whose code is k
STRIP_SCALE = 4  # the strip is one row: enlarge it more than the grid so the digits outweigh the label strip
FRAME_SIDE = 384  # the digit under the slider, enlarged 12x (its label strip stays readable)
SLIDER_FRAMES = 101  # the slider picks one of 101 evenly spaced points on the path (t = 0, 0.01, ..., 1)


#: this tab's demo models (lesson 1's demo weights in the lesson table): the ring8 MLP GAN and the digit DCGAN
MODELS = specs_of("gan")
DIGITS, RING8 = spec("gan-digits"), spec("gan-ring8")


# --------------------------------------------------------------------------------------------- computations

def latents(seed: int, n: int, latent_dim: int) -> torch.Tensor:
    """The noise :math:`z \\sim \\mathcal{N}(0, I)` of ``seed``: (n, latent_dim), the same on every machine."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, latent_dim, generator=g)


def digit_noise(config, seed: int, count: int, digit: str = "any") -> torch.Tensor:
    """The noise of ``seed`` (count, latent_dim); for ``digit`` "0"-"9", noise whose code asks for that digit
    (:func:`~deepfake_lab.gan_codes.noise_for_code`), which only a generator trained with labels understands."""
    if digit not in DIGIT_CHOICES:
        raise ValueError(f"digit {digit!r}: choose any, or one of 0-9")
    if digit == "any":
        return latents(seed, count, config.latent_dim)
    if not config.code_labels:
        raise ValueError(f"digit {digit}: this generator was trained without labels (no --code 10 --code-labels), "
                         "so no noise asks it for one digit; choose any")
    return noise_for_code(int(digit), count, config.latent_dim, config.code,
                          generator=torch.Generator().manual_seed(seed))


def digit_grid(ctx: AppContext, seed, count, digit="any") -> Path:
    """A grid of ``count`` digits from ``seed`` (only ``digit``, unless "any"), as a labelled PNG."""
    seed = check_int(seed, "seed", 0, MAX_SEED)
    count = check_int(count, "number of digits", 1, MAX_DIGITS)
    digit = "any" if digit is None else str(digit).strip()
    generator, config = ctx.models.get(DIGITS)
    z = digit_noise(config, seed, count, digit)  # (count, latent_dim)
    with torch.inference_mode():
        images = gan.sample(generator, z)  # (count, 1, 32, 32) in [-1, 1]
    grid = to_grid_image(images, nrow=min(8, count), scale=3)
    return ctx.outputs.png(grid, {"what": "digit grid", "model": DIGITS.key, "seed": seed, "count": count,
                                  "digit": digit})


def _path(config, seed_a: int, seed_b: int, steps: int, mode: str) -> torch.Tensor:
    z0 = latents(seed_a, 1, config.latent_dim)[0]  # (latent_dim,)
    z1 = latents(seed_b, 1, config.latent_dim)[0]
    return gan.interpolate_latents(z0, z1, steps, mode=mode)  # (steps, latent_dim)


def _check_path_inputs(seed_a, seed_b, mode):
    seed_a = check_int(seed_a, "seed A", 0, MAX_SEED)
    seed_b = check_int(seed_b, "seed B", 0, MAX_SEED)
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"interpolation {mode!r}: use one of {', '.join(INTERPOLATION_MODES)}")
    return seed_a, seed_b, mode


def interpolation_strip(ctx: AppContext, seed_a, seed_b, steps, mode) -> Path:
    """``steps`` digits on the path from the noise of ``seed_a`` to that of ``seed_b``, in one row."""
    seed_a, seed_b, mode = _check_path_inputs(seed_a, seed_b, mode)
    steps = check_int(steps, "steps", 2, MAX_STEPS)
    generator, config = ctx.models.get(DIGITS)
    with torch.inference_mode():
        images = gan.sample(generator, _path(config, seed_a, seed_b, steps, mode))  # (steps, 1, 32, 32)
    strip = to_grid_image(images, nrow=steps, scale=STRIP_SCALE)
    return ctx.outputs.png(strip, {"what": "interpolation", "model": DIGITS.key, "seeds": [seed_a, seed_b],
                                   "steps": steps, "mode": mode})


def interpolation_frame(ctx: AppContext, seed_a, seed_b, t, mode) -> Path:
    """The one digit at position ``t`` in [0, 1] on the path between two seeds, enlarged."""
    seed_a, seed_b, mode = _check_path_inputs(seed_a, seed_b, mode)
    t = check_float(t, "position t", 0.0, 1.0)
    generator, config = ctx.models.get(DIGITS)
    z = _path(config, seed_a, seed_b, SLIDER_FRAMES, mode)[round(t * (SLIDER_FRAMES - 1))]  # (latent_dim,)
    with torch.inference_mode():
        image = gan.sample(generator, z.unsqueeze(0))[0]  # (1, 32, 32)
    big = to_pil(image).convert("RGB").resize((FRAME_SIDE, FRAME_SIDE), Image.NEAREST)
    return ctx.outputs.png(big, {"what": "interpolation frame", "model": DIGITS.key, "seeds": [seed_a, seed_b],
                                 "t": t, "mode": mode})


def ring_scatter(ctx: AppContext, seed, points) -> tuple[Path, str]:
    """Samples of the ring8 GAN over the 8 true modes (a labelled PNG) and a one-line coverage summary."""
    seed = check_int(seed, "seed", 0, MAX_SEED)
    points = check_int(points, "number of points", 10, MAX_POINTS)
    generator, config = ctx.models.get(RING8)
    with torch.inference_mode():
        xy = gan.sample(generator, latents(seed, points, config.latent_dim)).float().cpu()  # (points, 2)
    centres, std = modes(config.data)  # (K, 2), per-axis std of the true mixture
    summary = _coverage_summary(mixture_metrics(xy, (centres, std)))
    image = _scatter_image(xy, centres, f"{config.data} GAN: {points} samples (seed {seed}) vs the "
                                        f"{len(centres)} true modes")
    path = ctx.outputs.png(image, {"what": "ring8 scatter", "model": RING8.key, "seed": seed, "points": points})
    return path, summary


def _coverage_summary(m) -> str:
    """One line from :func:`deepfake_lab.gan_metrics.mixture_metrics` (its rule: within 3 std of a mode)."""
    return (f"**Modes covered: {m.modes_covered} of {m.n_modes}** · samples within 3 std of a mode: "
            f"{m.hq_share:.0%} · per mode: {', '.join(str(c) for c in m.counts)}")


def _scatter_image(xy: torch.Tensor, modes: torch.Tensor, title: str) -> Image.Image:
    """Draw the samples (blue dots) over the true modes (red rings) with matplotlib's Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # the true modes as open red rings underneath, so the generated clusters stay visible inside them
    ax.scatter(modes[:, 0], modes[:, 1], s=500, marker="o", facecolors="none", edgecolors="tab:red",
               linewidths=2.5, zorder=1, label="true modes")
    ax.scatter(xy[:, 0], xy[:, 1], s=8, alpha=0.4, color="tab:blue", zorder=2, label="generated")
    r = float(modes.norm(dim=1).max()) * 1.6
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=12)
    ax.legend(loc="upper right", fontsize=13)
    ax.set_title(title, fontsize=13)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return Image.open(buffer).convert("RGB")


def progress_snapshots(ctx: AppContext, spec: ModelSpec = DIGITS, most: int = 5) -> list[tuple[Path, str]]:
    """Sample grids saved during training, as ``[(png, "step N")]``, at most ``most`` evenly spaced ones.

    Looked for beside the weights in use: ``<name>-samples/step-*.png`` (the ``samples/`` folder of the
    training run, copied next to the weights), or ``samples/step-*.png`` when ``--weights`` is a run folder.
    Grids without the provenance chunks of :func:`~deepfake_lab.provenance.save_labelled_png` are labelled first.
    """
    weights = ctx.models.path(spec)
    found: list[tuple[int, Path]] = []
    for folder in (weights.parent / f"{spec.key}-samples", weights.parent / "samples"):
        for png in folder.glob("step-*.png"):
            match = re.fullmatch(r"step-(\d+)\.png", png.name)
            if match:
                found.append((int(match.group(1)), png))
        if found:
            break
    found.sort()
    if len(found) > most:
        picks = sorted({round(i * (len(found) - 1) / (most - 1)) for i in range(most)})
        found = [found[i] for i in picks]
    shown = []
    for step, png in found:
        if read_provenance(png).get("synthetic") != "true":  # not written by the training loop: label it now
            with Image.open(png) as image:
                png = ctx.outputs.png(image.convert("RGB"), {"what": "training sample", "model": spec.key,
                                                             "step": step})
        shown.append((png, f"step {step:,}"))
    return shown


def _first(compute, *args):
    """The panel's first picture, computed once when the app starts (None when its model is unavailable)."""
    try:
        return compute(*args)
    except ModelUnavailable:
        return None


# --------------------------------------------------------------------------------------------- layout

def build(ctx: AppContext, demo) -> None:
    """Lay out the tab inside the current ``gr.Tab`` and wire its events.

    Every panel opens with a picture computed here, once, from the default inputs: the page shows results the
    moment it opens, without a computation per visitor (and this run loads torchvision and matplotlib, so
    the first click is fast too).
    """
    import gradio as gr

    seed0, count0, seed_a0, seed_b0, t0, steps0, mode0, points0 = 0, MAX_DIGITS, 1, 2, 0.5, 8, "slerp", 1000
    first_grid = _first(digit_grid, ctx, seed0, count0)
    first_frame = _first(interpolation_frame, ctx, seed_a0, seed_b0, t0, mode0)
    first_strip = _first(interpolation_strip, ctx, seed_a0, seed_b0, steps0, mode0)
    first_plot, first_summary = _first(ring_scatter, ctx, seed0, points0) or (None, "")

    def picture(value, label, elem_id, **layout):
        """An output image: PNG (lossless, keeps the provenance chunks), shown from the labelled file."""
        return gr.Image(value, label=label, elem_id=elem_id, format="png", type="filepath", interactive=False,
                        **layout)

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            gr.Markdown("### Samples\nOne seed fixes the noise *z*; the generator turns each *z* into a digit. "
                        "Its first 10 numbers choose which digit (a code, AC-GAN): pick one to draw only that.")
            with gr.Row():
                seed = gr.Number(value=seed0, label="Seed", precision=0, elem_id="digits-seed", min_width=100)
                digit = gr.Dropdown(list(DIGIT_CHOICES), value="any", label="Digit", elem_id="digits-digit",
                                    min_width=100)
                count = gr.Slider(1, MAX_DIGITS, value=count0, step=1, label="Digits", elem_id="digits-count")
            generate = gr.Button("Generate", variant="primary", elem_id="digits-generate")
            grid = picture(first_grid, "Generated digits", "digits-grid", height=520,
                           buttons=["download", "fullscreen"])
        with gr.Column(scale=1):
            gr.Markdown("### Walk through latent space\nSlide from the noise of seed A to the noise of seed B. "
                        "The style morphs smoothly; where the code changes, the digit jumps to another class.")
            with gr.Row():
                seed_a = gr.Number(value=seed_a0, label="Seed A", precision=0, elem_id="interp-seed-a", min_width=100)
                seed_b = gr.Number(value=seed_b0, label="Seed B", precision=0, elem_id="interp-seed-b", min_width=100)
                mode = gr.Radio(list(INTERPOLATION_MODES), value=mode0, label="Path", elem_id="interp-mode")
            position = gr.Slider(0, 1, value=t0, step=0.01, label="Position t (0 = seed A, 1 = seed B)",
                                 elem_id="interp-t")
            with gr.Row(equal_height=False):
                frame = picture(first_frame, "Digit at t", "interp-frame", height=340, buttons=["download"], scale=1)
                with gr.Column(scale=1):
                    gr.Markdown("**slerp** follows the sphere where Gaussian noise lives; **linear** cuts through "
                                "its middle, where the generator saw little noise in training.")
                    steps = gr.Slider(2, MAX_STEPS, value=steps0, step=1, label="Steps in the strip",
                                      elem_id="interp-steps")
            strip = picture(first_strip, "The whole path, seed A to seed B", "interp-strip", buttons=["download"])

    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            gr.Markdown("### Mode coverage\nA GAN on 2-D points, against the 8 true modes: do its samples land on "
                        "all of them, or has it collapsed onto a few?")
            with gr.Row():
                ring_seed = gr.Number(value=seed0, label="Seed", precision=0, elem_id="ring-seed", min_width=100)
                ring_points = gr.Slider(10, MAX_POINTS, value=points0, step=10, label="Points", elem_id="ring-points")
            ring_button = gr.Button("Sample points", variant="primary", elem_id="ring-generate")
            ring_summary = gr.Markdown(first_summary, elem_id="ring-summary")
        with gr.Column(scale=2):
            ring_plot = picture(first_plot, "Samples vs true modes", "ring-plot", height=520,
                                buttons=["download", "fullscreen"])

    snapshots = progress_snapshots(ctx)
    if snapshots:
        gr.Markdown("### Training progress\nSamples saved while the digit GAN trained, from the first steps to the "
                    "last: noise becomes strokes, strokes become digits.")
        gr.Gallery(value=[(str(p), caption) for p, caption in snapshots], label="Samples during training",
                   columns=len(snapshots), rows=1, height=360, object_fit="contain", interactive=False,
                   allow_preview=True, elem_id="training-progress")

    def on_grid(seed_value, count_value, digit_value="any"):
        return digit_grid(ctx, seed_value, count_value, digit_value)

    def on_strip(a, b, n, how):
        return interpolation_strip(ctx, a, b, n, how)

    def on_frame(a, b, t, how):
        return interpolation_frame(ctx, a, b, t, how)

    def on_ring(seed_value, n):
        path, summary = ring_scatter(ctx, seed_value, n)
        return path, summary

    grid_event = dict(fn=user_errors(on_grid), inputs=[seed, count, digit], outputs=grid)
    strip_event = dict(fn=user_errors(on_strip), inputs=[seed_a, seed_b, steps, mode], outputs=strip)
    frame_event = dict(fn=user_errors(on_frame), inputs=[seed_a, seed_b, position, mode], outputs=frame)
    ring_event = dict(fn=user_errors(on_ring), inputs=[ring_seed, ring_points], outputs=[ring_plot, ring_summary])

    generate.click(**grid_event, api_name="digits")
    seed.submit(**grid_event, api_visibility="private")
    digit.change(**grid_event, api_visibility="private")
    position.change(**frame_event, api_name="interpolation_frame", trigger_mode="always_last",
                    show_progress="hidden")
    for control in (seed_a, seed_b, mode):
        control.change(**strip_event, api_visibility="private", trigger_mode="always_last")
        control.change(**frame_event, api_visibility="private", trigger_mode="always_last", show_progress="hidden")
    steps.change(**strip_event, api_name="interpolation", trigger_mode="always_last")
    ring_button.click(**ring_event, api_name="ring8")

