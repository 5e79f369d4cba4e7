"""Where a face's parts are and how they move, for the motion measures of lesson 4 and for transplanted motion.

* :func:`optical_flow`: dense optical flow (Farnebäck 2003, OpenCV's ``calcOpticalFlowFarneback``) between two
  grey frames;
* :func:`find_mouth`: the lips' position and the face width of a clip of face crops, from the Haar face box;
* boxes of the face in face widths from the lips (``CHIN_BOX``, ``NOSE_BOX``, ``LIPS_BOX``) and :func:`face_box`,
  their pixels in a frame.

Used by :mod:`deepfake_lab.animation.evaluate` (the transfer and mouth measures) and
:mod:`deepfake_lab.data.motion_transplant`.
"""
from __future__ import annotations

import numpy as np

from . import DataError

__all__ = ["optical_flow", "find_mouth", "MouthNotFound", "face_box", "CHIN_BOX", "NOSE_BOX", "LIPS_BOX"]


def optical_flow(first: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Dense optical flow between two (H, W) uint8 grey frames: (H, W, 2) pixels, x then y."""
    import cv2

    # pyramid 0.5 x 3 levels, window 15, 3 iterations, polynomial 5 / 1.2: OpenCV's documented example values
    return cv2.calcOpticalFlowFarneback(first, later, None, 0.5, 3, 15, 3, 5, 1.2, 0)


class MouthNotFound(ValueError):
    """No frontal face in a clip: :func:`find_mouth` cannot place its lips."""


#: the chin and nose boxes of :func:`~deepfake_lab.animation.evaluate.mouth_signals`, in face widths from the lips:
#: (u from, u to, v from, v to)
CHIN_BOX, NOSE_BOX = (-0.2, 0.2, 0.1, 0.3), (-0.2, 0.2, -0.35, -0.15)
#: the lips' box, whose grey level drops when a mouth opens and shows its dark inside
LIPS_BOX = (-0.15, 0.15, -0.06, 0.12)


def face_box(shape, mouth, b) -> tuple[slice, slice]:
    """Rows and columns of box ``b`` (u from, u to, v from, v to, face widths from the lips) in an (H, W) frame."""
    h, w = shape
    x, y, width = mouth[0] * w, mouth[1] * h, mouth[2] * w
    cols = slice(max(0, round(x + b[0] * width)), min(w, round(x + b[1] * width)))
    rows = slice(max(0, round(y + b[2] * width)), min(h, round(y + b[3] * width)))
    if cols.stop - cols.start < 2 or rows.stop - rows.start < 2:
        raise DataError(f"mouth {mouth}: its boxes fall outside the {w}x{h} frame; give the lips' x, y and the "
                        "face width as fractions of the frame")
    return rows, cols


def find_mouth(frames) -> tuple[float, float, float]:
    """``mouth`` of a clip of face crops ((T, H, W, 3) uint8): from the frontal face box of its first frame in which
    the Haar cascade finds one (:func:`~deepfake_lab.data.pseudo_video.mouth_from_box`; a wide-open mouth can hide
    a face from the cascade, so later frames are tried)."""
    from .faces import detect_faces
    from .pseudo_video import mouth_from_box

    frames = np.asarray(frames)
    for frame in frames:
        boxes = detect_faces(frame)
        if boxes:
            return mouth_from_box(max(boxes, key=lambda b: b.w * b.h), frame.shape[1])
    raise MouthNotFound(f"no frontal face in any of the {len(frames)} frames: cannot place the mouth; pass "
                        "driving_mouth=(x, y, face width), fractions of the frame")
