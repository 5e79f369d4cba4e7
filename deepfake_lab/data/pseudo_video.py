"""Pseudo-videos: one still photo moved along a smooth random path, so that it looks like a (stiff) clip.

A lesson that learns from video needs more than one pose of a face. Where only a photo is at hand,
each frame warps it a little differently:

1. a similarity jitter about the crop's centre: roll :math:`\\pm` ``roll`` degrees, zoom :math:`1 \\pm`
   ``zoom``, shift :math:`\\pm` ``shift`` of half the crop;
2. a smooth non-rigid warp: a ``warp_points`` x ``warp_points`` grid of displacements of up to
   :math:`\\pm` ``warp`` of the crop, interpolated bicubically to every pixel (standing in for small
   changes of expression);
3. lighting: brightness (``gain``) and ``contrast`` :math:`\\pm` their value, and a warm/cool ``tint``.

Every parameter is a sum of two slow sinusoids over the clip with random frequencies (0.5 to 2.5
cycles) and phases, so neighbouring frames are alike, as in a real clip; ``seed`` fixes them.

Used by lesson 5 (identity B, :func:`deepfake_lab.data.faceswap_data.identity_B_faces`: Grace
Hopper's face, with lighting), lesson 4 (the portraits of its training set,
:func:`deepfake_lab.data.animation_data.demo_training_set`: motion only) and the detector of
:mod:`deepfake_lab.detect`.
"""
from __future__ import annotations

import numpy as np

from . import DataError

__all__ = ["pseudo_video"]


def pseudo_video(image, n_frames: int = 48, size: int = 64, seed: int = 0, crop: np.ndarray | None = None, *,
                 roll: float = 6.0, zoom: float = 0.06, shift: float = 0.04, warp: float = 0.02,
                 warp_points: int = 4, gain: float = 0.12, contrast: float = 0.12,
                 tint: float = 0.05) -> np.ndarray:
    """A still (H, W, 3) uint8 photo -> (n_frames, size, size, 3) uint8 of smooth random motion.

    ``crop``: the 2x3 matrix from the photo's pixels to the output square (for example a face
    alignment's, :func:`deepfake_lab.data.faces.align_face`); None: the whole photo resized to
    ``size`` x ``size``. Borders are filled by replicating the edge. Set ``gain``, ``contrast`` and
    ``tint`` to 0 for motion alone.
    """
    import cv2

    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"pseudo-video photo: array of shape {image.shape} ({image.dtype}); need (H, W, 3) uint8 RGB")
    if n_frames < 1:
        raise DataError(f"pseudo-video of {n_frames} frames: need at least 1")
    s = size
    if crop is None:
        crop = np.array([[s / image.shape[1], 0, 0], [0, s / image.shape[0], 0]], dtype=np.float64)
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / max(n_frames - 1, 1)

    def smooth(amplitude: float, shape=()):
        """Per-frame values: a random sum of two slow sinusoids scaled to +-amplitude, (n_frames, *shape)."""
        f = rng.uniform(0.5, 2.5, size=(2,) + tuple(shape))
        p = rng.uniform(0, 2 * np.pi, size=(2,) + tuple(shape))
        w = np.sin(2 * np.pi * f[0] * t.reshape((-1,) + (1,) * len(shape)) + p[0]) * 0.6 \
            + np.sin(2 * np.pi * f[1] * t.reshape((-1,) + (1,) * len(shape)) + p[1]) * 0.4
        return amplitude * w

    # the order of the draws is part of the recipe: the same seed gives the same clip
    angles, zooms = smooth(roll), 1 + smooth(zoom)
    dx, dy = smooth(shift), smooth(shift)
    offsets = smooth(warp, (2, warp_points, warp_points))                 # (T, 2, k, k) control-point offsets
    gains, contrasts, tints = 1 + smooth(gain), 1 + smooth(contrast), smooth(tint)
    frames = np.empty((n_frames, s, s, 3), np.uint8)
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    base = np.vstack([crop, [0, 0, 1]])
    for i in range(n_frames):
        jitter = cv2.getRotationMatrix2D((s / 2, s / 2), angles[i], zooms[i])
        jitter[:, 2] += (dx[i] * s / 2, dy[i] * s / 2)
        m = (np.vstack([jitter, [0, 0, 1]]) @ base)[:2]                        # photo -> frame i
        frame = cv2.warpAffine(image, m, (s, s), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        field = cv2.resize(offsets[i].transpose(1, 2, 0).astype(np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
        frame = cv2.remap(frame, xs + field[..., 0] * s, ys + field[..., 1] * s, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)                     # (s, s, 3), non-rigidly moved
        x = frame.astype(np.float32)
        mean = x.mean()
        x = (x - mean) * contrasts[i] + mean * gains[i]
        x *= np.array([1 + tints[i], 1.0, 1 - tints[i]], np.float32)
        frames[i] = np.clip(x, 0, 255).round().astype(np.uint8)
    return frames
