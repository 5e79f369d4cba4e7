"""The two portraits that ship offline, and their head crops.

Both photographs are public domain and both show real, identifiable people, so everything a lesson
makes from them is labelled synthetic:

* ``"grace_hopper"``: US Navy Rear Admiral Grace Hopper, 1984 (matplotlib's sample data), 512x600;
* ``"astronaut"``: NASA astronaut Eileen Collins (scikit-image's data), 512x512.

Where each file lives inside its package, its licence and its credit are in
:data:`deepfake_lab.data.embedded.SOURCE_PHOTOS` (the table of every photo the package builds data
from); this module only says which of them are portraits and where their heads are.

    photo = portrait("grace_hopper")       # (600, 512, 3) uint8
    heads = portrait_stills(64)            # {"grace_hopper": (64, 64, 3), "astronaut": (64, 64, 3)}
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import DataError
from .embedded import SOURCE_PHOTOS, _package_file, source_photo
from .faces import Box, crop_box, face_crop

__all__ = ["PORTRAITS", "portrait", "portrait_path", "portrait_head", "portrait_stills"]

#: name -> the head's box when the face cascade cannot be trusted on that photo (None: detect it)
PORTRAITS: dict[str, Box | None] = {
    "grace_hopper": None,
    # the cascade's largest hit on the astronaut photo is her badge, not her face
    "astronaut": Box(130, 20, 190, 190),
}


def _check(name: str) -> None:
    if name not in PORTRAITS:
        raise DataError(f"portrait {name!r}: unknown; use one of {', '.join(PORTRAITS)}")


def portrait(name: str) -> np.ndarray:
    """The whole portrait ``name`` as (H, W, 3) uint8 RGB (see :data:`PORTRAITS`)."""
    _check(name)
    return np.asarray(source_photo(name))


def portrait_path(name: str) -> Path:
    """The file of portrait ``name`` inside the package that ships it."""
    _check(name)
    photo = next(p for p in SOURCE_PHOTOS if p.name == name)
    return _package_file(photo.package, photo.relpath)


def portrait_head(name: str, size: int | None = None) -> np.ndarray:
    """The head of portrait ``name``: twice the face box, square, resized to ``size``: (S, S, 3) uint8."""
    image = portrait(name)
    box = PORTRAITS[name]
    if box is None:
        return face_crop(image, size, what=f"portrait {name!r}")
    return crop_box(image, box, size)


def portrait_stills(size: int = 64) -> dict[str, np.ndarray]:
    """Head crops of every portrait: ``{"grace_hopper": ..., "astronaut": ...}``, (size, size, 3) uint8."""
    return {name: portrait_head(name, size) for name in PORTRAITS}
