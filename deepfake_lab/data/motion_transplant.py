"""Transplanted motion: a still portrait moved, frame by frame, as a real driver moved.

Animating another person is *relative* transfer (§3.5 of Siarohin et al. 2019): the source's keypoints move by the
change of the driver's keypoints since a reference frame. Self-supervised training (§3.4) never poses that task,
because source and driving frames come from one video. With one real talking head offline and only still photos
of other people, the model learns the carphone man's motion well and carries it poorly to the others. A
transplanted clip gives another face the driver's own motion, so that the relative task has a ground truth:

1. **the head**: for every driver frame t, the affine map :math:`A_t` (2x3, frame 0's pixels -> frame t's) that
   best fits, by least squares, where the upper face's pixels of frame 0 have gone: tracked from frame to frame
   by the dense optical flow (:func:`~deepfake_lab.data.face_motion.optical_flow`; the flow straight from
   frame 0 loses a head that has moved far), over the part of the face the jaw does not move,
   ``UPPER_FACE``, in face widths from the lips (1 face width across, from 0.75 to 0.05 above the lips);
2. **the mouth**: how far open the driver's mouth is, :math:`o_t \\in [0, 1]`, from the dark inside an open
   mouth shows, read on the frame moved back onto frame 0 (:func:`mouth_openness`; the flow of the chin is
   not reliable once the head tilts far);
3. **the portrait**: its head moved by :math:`S A_t S^{-1}`, where the similarity S takes the driver's lips and
   face width onto the portrait's, and its jaw dropped by :math:`0.09\\, o_t` of its face width (``JAW_DROP``;
   :func:`~deepfake_lab.data.pseudo_video.moved_jaw`), so that its mouth is as shut as the photo's where his is
   most shut. Only the head moves, as in a real clip, where the background stays put and the shoulders hardly
   move: the head, the ellipse ``HEAD`` about the lips (in face widths), is laid over the portrait's background
   with a soft edge, and where it moves away the background shows, filled in from around the head
   (:func:`head_alpha`, :func:`head_background`). Two other ways fail. Moving the whole crop gives the
   background the head's motion: by the optical-flow measure of lesson 4 (``animation.evaluate.motion_transfer``)
   the carphone man transplanted onto his own frame 0 then moves about twice as much as he did and scores below a
   still picture. Fading the head's displacement out over the background instead folds the picture over where the
   head moves far (his lips move up to 21 px from frame 0 at 128x128), or, with a fade wide enough not to, drags
   much of the background along.

Frame t of the portrait then shows what the driver's frame t shows, up to what an affine map and a jaw cannot
say (blinks, the lips' shape, the parallax of a turn). An item of
:class:`~deepfake_lab.data.animation_data.TransplantPairs` is the relative task with that ground truth: the
portrait's frame r as the source, the driver's frames t and r as the driving and reference frames, and the
portrait's frame t as the target.
"""
from __future__ import annotations

import numpy as np

from . import DataError
from .face_motion import LIPS_BOX, face_box, optical_flow

__all__ = ["UPPER_FACE", "JAW_DROP", "SILENT", "HEAD", "head_affines", "mouth_openness", "head_alpha",
           "head_background",
           "transplant_motion"]

#: the part of the driver's face whose flow gives the head's affine motion: (u from, u to, v from, v to) in face
#: widths from the lips (u across, v down): the eyes, the nose and the cheeks, above the mouth
UPPER_FACE = (-0.5, 0.5, -0.75, -0.05)
#: the portrait's jaw drop where the driver's mouth is at its most open, in face widths
#: (:func:`~deepfake_lab.data.pseudo_video.jaw_drop` folds the face over beyond 0.1)
JAW_DROP = 0.09
#: the least range of the lips' box's dark share that :func:`mouth_openness` reads as a mouth opening fully
SILENT = 0.05
#: the part of the portrait that moves with the head: an ellipse centred ``HEAD["above"]`` face widths above the
#: lips, with half-axes ``across`` and ``down`` (face widths), its edge fading out from r = 1 to r = ``fade`` in
#: the ellipse's radius (the forehead and the hair inside, the background and the shoulders outside). Over 30-frame
#: windows of frames 0-89, the carphone man transplanted onto his own frame 0 reproduces 0.381 of his motion by
#: the flow measure (moving the whole crop: -0.18; half-axes 0.6 x 0.95: 0.12; a fade to r = 1.5: 0.24)
HEAD = {"across": 0.5, "down": 0.85, "above": 0.4, "fade": 1.3}
#: how far around (pixels) :func:`cv2.inpaint` looks to fill the background behind the head
FILL_RADIUS = 5


