"""Animating a still image with another face's motion: keypoint transfer (§3.5 of the paper).

At test time the source S is one photo and the driving frames :math:`D_1 \\dots D_T` come from a video
of *another* person. Using the driver's keypoints directly (**absolute** transfer) would also copy the
driver's face shape: the Grace Hopper of the result gets the driver's jaw and eye distance. The paper
instead transfers *relative* motion, the change from the first driving frame :math:`D_1`:

.. math::

    p^{S_t}_k = p^{S}_k + \\alpha\\,(p^{D_t}_k - p^{D_1}_k),
    \\qquad
    J^{S_t}_k = J^{D_t}_k \\left(J^{D_1}_k\\right)^{-1} J^{S}_k

with the *adapt-scale* factor :math:`\\alpha = \\sqrt{\\mathrm{area}(\\mathrm{hull}(p^S)) / \\mathrm{area}(\\mathrm{hull}(p^{D_1}))}`
(1 when off): a small face in the driver moves the source face proportionally. Relative transfer
assumes the source and :math:`D_1` are in a similar pose; ``find_best_frame`` picks as reference the
driving frame whose normalised keypoints are closest to the source's (the official demo does this with
facial landmarks; here the model's own keypoints are used, so nothing else must be installed).

Inputs are cropped to the face (a Haar cascade, :mod:`deepfake_lab.data.faces`) unless ``crop=False``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..data import DataError
from .keypoints import relative_keypoints
from .model import FirstOrderModel

__all__ = ["convex_hull_area", "adapt_scale_factor", "normalize_kp", "normalized_keypoints", "best_frame_index",
           "crop_source", "crop_driving", "to_model_input", "default_batch_size", "detect_keypoints", "animate", "motion_details",
           "keypoints_to_pixels", "draw_keypoints", "flow_to_rgb", "mask_to_rgb", "side_by_side", "resize_square",
           "ADAPT_SCALE_DEFAULT", "BEST_FRAME_DEFAULT"]

#: whether ``deepfake-lab animate``, the app's Animation and Live tabs and
#: :func:`~deepfake_lab.animation.evaluate.evaluate_transfer` rescale relative motion by the keypoint spreads: off,
#: since the demo model's keypoints spread differently for different people more than for faces of different
#: size (``assets/weights/animation-demo.md`` measures it). :func:`animate` keeps the paper's demo default (on),
#: so official checkpoints reproduce the official demo.
ADAPT_SCALE_DEFAULT = False

#: whether ``deepfake-lab animate``, the app's Animation tab and
#: :func:`~deepfake_lab.animation.evaluate.evaluate_transfer` take relative motion from the driving frame whose pose
#: is closest to the source's (``find_best_frame``) instead of the first: on, since a clip that starts with the
#: driver's mouth wide open otherwise takes that open mouth as the rest pose, and a portrait's shut mouth then moves
#: against the driver's (the demo model's card measures both). :func:`animate` keeps the paper's demo default
#: (off). The Live tab cannot look ahead: its reference is the first frame after *Reset pose*.
BEST_FRAME_DEFAULT = True

#: one colour per keypoint (and the background first) for pictures
PALETTE = np.array([[128, 128, 128], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                    [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0]], dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Geometry of keypoint sets
# --------------------------------------------------------------------------------------------
def convex_hull_area(points) -> float:
    """Area of the convex hull of 2-D points (N, 2): Andrew's monotone chain, then the shoelace formula."""
    pts = sorted(map(tuple, np.asarray(points, dtype=np.float64).reshape(-1, 2)))
    if len(pts) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = np.array(lower[:-1] + upper[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def adapt_scale_factor(kp_source: torch.Tensor, kp_driving_initial: torch.Tensor) -> float:
    """:math:`\\alpha = \\sqrt{\\mathrm{hull\\ area}(p^S) / \\mathrm{hull\\ area}(p^{D_1})}` for (K, 2) keypoints."""
    driving = convex_hull_area(kp_driving_initial.detach().cpu().numpy())
    if driving <= 0:
        return 1.0
    return float(np.sqrt(convex_hull_area(kp_source.detach().cpu().numpy()) / driving))


def normalize_kp(kp_source: dict[str, torch.Tensor], kp_driving: dict[str, torch.Tensor],
                 kp_driving_initial: dict[str, torch.Tensor], adapt_movement_scale: bool = False,
                 use_relative_movement: bool = False, use_relative_jacobian: bool = False) -> dict[str, torch.Tensor]:
    """The keypoints to animate the source with (the official ``normalize_kp``; see the module docstring).

    Without ``use_relative_movement`` this is absolute transfer: the driving keypoints unchanged.
    Keypoint dicts hold ``value`` (B, K, 2) and optionally ``jacobian`` (B, K, 2, 2); the adapt-scale
    factor is computed from the first item of the batch.
    """
    scale = adapt_scale_factor(kp_source["value"][0], kp_driving_initial["value"][0]) if adapt_movement_scale else 1.0
    if use_relative_movement:
        return relative_keypoints(kp_source, kp_driving, kp_driving_initial, scale, jacobians=use_relative_jacobian)
    return {k: v for k, v in kp_driving.items() if k in ("value", "jacobian")}


def normalized_keypoints(kp: torch.Tensor) -> np.ndarray:
    """(..., K, 2) keypoints centred on their mean and divided by the square root of their hull area."""
    arr = kp.detach().cpu().double().numpy().reshape(-1, *kp.shape[-2:])
    out = []
    for pts in arr:
        pts = pts - pts.mean(axis=0)
        out.append(pts / max(np.sqrt(convex_hull_area(pts)), 1e-6))
    return np.stack(out).reshape(kp.shape)


def best_frame_index(kp_source: torch.Tensor, kp_driving: torch.Tensor) -> int:
    """Index of the driving frame whose normalised keypoints (T, K, 2) are closest to the source's (K, 2)."""
    src = normalized_keypoints(kp_source)
    drv = normalized_keypoints(kp_driving)
    return int(np.argmin(((drv - src[None]) ** 2).sum(axis=(1, 2))))


# --------------------------------------------------------------------------------------------
# Inputs: face crops and tensors
# --------------------------------------------------------------------------------------------
def _as_uint8_rgb(image, what: str) -> np.ndarray:
    from PIL import Image

    if isinstance(image, Image.Image):
        image = image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise DataError(f"{what}: array of shape {arr.shape}; need an (H, W, 3) RGB image")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def crop_source(image, scale: float = 2.0, what: str = "source") -> np.ndarray:
    """The head of a portrait (:func:`deepfake_lab.data.faces.face_crop`), with this command's way out."""
    from ..data.faces import face_crop

    return face_crop(_as_uint8_rgb(image, what), None, scale, what=what,
                     advice="give a frontal portrait, or turn face cropping off (--no-crop) to use the whole image")


def crop_driving(frames, scale: float = 2.0, what: str = "driving video", search=None) -> np.ndarray:
    """One square head box for the whole driving clip (:func:`deepfake_lab.data.faces.track_box`, detecting
    on about 30 frames spread over the clip), cut from every frame. ``search``: more frames of the same clip
    to find the face on (a short excerpt may start before the face is in view)."""
    from ..data.faces import crop_box, track_box

    frames = np.asarray(frames)
    where = np.asarray(search) if search is not None and len(search) > len(frames) else frames
    try:
        box = track_box(where, scale=scale, every=max(1, len(where) // 30))
    except DataError as err:
        raise DataError(f"{what}: no face found in its frames (Haar cascade); give a video of a frontal face, "
                        "or turn face cropping off (--no-crop)") from err
    return np.stack([crop_box(f, box) for f in frames])


def to_model_input(frames, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(T, H, W, 3) or (H, W, 3) uint8 -> (T, 3, size, size) float in [0, 1] (area/cubic resize)."""
    from ..data.animation_data import resize_frames

    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    arr = resize_frames(arr, size)
    return torch.from_numpy(np.array(arr)).to(device).permute(0, 3, 1, 2).float().div(255)  # a copy: inputs may be read-only


def default_batch_size(image_size: int) -> int:
    """Frames per forward pass at inference: 8 at 64x64, 2 at 128x128, 1 at 256x256 and above.

    Batching small frames amortises per-call overhead (~1.5x faster at 64x64 on a CPU); at 256x256 a
    batch no longer fits the caches and runs slower than one frame at a time
    (``benchmarks/bench_animation.py`` measures both).
    """
    return max(1, (8 * 64 * 64) // (image_size * image_size))


@torch.no_grad()
def detect_keypoints(model: FirstOrderModel, frames: torch.Tensor, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Keypoints of (T, 3, H, W) frames in [0, 1], in batches: ``value`` (T, K, 2), ``jacobian`` (T, K, 2, 2)."""
    parts: list[dict[str, torch.Tensor]] = []
    with model.precision.autocast():
        for i in range(0, frames.shape[0], batch_size):
            kp = model.kp_detector(frames[i:i + batch_size])
            parts.append({k: v.float() for k, v in kp.items() if k in ("value", "jacobian")})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


# --------------------------------------------------------------------------------------------
# Animation
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def animate(model: FirstOrderModel, source_image, driving_frames, relative: bool = True, adapt_scale: bool = True,
            find_best_frame: bool = False, progress: Callable[[int, int], None] | None = None, crop: bool = True,
            batch_size: int | None = None, return_details: bool = False, search_frames=None):
    """Animate ``source_image`` with the motion of ``driving_frames``; returns a list of (S, S, 3) uint8 frames.

    ``source_image``: an (H, W, 3) uint8 array or PIL image; ``driving_frames``: (T, H, W, 3) uint8 (or a
    list of frames). Both are cropped to the face (``crop``) and resized to the model's ``image_size`` S.
    ``relative``/``adapt_scale``/``find_best_frame``: see the module docstring. ``progress(done, total)``
    is called after every batch of ``batch_size`` frames (default: :func:`default_batch_size`). With
    ``return_details`` also returns a dict with the cropped inputs
    (``source``, ``driving``: uint8 at size S), the keypoints and the reference frame index.
    ``search_frames``: more frames of the driving clip to find its face on, when ``driving_frames`` is a short
    excerpt (see :func:`crop_driving`).
    """
    model.eval()
    size = model.config.image_size
    batch_size = batch_size or default_batch_size(size)
    source = _as_uint8_rgb(source_image, "source")
    if len(driving_frames) == 0:
        raise DataError("driving video: no frames; give a video with at least one frame")
    if isinstance(driving_frames, np.ndarray) and driving_frames.ndim == 4 and driving_frames.dtype == np.uint8:
        driving = driving_frames
    else:
        driving = np.stack([_as_uint8_rgb(f, f"driving frame {i}") for i, f in enumerate(driving_frames)])
    if crop:
        source, driving = crop_source(source), crop_driving(driving, search=search_frames)
    device = model.device
    src = to_model_input(source, size, device)  # (1, 3, S, S)
    drv = to_model_input(driving, size, device)  # (T, 3, S, S)
    kp_source = detect_keypoints(model, src)
    kp_driving = detect_keypoints(model, drv, batch_size)
    reference = best_frame_index(kp_source["value"][0], kp_driving["value"]) if find_best_frame else 0
    kp_initial = {k: v[reference:reference + 1] for k, v in kp_driving.items()}

    frames: list[np.ndarray] = []
    total = drv.shape[0]
    with model.precision.autocast():
        for i in range(0, total, batch_size):
            n = min(batch_size, total - i)
            kp_d = {k: v[i:i + n] for k, v in kp_driving.items()}
            kp_s = {k: v.expand(n, *v.shape[1:]) for k, v in kp_source.items()}
            kp_init = {k: v.expand(n, *v.shape[1:]) for k, v in kp_initial.items()}
            kp_norm = normalize_kp(kp_s, kp_d, kp_init, adapt_movement_scale=adapt_scale,
                                   use_relative_movement=relative, use_relative_jacobian=relative)
            out = model.generator(src.expand(n, -1, -1, -1), kp_driving=kp_norm, kp_source=kp_s)
            pred = out["prediction"].float().clamp(0, 1).mul(255).round().to(torch.uint8)
            frames.extend(pred.permute(0, 2, 3, 1).cpu().numpy())
            if progress is not None:
                progress(i + n, total)
    if return_details:
        details = {"source": (src[0].permute(1, 2, 0) * 255).round().byte().cpu().numpy(),
                   "driving": (drv.permute(0, 2, 3, 1) * 255).round().byte().cpu().numpy(),
                   "kp_source": kp_source, "kp_driving": kp_driving, "reference": reference}
        return frames, details
    return frames


@torch.no_grad()
def motion_details(model: FirstOrderModel, source, driving, crop: bool = False) -> dict[str, np.ndarray]:
    """Everything between two frames, for pictures: keypoints, masks, flow, occlusion, warped source, result.

    ``source``, ``driving``: (H, W, 3) uint8 images (cropped to faces if ``crop``). Returns numpy arrays:
    ``source``/``driving``/``deformed``/``prediction`` (S, S, 3) uint8; ``kp_source``/``kp_driving`` (K, 2)
    in pixels of the S x S frame; ``jacobian_source``/``jacobian_driving`` (K, 2, 2); ``mask`` (K+1, h, w)
    (background first); ``occlusion`` (h, w) in [0, 1]; ``flow`` (h, w, 2): the sampling grid in [-1, 1];
    ``sparse_deformed`` (K+1, h, w, 3) uint8: the source moved by each keypoint's motion alone.

    Always fp32, whatever the model's precision policy: these are the pieces a lesson looks at and checks
    against the paper's formulas (to 1e-5), not a fast path.
    """
    model.eval()
    size = model.config.image_size
    source, driving = _as_uint8_rgb(source, "source"), _as_uint8_rgb(driving, "driving frame")
    if crop:
        source, driving = crop_source(source), crop_driving(driving[None])[0]
    src = to_model_input(source, size, model.device)
    drv = to_model_input(driving, size, model.device)
    out = model(src, drv)

    def img(t: torch.Tensor) -> np.ndarray:
        return t.float().clamp(0, 1).mul(255).round().byte().movedim(-3, -1).cpu().numpy()

    result = {
        "source": img(src[0]), "driving": img(drv[0]), "prediction": img(out["prediction"][0]),
        "deformed": img(out["deformed"][0]),
        "kp_source": keypoints_to_pixels(out["kp_source"]["value"][0], size),
        "kp_driving": keypoints_to_pixels(out["kp_driving"]["value"][0], size),
        "mask": out["mask"][0].float().cpu().numpy(),
        "flow": out["deformation"][0].float().cpu().numpy(),
        "sparse_deformed": img(out["sparse_deformed"][0]),
    }
    if "jacobian" in out["kp_source"]:
        result["jacobian_source"] = out["kp_source"]["jacobian"][0].float().cpu().numpy()
        result["jacobian_driving"] = out["kp_driving"]["jacobian"][0].float().cpu().numpy()
    if "occlusion_map" in out:
        result["occlusion"] = out["occlusion_map"][0, 0].float().cpu().numpy()
    return result


# --------------------------------------------------------------------------------------------
# Pictures of keypoints, masks and flow
# --------------------------------------------------------------------------------------------
def keypoints_to_pixels(kp: torch.Tensor, size: int) -> np.ndarray:
    """Keypoints in [-1, 1] (..., 2) -> pixel coordinates (x, y) of a size x size frame (:math:`(p + 1)(S - 1)/2`)."""
    return ((kp.detach().float().cpu().numpy() + 1) / 2) * (size - 1)


def draw_keypoints(image, keypoints_px, radius: int | None = None, scale: int = 1):
    """A PIL image of ``image`` (enlarged ``scale`` times) with one coloured dot per keypoint (K, 2 pixels)."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(_as_uint8_rgb(image, "image"))
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    r = radius or max(2, im.width // 64)
    for k, (x, y) in enumerate(np.asarray(keypoints_px)):
        cx, cy = (x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(c) for c in PALETTE[1 + k % (len(PALETTE) - 1)]),
                     outline=(0, 0, 0))
    return im


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """(K+1, h, w) soft masks -> (h, w, 3) uint8: each pixel coloured by its motions' colours, mixed by weight."""
    colors = PALETTE[np.arange(mask.shape[0]) % len(PALETTE)].astype(np.float32)  # background grey first
    return np.clip(np.einsum("khw,kc->hwc", mask, colors), 0, 255).astype(np.uint8)


def flow_to_rgb(flow: np.ndarray) -> np.ndarray:
    """A sampling grid (h, w, 2) in [-1, 1] -> (h, w, 3) uint8: the displacement from the identity, hue = direction."""
    import colorsys

    h, w = flow.shape[:2]
    ys, xs = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    dx, dy = flow[..., 0] - xs, flow[..., 1] - ys
    mag = np.hypot(dx, dy)
    ang = (np.arctan2(dy, dx) + np.pi) / (2 * np.pi)
    val = np.clip(mag / max(mag.max(), 1e-6), 0, 1)
    rgb = np.array([colorsys.hsv_to_rgb(a, 1.0, v) for a, v in zip(ang.ravel(), val.ravel())]).reshape(h, w, 3)
    return (rgb * 255).round().astype(np.uint8)


def side_by_side(sources: Sequence[np.ndarray] | np.ndarray, driving: np.ndarray, result: np.ndarray) -> np.ndarray:
    """One frame ``source | driving | result`` (all (S, S, 3) uint8) -> (S, 3S, 3)."""
    return np.concatenate([np.asarray(sources), np.asarray(driving), np.asarray(result)], axis=1)


def resize_square(frame: np.ndarray, size: int) -> np.ndarray:
    """Resize one (S, S, 3) uint8 frame to size x size (bicubic up, area down)."""
    from ..data.animation_data import resize_frames

    return resize_frames(frame[None], size)[0]
