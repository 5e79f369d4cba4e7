"""Pseudo-videos: one still photo moved along a smooth random path, so that it looks like a (stiff) clip.

A lesson that learns from video needs more than one pose of a face. Where only a photo is at hand,
each frame warps it a little differently:

1. a similarity jitter about the crop's centre: roll :math:`\\pm` ``roll`` degrees, zoom :math:`1 \\pm`
   ``zoom``, shift :math:`\\pm` ``shift`` of half the crop;
2. a smooth non-rigid warp: a ``warp_points`` x ``warp_points`` grid of displacements of up to
   :math:`\\pm` ``warp`` of the crop, interpolated bicubically to every pixel (standing in for small
   changes of expression);
3. speech (``talk``, off by default): the jaw drops and closes again, several times a clip, by up to
   ``talk`` of the crop. Below the lip line the face moves down along its own vertical (after the
   jitter's roll and zoom), fading out over the neck; the stretched band between the lips, where a
   real mouth would show its dark inside, is darkened in proportion to how far it is stretched
   (:func:`jaw_drop`). ``mouth`` says where the lips and how wide the face are in the crop;
4. lighting: brightness (``gain``) and ``contrast`` :math:`\\pm` their value, and a warm/cool ``tint``.

Every parameter is a sum of two slow sinusoids over the clip with random frequencies (0.5 to 2.5
cycles) and phases, so neighbouring frames are alike, as in a real clip; the jaw opens faster (3 to 6
cycles a clip, as syllables come faster than head turns). ``seed`` fixes them all.

Used by lesson 5 (identity B, :func:`deepfake_lab.data.faceswap_data.identity_B_faces`: Grace
Hopper's face, with lighting), lesson 4 (the portraits of its training set,
:func:`deepfake_lab.data.animation_data.demo_training_set`: motion only) and the detector of
:mod:`deepfake_lab.detect`.
"""
from __future__ import annotations

import numpy as np

from . import DataError

__all__ = ["pseudo_video", "jaw_drop", "moved_jaw", "darken_mouth", "mouth_from_box", "smoothstep", "MOUTH_INSIDE"]

#: the colour the stretched band between the lips turns to (a dark red-brown, as the inside of a mouth)
MOUTH_INSIDE = np.array([45.0, 18.0, 20.0], np.float32)


def mouth_from_box(box, size: int) -> tuple[float, float, float]:
    """A frontal face box (x, y, w, h in pixels of a ``size`` crop) -> ``mouth`` for :func:`pseudo_video`.

    The lips of a frontal Haar-cascade box lie on its vertical centre line, 0.77 of its height down
    (measured on the offline portraits and the carphone man at 128x128: 0.75-0.78); the face is as wide
    as the box.
    """
    return ((box.x + box.w / 2) / size, (box.y + 0.77 * box.h) / size, box.w / size)