def head_affines(frames: np.ndarray, mouth: tuple[float, float, float]) -> np.ndarray:
    """(T, S, S, 3) uint8 face crops -> (T, 2, 3): the affine map from frame 0's pixels to each frame's, fitted to
    the optical flow of the upper face (``UPPER_FACE``, placed from ``mouth`` = the lips' x, y and the face width
    as fractions of the frame). Frame 0's map is the identity.

    Each map is the last one carried on by the flow from frame t-1 to t at the points it gives, and fitted again:
    its small errors add up over a clip (drift), where the flow straight from frame 0 would lose a head that has
    moved far."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 2:
        raise DataError(f"driver frames {frames.shape} of {frames.dtype}: need (T >= 2, S, S, 3) uint8 RGB")
    rows, cols = face_box(frames.shape[1:3], mouth, UPPER_FACE)
    ys, xs = np.mgrid[rows, cols].astype(np.float64)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=1)      # (N, 3): pixels of frame 0
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    affines = np.zeros((len(frames), 2, 3))
    affines[0] = np.eye(2, 3)
    for t in range(1, len(frames)):
        # tracked from frame to frame (the flow from frame 0 loses a head that has moved far): where frame 0's
        # points are in frame t-1, plus the flow from t-1 to t there
        there = (points @ affines[t - 1].T).astype(np.float32)                 # (N, 2)
        flow = optical_flow(grey[t - 1], grey[t])
        step = np.stack([cv2.remap(flow[..., k], there[:, :1], there[:, 1:], cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)[:, 0] for k in range(2)], axis=1)
        fit, *_ = np.linalg.lstsq(points, there + step, rcond=None)            # (3, 2): [x y 1] @ fit
        affines[t] = fit.T
    return affines


def mouth_openness(frames: np.ndarray, mouth: tuple[float, float, float], affines: np.ndarray) -> np.ndarray:
    """(T,) in [0, 1]: how far open the mouth of each frame is, from the dark inside an open mouth shows.

    Each frame is moved back onto frame 0 by its head affine (:func:`head_affines`); in the lips' box
    (``face_motion.LIPS_BOX``, 0.3 face widths wide, from 0.06 above the lips to 0.12 below) the share of pixels darker
    than half the upper face's median grey is counted, and rescaled so that its 30th percentile over the clip reads 0
    and its 97th 1 (clipped): a talking mouth is shut or nearly so most of the time, and the lips' line is dark
    too. The range between the two percentiles is taken as at least ``SILENT`` (0.05 of the box; the carphone
    man's frames 0-89 have 0.196), so that a silent driver's flicker does not read as speech."""
    import cv2

    frames, affines = np.asarray(frames), np.asarray(affines)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or affines.shape != (len(frames), 2, 3):
        raise DataError(f"frames {frames.shape} ({frames.dtype}) and affines {affines.shape}: need (T, H, W, 3) uint8 "
                        "RGB frames and one 2x3 map each, (T, 2, 3), from head_affines")
    h, w = frames.shape[1:3]
    lips, upper = face_box((h, w), mouth, LIPS_BOX), face_box((h, w), mouth, UPPER_FACE)
    dark = np.zeros(len(frames))
    for t, (frame, a) in enumerate(zip(frames, affines)):
        back = cv2.warpAffine(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), a, (w, h),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        dark[t] = (back[lips] < 0.5 * np.median(back[upper])).mean()
    lo, hi = np.percentile(dark, [30, 97])
    return np.clip((dark - lo) / max(hi - lo, SILENT), 0.0, 1.0)


def transplant_motion(still: np.ndarray, still_mouth: tuple[float, float, float], driver: np.ndarray,
                      driver_mouth: tuple[float, float, float]) -> np.ndarray:
    """A (S, S, 3) uint8 portrait moved as the (T, S, S, 3) ``driver`` clip moves: (T, S, S, 3) uint8, frame t
    the portrait in the driver's pose of frame t relative to frame 0 (see the module text). ``still_mouth`` and
    ``driver_mouth``: the lips' x, y and the face width, fractions of the frame (the portrait's before any
    motion; the driver's in frame 0)."""
    import cv2

    from .pseudo_video import darken_mouth, moved_jaw

    still, driver = np.asarray(still), np.asarray(driver)
    if still.ndim != 3 or still.shape[2] != 3 or still.dtype != np.uint8 or still.shape[0] != still.shape[1]:
        raise DataError(f"portrait still: array of shape {still.shape} ({still.dtype}); need a square (S, S, 3) uint8 "
                        "RGB crop (crop it first: data.portraits.portrait_head)")
    if driver.shape[1:] != still.shape:
        raise DataError(f"driver frames {driver.shape} and portrait {still.shape}: need frames of the portrait's "
                        "size (T, S, S, 3)")
    for name, m in (("still_mouth", still_mouth), ("driver_mouth", driver_mouth)):
        if len(m) != 3 or not all(0 < v <= 1 for v in m):
            raise DataError(f"{name}={m}: give (x, y, face width) as fractions of the frame, each in (0, 1]")
    size = still.shape[0]
    affines = head_affines(driver, driver_mouth)
    opening = JAW_DROP * mouth_openness(driver, driver_mouth, affines)       # face widths
    scale = still_mouth[2] / driver_mouth[2]
    his = np.array([driver_mouth[0], driver_mouth[1]]) * size
    hers = np.array([still_mouth[0], still_mouth[1]]) * size
    to_her = np.array([[scale, 0, hers[0] - scale * his[0]], [0, scale, hers[1] - scale * his[1]], [0, 0, 1]])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    background = head_background(still, still_mouth)
    frames = np.empty((len(driver), size, size, 3), np.uint8)
    for t, a in enumerate(affines):
        m = (to_her @ np.vstack([a, [0, 0, 1]]) @ np.linalg.inv(to_her))[:2]   # her pixels at rest -> frame t
        dx, dy, darkness = moved_jaw(xs, ys, m, still_mouth, size, opening[t] * still_mouth[2] * size)
        # backward maps, the jaw's then the head's: which of her pixels at rest each frame pixel shows
        inverse = cv2.invertAffineTransform(m)
        px, py = xs + dx, ys + dy
        map_x = (inverse[0, 0] * px + inverse[0, 1] * py + inverse[0, 2]).astype(np.float32)
        map_y = (inverse[1, 0] * px + inverse[1, 1] * py + inverse[1, 2]).astype(np.float32)
        head = cv2.remap(still, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = head_alpha(map_x, map_y, still_mouth, size)                    # the head's edge, moved with it
        frame = alpha[..., None] * head + (1 - alpha[..., None]) * background
        frames[t] = np.clip(darken_mouth(frame, darkness), 0, 255).round().astype(np.uint8)
    return frames


def head_alpha(xs: np.ndarray, ys: np.ndarray, mouth: tuple[float, float, float], size: int) -> np.ndarray:
    """How much of the head shows at the portrait's pixels (``xs``, ``ys``) at rest, (H, W) float32 in [0, 1]: 1
    inside the ellipse :data:`HEAD` about the lips at ``mouth`` (fractions of the ``size`` crop), falling by a
    cubic step to 0 at ``HEAD["fade"]`` times the ellipse."""
    from .pseudo_video import smoothstep

    return (1.0 - smoothstep(_head_radius(xs, ys, mouth, size), 1.0, HEAD["fade"])[0]).astype(np.float32)


def head_background(still: np.ndarray, mouth: tuple[float, float, float]) -> np.ndarray:
    """What lies behind the head, (S, S, 3) float32: the portrait with the inside of the ellipse :data:`HEAD`
    filled in from around it (Telea's inpainting, :func:`cv2.inpaint`), unchanged outside, so that the head laid
    over it at rest (:func:`head_alpha`) gives the portrait back. The price: the ellipse's soft edge stays in the
    background too, and a head moved far leaves a faint copy of its rim behind."""
    import cv2

    size = still.shape[0]
    ys, xs = np.mgrid[0:size, 0:size]
    hole = (_head_radius(xs, ys, mouth, size) < 1.0).astype(np.uint8)
    return cv2.inpaint(still, hole, FILL_RADIUS, cv2.INPAINT_TELEA).astype(np.float32)


def _head_radius(xs: np.ndarray, ys: np.ndarray, mouth: tuple[float, float, float], size: int) -> np.ndarray:
    """The radius of pixels (``xs``, ``ys``) in the ellipse :data:`HEAD` about the lips at ``mouth``: 1 on it."""
    width = mouth[2] * size
    cx, cy = mouth[0] * size, mouth[1] * size - HEAD["above"] * width
    return np.hypot((xs - cx) / (HEAD["across"] * width), (ys - cy) / (HEAD["down"] * width))
