"""Tab "About": every model in the app, its data and licences, its measured numbers, and how to use it responsibly.

The numbers are not typed here: they are read from the model card (``<name>.md``) that sits beside each
weights file, the card that the training command's run produced. So a student who retrains with
``--weights DIR`` sees the numbers of *their* model.
"""
from __future__ import annotations

import re
from pathlib import Path

from .common import AppContext, ModelSpec

TITLE = "About"

RESPONSIBLE_USE = """\
### Using this responsibly

The same building blocks that make these digits make convincing fake faces and voices. In this course:

* **Consent.** Only generate, swap or animate a real person's likeness with their explicit permission, and never
  to deceive, harass or impersonate. Where the lessons use real faces, they come from published test material
  and serve only to show how a method works.
* **Labelling.** Everything this app produces says it is synthetic: a visible red *SYNTHETIC* strip under every
  image, and machine-readable provenance in the PNG (`synthetic=true` and the IPTC digital source type
  *trainedAlgorithmicMedia*). Do not crop the strip or strip the metadata when you share results.
* **Detection.** Generated images carry statistical fingerprints; detectors and provenance standards (C2PA
  content credentials) exist because fakes get good. Learning how they are made is how we learn to spot them.
* **This app** runs on this machine only: no analytics, nothing uploaded, and it binds to 127.0.0.1 unless the
  instructor chose otherwise.
"""

LICENCES = """\
### Licences

The deepfake_lab code is BSD-3-Clause; the demo weights ship with it under the same licence and were trained by
its own `deepfake-lab train` command (the exact command is in each model card). The data each model learned from
keeps its own licence, credited with each model above. The app is built with Gradio (Apache-2.0) and PyTorch
(BSD-3-Clause).
"""


def card_metrics(card: str) -> str | None:
    """The "measured" part of a model card: the section whose heading mentions metrics, results or measured.

    Returns that section's body (without its heading), or None when the card has no such section.
    """
    lines = card.splitlines()
    for i, line in enumerate(lines):
        heading = re.match(r"^(#{1,6})\s+(.*)", line)
        if heading and re.search(r"metric|result|measure|evaluation", heading.group(2), re.IGNORECASE):
            level = len(heading.group(1))
            body = []
            for following in lines[i + 1:]:
                deeper = re.match(r"^(#{1,6})\s", following)
                if deeper and len(deeper.group(1)) <= level:
                    break
                body.append(following)
            text = "\n".join(body).strip()
            return text or None
    return None


def model_section(ctx: AppContext, spec: ModelSpec) -> tuple[str, str | None]:
    """Markdown describing one model, and the text of its model card (None if there is none)."""
    weights = ctx.models.path(spec)
    embedded = spec.embedded()
    origin = "shipped in the package" if weights == embedded else f"from `--weights {weights.parent}`"
    if weights.exists():
        n_bytes = weights.stat().st_size
        size = f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:.0f} kB"
        where = f"`{weights.name}` ({size}, {origin})"
    else:
        where = f"`{weights.name}`: **missing** (reinstall deepfake_lab, or train it and pass `--weights DIR`)"
    card_path = ctx.models.card_path(spec)
    card = card_path.read_text(encoding="utf-8") if card_path.exists() else None
    if card is None:
        measured = f"_No model card found (`{card_path.name}` beside the weights), so no measured numbers._"
    else:
        measured = card_metrics(card) or "_The model card has no metrics section; open it below._"
    data = spec.data(weights) if callable(spec.data) else spec.data
    text = (f"### {spec.title}\n\n{spec.what}\n\n"
            f"**Data and licence.** {data}\n\n"
            f"**Weights.** {where}\n\n"
            f"**Measured** (from its model card):\n\n{measured}\n")
    return text, card


def build(ctx: AppContext, demo) -> None:
    """Lay out the About tab: one section per model of every tab, then licences and responsible use."""
    import gradio as gr

    gr.Markdown("## What you are looking at\nEach tab runs small models trained for this course with "
                "`deepfake-lab train`. Below: what each one is, what it learned from, and how well it does.")
    for spec in ctx.specs:
        text, card = model_section(ctx, spec)
        gr.Markdown(text, elem_id=f"about-{spec.key}")
        if card is not None:
            with gr.Accordion(f"Model card: {Path(ctx.models.card_path(spec)).name}", open=False):
                gr.Markdown(card)
    gr.Markdown(LICENCES)
    gr.Markdown(RESPONSIBLE_USE, elem_id="responsible-use")
