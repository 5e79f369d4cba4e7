"""Responsible use: every image this package generates says so, to people and to machines.

* a visible label ("SYNTHETIC - made with deepfake_lab") drawn on a strip below the image, so it
  survives screenshots and does not hide any pixel of the result;
* machine-readable provenance in PNG text chunks (``synthetic=true``, the generator, the model,
  the time, and an IPTC digital-source-type URI that content-credential readers understand).

Labelling can be switched off only in code (``label=False``), for example to compute metrics on raw
outputs; the command line and the app always label.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

__all__ = ["LABEL_TEXT", "REFERENCE_TEXT", "label_image", "provenance_info", "save_labelled_png", "save_reference_png",
           "read_provenance"]

LABEL_TEXT = "SYNTHETIC - made with deepfake_lab"
#: IPTC NewsCodes "digital source type" for media created by a trained model
IPTC_TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


#: the colour of the SYNTHETIC strip, and of the strip under real images shown beside generated ones
LABEL_COLOUR = (200, 20, 20)
REFERENCE_COLOUR = (70, 70, 70)
#: what the grey strip says: an input or a ground truth is shown next to generated images, not generated itself
REFERENCE_TEXT = "REAL - not generated"


def label_image(image: Image.Image, text: str = LABEL_TEXT, colour: tuple[int, int, int] = LABEL_COLOUR,
                short_text: str = "SYNTHETIC", fit_text: str | None = None) -> Image.Image:
    """Return a copy of ``image`` with a strip below it that carries ``text`` in white on ``colour``.

    The font is sized so that ``fit_text`` (default: ``text``) fits the width; images too narrow for it get a
    bitmap font and ``short_text``. Giving two labels the same ``fit_text`` gives them strips of one height,
    so a labelled input and a labelled output line up (e.g. in a before/after slider).
    """
    image = image.convert("RGB")
    fit_text = fit_text or text
    w, h = image.size
    size = min(32, w // 24)
    font = _font(max(size, 12))
    draw_probe = ImageDraw.Draw(image)
    # shrink the text until it fits the width
    while size > 11:
        box = draw_probe.textbbox((0, 0), fit_text, font=font)
        if box[2] - box[0] <= w - 4:
            break
        size -= 1
        font = _font(size)
    box = draw_probe.textbbox((0, 0), fit_text, font=font)
    if size < 12 or box[2] - box[0] > w - 4:
        # small images: Pillow's bitmap font (crisp, ~6 px a letter) and the short form of the label
        font = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") else _font(11)
        if draw_probe.textbbox((0, 0), fit_text, font=font)[2] > w - 4:
            text, fit_text = short_text, "SYNTHETIC"  # every short label gets the strip height of this one
        box = draw_probe.textbbox((0, 0), fit_text, font=font)
        size = box[3] - box[1]
    strip = size + 6
    text_box = draw_probe.textbbox((0, 0), text, font=font)
    out = Image.new("RGB", (w, h + strip), colour)
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    draw.text(((w - (text_box[2] - text_box[0])) // 2, h + (strip - (box[3] - box[1])) // 2 - box[1]), text,
              fill=(255, 255, 255), font=font)
    return out


def save_reference_png(image: Image.Image, path: str | os.PathLike, details: dict[str, Any] | None = None) -> Path:
    """Save a *real* image shown next to generated ones (an input, a ground truth): a grey "REAL - not
    generated" strip of the same height as the SYNTHETIC one, and text chunks with ``synthetic=false``."""
    from . import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labelled = label_image(image, REFERENCE_TEXT, REFERENCE_COLOUR, short_text="REAL", fit_text=LABEL_TEXT)
    meta = PngImagePlugin.PngInfo()
    info = {"synthetic": "false", "Software": f"deepfake_lab {__version__}",
            "Description": "A real image (an input or a ground truth) shown beside generated ones; not generated."}
    if details:
        info["deepfake_lab"] = json.dumps(details, sort_keys=True, default=str)
    for key, value in info.items():
        meta.add_itxt(key, value)
    labelled.save(path, format="PNG", pnginfo=meta)
    return path


def provenance_info(details: dict[str, Any] | None = None) -> dict[str, str]:
    """The text chunks written into every generated PNG."""
    from . import __version__

    info = {
        "synthetic": "true",
        "Software": f"deepfake_lab {__version__}",
        "DigitalSourceType": IPTC_TRAINED_ALGORITHMIC_MEDIA,
        "Created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "Description": "Synthetic image generated by a model for teaching; not a photograph of a real event.",
    }
    if details:
        info["deepfake_lab"] = json.dumps(details, sort_keys=True, default=str)
    return info


def save_labelled_png(image: Image.Image, path: str | os.PathLike, details: dict[str, Any] | None = None,
                      label: bool = True) -> Path:
    """Save ``image`` as PNG with the visible label (unless ``label=False``) and provenance text chunks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if label:
        image = label_image(image)
    meta = PngImagePlugin.PngInfo()
    for key, value in provenance_info(details).items():
        meta.add_itxt(key, value)
    image.save(path, format="PNG", pnginfo=meta)
    return path


def read_provenance(path_or_image) -> dict[str, str]:
    """The provenance text chunks of a PNG (empty dict if it has none)."""
    image = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    text = getattr(image, "text", None) or {}
    return dict(text)
