"""The classroom demo app: ``deepfake-lab demo`` serves every lesson's models in a browser.

    deepfake-lab demo                              # http://127.0.0.1:7860, this computer only
    deepfake-lab demo --host 0.0.0.0 --auth class:secret   # the whole classroom, with a password

Modules: :mod:`~deepfake_lab.app.ui` (``build_app``, the tab list, theme), :mod:`~deepfake_lab.app.models`
(which models the app shows: the lesson table's demo weights and the models in the cache's models folder),
:mod:`~deepfake_lab.app.common` (model store, labelled outputs, input checks), :mod:`~deepfake_lab.app.examples`
(held-out examples and their scores), one ``tab_*.py`` per tab.

Privacy: building the app turns Gradio's analytics off and puts the Hugging Face hub offline before Gradio
is imported (:mod:`~deepfake_lab.app.ui` does it), so a running app sends nothing beyond the machine it
serves. Importing this package alone imports no Gradio and changes nothing.
"""
from __future__ import annotations


__all__ = ["build_app", "launch_options"]


def build_app(device: str = "auto", weights_dir=None, concurrency: int | None = None, batching: bool | None = None):
    """Build the app (see :func:`deepfake_lab.app.ui.build_app`); Gradio is imported only now."""
    from .ui import build_app as _build

    return _build(device=device, weights_dir=weights_dir, concurrency=concurrency, batching=batching)


def launch_options() -> dict:
    """The theme, CSS and server options every launch uses (see :func:`deepfake_lab.app.ui.launch_options`)."""
    from .ui import launch_options as _options

    return _options()
