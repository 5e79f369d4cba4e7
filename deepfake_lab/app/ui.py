"""Assemble the demo app: a header, one tab per lesson, the About tab; the theme and launch options.

A lesson adds its tab by adding one module ``deepfake_lab/app/tab_<lesson>.py`` with

* ``TITLE``: the tab's name,
* ``MODELS``: its :class:`~deepfake_lab.app.common.ModelSpec` s (the About tab lists them),
* ``build(ctx, demo)``: the layout and events, inside the ``gr.Tab`` that ``build_app`` opens,

and one line in :data:`LESSON_TABS`. A tab whose lesson module has not been written yet is skipped.
Inside a tab: get models from ``ctx.models.get(spec)`` (loaded once, shared), return every picture as
``ctx.outputs.png(image, details)`` (the labelled PNG) to a ``gr.Image(format="png", type="filepath")``, wrap
each handler in :func:`~deepfake_lab.app.common.user_errors`, and give each event an ``api_name``.
"""
from __future__ import annotations

import importlib
import logging
import os
import time
from pathlib import Path

from .. import __version__
from ..device import describe, pick_device
from ..provenance import LABEL_TEXT
from .common import AppContext, ModelStore

log = logging.getLogger("deepfake_lab.app")

# Set when the app is built, before gradio is imported: no usage analytics, no version check, no hub look-ups.
# (Not at package import: other commands, e.g. downloads, must keep the user's own settings.)
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

#: tab modules in lesson order; About always comes last
LESSON_TABS = (
    "deepfake_lab.app.tab_gan",
    "deepfake_lab.app.tab_translate",
    "deepfake_lab.app.tab_animation",
    "deepfake_lab.app.tab_compare",
)
ABOUT_TAB = "deepfake_lab.app.tab_about"

#: requests waiting beyond this many are turned away with "queue full" instead of waiting for minutes
MAX_QUEUE = 64
#: uploads above this size are refused by gradio before they reach a handler (a 150-frame video is far smaller)
MAX_UPLOAD = "200mb"
#: requests computed at the same time; the rest wait in order (2 keeps a small CPU responsive)
CONCURRENCY = 2

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


def _import_tabs(names):
    tabs = []
    for name in names:
        try:
            tabs.append(importlib.import_module(name))
        except ModuleNotFoundError as err:  # the lesson behind this tab has not landed yet
            if err.name and err.name.startswith("deepfake_lab"):
                log.warning("tab %s skipped: %s", name, err)
                continue
            raise
    return tabs


def build_app(device: str = "auto", weights_dir: str | Path | None = None):
    """Build the demo app (a ``gr.Blocks``, queued); launch it with ``demo.launch(**launch_options())``.

    ``device``: where the models run (``auto`` picks CUDA, then MPS, then the CPU). ``weights_dir``: a folder
    with other weights (same file names as the package's); missing files fall back to the package's own.
    Every model is loaded here, once, and shared by all requests.
    """
    import gradio as gr

    start = time.perf_counter()
    if weights_dir is not None and not Path(weights_dir).is_dir():
        raise NotADirectoryError(f"--weights {weights_dir}: not a folder; give the folder that holds the "
                                 ".safetensors files (or leave it out to use the weights shipped in the package)")
    torch_device = pick_device(device)
    ctx = AppContext(device=torch_device, models=ModelStore(torch_device, weights_dir))
    tabs = _import_tabs(LESSON_TABS)
    about = importlib.import_module(ABOUT_TAB)
    ctx.specs = [spec for tab in tabs for spec in tab.MODELS]
    problems = ctx.models.preload(ctx.specs)

    with gr.Blocks(title="deepfake_lab demo", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        gr.Markdown(
            f"# deepfake_lab: how deepfakes are made\n"
            f"Running on **{describe(torch_device)}** · deepfake_lab {__version__} · "
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
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    demo.deepfake_lab_context = ctx  # for tests and notebooks: the models and output folder behind the page
    log.info("app built in %.2f s on %s", time.perf_counter() - start, describe(torch_device))
    return demo
