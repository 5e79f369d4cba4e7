"""Assemble the demo app: a header, one tab per lesson, the About tab; the theme and launch options.

A lesson adds its tab by writing one module ``deepfake_lab/app/tab_<lesson>.py`` with

* ``TITLE``: the tab's name,
* ``MODELS``: its :class:`~deepfake_lab.app.common.ModelSpec` s, taken from
  :mod:`~deepfake_lab.app.models` (the lesson table's demo weights; the About tab lists them),
* ``build(ctx, demo)``: the layout and events, inside the ``gr.Tab`` that ``build_app`` opens,

and adding the module to :data:`TABS`, the one list of tabs (imported here, found by no name).
Inside a tab: get models from ``ctx.models.get(spec)`` (loaded once, shared), return every picture as
``ctx.outputs.png(image, details)`` (the labelled PNG) to a ``gr.Image(format="png", type="filepath")``, wrap
each handler in :func:`~deepfake_lab.app.common.user_errors`, and give each event an ``api_name``.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .. import __version__
from ..device import describe, pick_device, policy_summary
from ..provenance import LABEL_TEXT
from . import tab_about, tab_animation, tab_compare, tab_gan, tab_live, tab_translate
from .batching import Batcher
from .common import AppContext, ModelStore

log = logging.getLogger("deepfake_lab.app")

# Set when the app is built, before gradio is imported: no usage analytics, no version check, no hub look-ups.
# (Not at package import: other commands, e.g. downloads, must keep the user's own settings.)
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

#: the tabs in lesson order; About (:data:`ABOUT_TAB`, every tab's models) always comes after them
TABS = (tab_gan, tab_translate, tab_animation, tab_live, tab_compare)
ABOUT_TAB = tab_about

#: requests waiting beyond this many are turned away with "queue full" instead of waiting for minutes
MAX_QUEUE = 64
#: uploads above this size are refused by gradio before they reach a handler (a 150-frame video is far smaller)
MAX_UPLOAD = "200mb"
#: the environment variables that override :func:`serving_plan` (``deepfake-lab demo --concurrency N`` sets the
#: first) and turn the batching of simultaneous image-to-image requests off (``0``), as ``--no-batching`` does
CONCURRENCY_ENV, BATCHING_ENV = "DEEPFAKE_LAB_CONCURRENCY", "DEEPFAKE_LAB_BATCHING"
#: requests in flight per CPU core by default: more than one, so that simultaneous requests for one model are
#: there to be stacked into one forward pass (:mod:`~deepfake_lab.app.batching`); the rest wait in order
REQUESTS_PER_CORE = 2


def cpu_cores() -> int:
    """The CPU cores this process may use (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def serving_plan(concurrency: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """(requests computed at the same time, torch threads) for this machine.

    ``concurrency``: given (``--concurrency``), else ``$DEEPFAKE_LAB_CONCURRENCY``, else
    :data:`REQUESTS_PER_CORE` per core. Threads: the cores shared among them, at least one, so that N
    simultaneous requests run at most about one thread per core (more threads than cores, each spinning
    while it waits for the others, is many times slower on a CPU).
    """
    cores = cores or cpu_cores()
    if concurrency is None:
        text = os.environ.get(CONCURRENCY_ENV, "").strip()
        if text:
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"${CONCURRENCY_ENV} {text!r}: not a whole number of at least 1; set it to the "
                                 "number of requests to compute at once (e.g. 4), or unset it to size it from the CPU")
            concurrency = int(text)
        else:
            concurrency = REQUESTS_PER_CORE * cores
    if concurrency < 1:
        raise ValueError(f"--concurrency {concurrency}: use a whole number of at least 1 (requests computed at once)")
    return concurrency, max(1, cores // concurrency)


def batching_default() -> bool:
    """Whether simultaneous image-to-image requests share forward passes: yes, unless ``$DEEPFAKE_LAB_BATCHING=0``."""
    return os.environ.get(BATCHING_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


#: big type and wide layout, for a projector at the back of a classroom
CSS = """
.gradio-container { max-width: 100% !important; font-size: 18px; }
.gradio-container h1 { font-size: 2.1rem; margin-bottom: 0.2rem; }
.gradio-container h3 { font-size: 1.4rem; margin: 0.3rem 0; }
#app-header p { font-size: 1.05rem; margin: 0; }
#digits-grid img, #interp-strip img, #interp-frame img { image-rendering: pixelated; }
/* small pictures (the 72x72 example tiles) fill their box like the gallery's, instead of a stamp in its middle */
#translate-input img, #translate-truth img, #compare-input img, #compare-out-a img, #compare-out-b img,
#animation-source img { width: 100%; height: 100%; object-fit: contain; }
button.lg, button.primary { font-size: 1.15rem !important; }
"""


def theme():
    """A high-contrast theme with large text and local fonts only (nothing fetched from the internet)."""
    import gradio as gr

    return gr.themes.Default(
        primary_hue="red", secondary_hue="slate", neutral_hue="slate", text_size=gr.themes.sizes.text_lg,
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch_options() -> dict:
    """Keyword arguments for ``demo.launch`` that every launch (command line, tests) uses."""
    return dict(theme=theme(), css=CSS, ssr_mode=False, mcp_server=False, pwa=False, show_error=False,
                footer_links=["api", "settings"], quiet=True, max_file_size=MAX_UPLOAD)


def build_app(device: str = "auto", weights_dir: str | Path | None = None, concurrency: int | None = None,
              batching: bool | None = None):
    """Build the demo app (a ``gr.Blocks``, queued); launch it with ``demo.launch(**launch_options())``.

    ``device``: where the models run (``auto`` picks CUDA, then MPS, then the CPU). ``weights_dir``: a folder
    with other weights (same file names as the package's); missing files fall back to the package's own.
    Every model is loaded here, once, and shared by all requests. ``concurrency``: requests computed at the
    same time (None: :func:`serving_plan`, which also sets torch's threads for the process);
    ``batching``: stack simultaneous image-to-image requests into one forward pass (None: yes, unless
    ``$DEEPFAKE_LAB_BATCHING=0``).
    """
    import gradio as gr
    import torch

    start = time.perf_counter()
    if weights_dir is not None and not Path(weights_dir).is_dir():
        raise NotADirectoryError(f"--weights {weights_dir}: not a folder; give the folder that holds the "
                                 ".safetensors files (or leave it out to use the weights shipped in the package)")
    torch_device = pick_device(device)
    concurrency, threads = serving_plan(concurrency)
    torch.set_num_threads(threads)
    ctx = AppContext(device=torch_device, models=ModelStore(torch_device, weights_dir),
                     batcher=Batcher(enabled=batching_default() if batching is None else batching))
    tabs, about = TABS, ABOUT_TAB
    ctx.specs = [spec for tab in tabs for spec in tab.MODELS]
    problems = ctx.models.preload(ctx.specs)

    with gr.Blocks(title="deepfake_lab demo", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(
            f"# deepfake_lab: how deepfakes are made\n"
            f"Running on **{describe(torch_device)}** · precision: {policy_summary(torch_device)} · "
            f"deepfake_lab {__version__} · "
            f"every image carries a visible label (*{LABEL_TEXT}*) and provenance metadata.",
            elem_id="app-header")
        for key, message in problems.items():
            gr.Markdown(f"**Not available:** {message}", elem_id=f"missing-{key}")
        with gr.Tabs():
            for tab in tabs:
                with gr.Tab(tab.TITLE, id=tab.__name__.rsplit(".", 1)[-1]):
                    tab.build(ctx, demo)
            with gr.Tab(about.TITLE, id="tab_about"):
                about.build(ctx, demo)
    demo.queue(default_concurrency_limit=concurrency, max_size=MAX_QUEUE)
    demo.deepfake_lab_context = ctx  # for tests and notebooks: the models and output folder behind the page
    log.info("app built in %.2f s on %s: %d request(s) at once, %d torch thread(s), batching %s",
             time.perf_counter() - start, describe(torch_device), concurrency, threads,
             "on" if ctx.batcher.enabled else "off")
    return demo