def smoothstep(x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The cubic step from 0 at ``lo`` to 1 at ``hi``, and its derivative along x."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t), 6 * t * (1 - t) / (hi - lo)


def jaw_drop(xs: np.ndarray, ys: np.ndarray, mouth_xy, right, down, face_width: float,
             opening: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward displacement that opens a face's mouth by ``opening`` pixels, and where to darken it.

    ``xs``, ``ys``: pixel coordinates (H, W); ``mouth_xy``: the centre of the lips in those pixels;
    ``right``, ``down``: the face's unit axes in the frame; ``face_width`` in pixels. In face widths
    from the lips, u across and v down, a pixel at v below the lip line shows what was
    opening * g(u) * h(v) above it, with g(u) = exp(-(u / 0.4)^2) (the jaw, as wide as the face) and
    h rising from 0 to 1 across the lip line (v from -0.07 to 0.09), staying 1 to the chin (v = 0.35)
    and falling to 0 at v = 0.8 (the neck). The lower lip and chin move down; the band between the lips
    is stretched by d/dv of the shift (at most 1.5 ``opening`` / 0.16 face widths: keep ``opening``
    below 0.1 face widths, or the map folds over). Returns (dx, dy, darkness): dx, dy to add to the sampling
    coordinates, darkness in [0, 0.9], the stretch inside the lips' width (exp(-(u / 0.13)^2)).
    """
    px, py = xs - mouth_xy[0], ys - mouth_xy[1]
    u = (px * right[0] + py * right[1]) / face_width
    v = (px * down[0] + py * down[1]) / face_width
    rise, rise_slope = smoothstep(v, -0.07, 0.09)
    fall, fall_slope = smoothstep(v, 0.35, 0.8)
    h, h_slope = rise * (1 - fall), rise_slope * (1 - fall) - rise * fall_slope
    g = np.exp(-(u / 0.4) ** 2)
    shift = opening * g * h                                                    # pixels, along -down
    stretch = np.clip(opening * g * h_slope / face_width, 0.0, None)           # d(shift)/d(pixel) where it opens
    darkness = np.clip(1.3 * stretch, 0.0, 0.9) * np.exp(-(u / 0.13) ** 2)
    return -shift * down[0], -shift * down[1], darkness


def moved_jaw(xs: np.ndarray, ys: np.ndarray, m: np.ndarray, mouth: tuple[float, float, float], size: int,
              opening: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`jaw_drop` for a face moved by the 2x3 matrix ``m`` (crop pixels -> frame pixels): the lips at
    ``mouth`` (fractions of the ``size`` crop, as :func:`pseudo_video`'s) and the face's axes go where ``m`` takes
    them, and the face width and the ``opening`` (pixels of the crop) grow with its zoom."""
    right, down = m[:, 0], m[:, 1]                                             # the face's axes in the frame
    zoom = float(np.hypot(*right))
    centre = m @ np.array([mouth[0] * size, mouth[1] * size, 1.0])
    return jaw_drop(xs, ys, centre, right / zoom, down / zoom, mouth[2] * size * zoom, opening * zoom)


def darken_mouth(x: np.ndarray, darkness: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 pixels -> the same with the open mouth's dark inside, ``darkness`` (H, W) in [0, 1]."""
    a = darkness[..., None].astype(np.float32)
    return x * (1 - a) + MOUTH_INSIDE * a


def pseudo_video(image, n_frames: int = 48, size: int = 64, seed: int = 0, crop: np.ndarray | None = None, *,
                 roll: float = 6.0, zoom: float = 0.06, shift: float = 0.04, warp: float = 0.02,
                 warp_points: int = 4, gain: float = 0.12, contrast: float = 0.12,
                 tint: float = 0.05, talk: float = 0.0, mouth: tuple[float, float, float] | None = None
                 ) -> np.ndarray:
    """A still (H, W, 3) uint8 photo -> (n_frames, size, size, 3) uint8 of smooth random motion.

    ``crop``: the 2x3 matrix from the photo's pixels to the output square (for example a face
    alignment's, :func:`deepfake_lab.data.faces.align_face`); None: the whole photo resized to
    ``size`` x ``size``. Borders are filled by replicating the edge. Set ``gain``, ``contrast`` and
    ``tint`` to 0 for motion alone. ``talk``: the largest jaw drop, a fraction of ``size`` (0: the
    mouth stays shut); it needs ``mouth`` = (x, y, face width) of the crop before any jitter, each a
    fraction of ``size``: the centre of the lips and the width of the face (for example from the face
    box, :func:`mouth_from_box`).
    """
    import cv2

    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"pseudo-video photo: array of shape {image.shape} ({image.dtype}); need (H, W, 3) uint8 RGB")
    if n_frames < 1:
        raise DataError(f"pseudo-video of {n_frames} frames: need at least 1")
    if talk < 0:
        raise DataError(f"pseudo-video with talk={talk}: the jaw drop must be 0 (silent) or more")
    if talk and (mouth is None or not all(0 < v <= 1 for v in mouth)):
        raise DataError(f"pseudo-video with talk={talk} and mouth={mouth}: give mouth=(x, y, face width) as "
                        "fractions of the crop, each in (0, 1]")
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
    # drawn last, so that a clip without speech is the same as before speech existed
    cycles, phase = rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)
    openings = talk * s * ((1 + np.sin(2 * np.pi * cycles * t + phase)) / 2) ** 1.5  # (T,) pixels
    frames = np.empty((n_frames, s, s, 3), np.uint8)
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    base = np.vstack([crop, [0, 0, 1]])
    for i in range(n_frames):
        jitter = cv2.getRotationMatrix2D((s / 2, s / 2), angles[i], zooms[i])
        jitter[:, 2] += (dx[i] * s / 2, dy[i] * s / 2)
        m = (np.vstack([jitter, [0, 0, 1]]) @ base)[:2]                        # photo -> frame i
        frame = cv2.warpAffine(image, m, (s, s), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        field = cv2.resize(offsets[i].transpose(1, 2, 0).astype(np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
        map_x, map_y = xs + field[..., 0] * s, ys + field[..., 1] * s
        darkness = None
        if talk:
            dx_jaw, dy_jaw, darkness = moved_jaw(xs, ys, jitter, mouth, s, openings[i])
            map_x, map_y = map_x + dx_jaw, map_y + dy_jaw
        frame = cv2.remap(frame, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)                     # (s, s, 3), non-rigidly moved
        x = frame.astype(np.float32)
        if darkness is not None:
            x = darken_mouth(x, darkness)
        mean = x.mean()
        x = (x - mean) * contrasts[i] + mean * gains[i]
        x *= np.array([1 + tints[i], 1.0, 1 - tints[i]], np.float32)
        frames[i] = np.clip(x, 0, 255).round().astype(np.uint8)
    return frames
