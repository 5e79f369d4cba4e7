"""How well does the model move a face? Self-reconstruction on held-out frames (§4.1 of the paper).

The paper's protocol: for every test video, the **first frame is the source** and **every frame is the
driver**; the model rebuilds each frame from the first one plus the keypoints of both (absolute
keypoints: source and driver are the same person, so no transfer is needed). Two scores:

* **L1**: mean absolute difference between the reconstruction and the real frame, pixel values in
  [0, 1] (lower is better);
* **AKD** (average keypoint distance): mean distance in pixels between keypoints detected in the
  reconstruction and in the real frame. The paper uses an external facial-landmark detector; offline
  we use the *evaluated model's own* keypoint detector, which is the same for the model and the
  baseline, so the two are comparable with each other (not with the paper's numbers).

The **no-motion baseline** "reconstructs" every frame as the unchanged first frame. A model that has
learnt nothing about motion cannot beat it on L1; the margin is what the motion model is worth.

**Motion transfer to another person** (:func:`motion_transfer`, :func:`evaluate_transfer`) has no ground truth:
nobody filmed Grace Hopper making the driver's movements. What can be measured is whether the animated portrait
*moves as the driver moves*. Both videos are face crops of the same framing, so their motion fields, taken
relative to their first frames, should agree. A model-independent measure of motion is dense optical flow
(Farnebäck 2003, OpenCV's ``calcOpticalFlowFarneback``): for every frame t the flow from frame 0 to frame t,
averaged over the cells of a ``grid`` x ``grid`` raster and divided by the frame side, gives a field
:math:`F_t` (grid, grid, 2). The flow is always taken at one analysis size, 64x64 (both videos are resized to it):
its window is a fixed 15 pixels, so on larger frames it follows finer detail and the same motion scores lower
(the previous 64x64 demo's own output, enlarged to 128x128, scores 0.17 instead of 0.32 on Grace Hopper). At
one analysis size, models of different frame sizes are compared on the same motion. The score is the share of the driver's
motion that the output reproduces:

.. math:: \text{transfer} = 1 - \frac{\sum_t \lVert F^{out}_t - F^{drv}_t \rVert_1}{\sum_t \lVert F^{drv}_t \rVert_1}

1 when the output moves exactly like the driver, **0 for the no-motion baseline** (a still portrait), negative
when it moves otherwise. Beside it, identity: the output's mean L1 to the source portrait and to the driver's
frames (an output that copied the driver's face would be closer to the driver).

**Mouth opening** (:func:`mouth_signals`, :func:`mouth_transfer`) is a small part of the face, so the whole-face
measure hardly sees it. The same flow, taken at the frames' own size, is averaged over two boxes of each face,
placed from where its lips are (``mouth`` = x, y, face width, fractions of the frame; for example
:func:`~deepfake_lab.data.pseudo_video.mouth_from_box` of its first frame): the chin, 0.1-0.3 face widths below
the lips, and the nose, 0.15-0.35 above them, both 0.4 face widths wide. The jaw opening of frame t is how far
the chin has moved down relative to the nose since frame 0, in face widths, :math:`j_t`; a head that only turns,
tilts or shifts moves both boxes alike and scores about 0. As above, the share of the driver's jaw motion that
the output reproduces is

.. math:: \text{mouth transfer} = 1 - \frac{\sum_t | j^{out}_t - j^{drv}_t |}{\sum_t | j^{drv}_t |}

(0 for a still portrait, 1 for the driver itself), with the correlation of the two openings over the clip
beside it (does the mouth open *when* the driver's does; 0 when the output's mouth does not move at all).

The second signal is what an opening mouth shows: its dark inside. The lips' box (0.3 face widths wide, from
0.06 above the lips to 0.12 below) is read in frame t where the nose's flow says it has gone, and its darkening
since frame 0 (grey levels / 255, frame 0's minus frame t's) gets the same share and correlation. The figure
the model card and the tutorial call **mouth r** is this correlation: it follows the opening of a speaking
pseudo-video, where the opening is known, closer than the jaw's flow does (r 0.93-0.98 against 0.49-0.97 there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.face_motion import CHIN_BOX, LIPS_BOX, NOSE_BOX, MouthNotFound, face_box, find_mouth, optical_flow
from .model import FirstOrderModel
from .transfer import ADAPT_SCALE_DEFAULT, BEST_FRAME_DEFAULT, default_batch_size, to_model_input

__all__ = ["ReconstructionScores", "reconstruction_scores", "evaluate_carphone", "FLOW_SIZE", "motion_field",
           "motion_transfer", "TransferScores", "evaluate_transfer", "mouth_signals", "mouth_transfer",
           "find_mouth", "MouthStill", "MouthNotFound", "transfer_to_himself", "optical_flow"]


@dataclass
class ReconstructionScores:
    """L1 (pixel values in [0, 1]) and AKD (pixels) of the model and of the no-motion baseline."""

    l1: float
    akd: float
    baseline_l1: float
    baseline_akd: float
    frames: int
    size: int

    @property
    def l1_margin(self) -> float:
        """How much lower the model's L1 is than the baseline's, relative: 1 - l1 / baseline_l1."""
        return 1.0 - self.l1 / self.baseline_l1

    def as_dict(self) -> dict[str, float]:
        return {"l1": self.l1, "akd": self.akd, "baseline_l1": self.baseline_l1, "baseline_akd": self.baseline_akd,
                "l1_margin": self.l1_margin, "frames": self.frames, "size": self.size}

    def table(self) -> str:
        return ("                 L1 (0-1)   AKD (px)\n"
                f"model            {self.l1:8.4f}   {self.akd:8.3f}\n"
                f"no-motion        {self.baseline_l1:8.4f}   {self.baseline_akd:8.3f}\n"
                f"L1 margin: model is {100 * self.l1_margin:.1f}% below the no-motion baseline "
                f"({self.frames} frames at {self.size}x{self.size})")


@torch.no_grad()
def reconstruction_scores(model: FirstOrderModel, frames, batch_size: int | None = None) -> ReconstructionScores:
    """The paper's self-reconstruction scores on one video ((T, H, W, 3) uint8, already cropped).

    Frame 0 is the source, every frame (0 included, as in the official ``reconstruction.py``) a driver.
    L1 and AKD are :func:`deepfake_lab.metrics.reconstruction_l1` and :func:`~deepfake_lab.metrics.keypoint_distance`.
    """
    from ..metrics import keypoint_distance, reconstruction_l1

    model.eval()
    size = model.config.image_size
    batch_size = batch_size or default_batch_size(size)
    video = to_model_input(frames, size, model.device)  # (T, 3, S, S) in [0, 1]
    source = video[:1]
    preds, kp_real, kp_pred = [], [], []
    with model.precision.autocast():
        kp_source = {k: v for k, v in model.kp_detector(source).items() if k in ("value", "jacobian")}
        for i in range(0, video.shape[0], batch_size):
            driving = video[i:i + batch_size]
            n = driving.shape[0]
            kp_s = {k: v.expand(n, *v.shape[1:]) for k, v in kp_source.items()}
            kp_d = model.kp_detector(driving)
            pred = model.generator(source.expand(n, -1, -1, -1), kp_driving=kp_d, kp_source=kp_s)["prediction"]
            preds.append(pred.float().clamp(0, 1))
            kp_real.append(kp_d["value"].float())
            kp_pred.append(model.kp_detector(preds[-1])["value"].float())
    pred, real = torch.cat(preds), torch.cat(kp_real)
    still = source.expand_as(video)  # the no-motion baseline: the source, repeated
    return ReconstructionScores(
        l1=reconstruction_l1(pred, video, data_range=1.0),
        akd=keypoint_distance(torch.cat(kp_pred), real, image_size=(size, size)),
        baseline_l1=reconstruction_l1(still, video, data_range=1.0),
        baseline_akd=keypoint_distance(kp_source["value"].float().expand_as(real), real, image_size=(size, size)),
        frames=int(video.shape[0]), size=size)


def evaluate_carphone(model: FirstOrderModel) -> ReconstructionScores:
    """Scores on the held-out carphone frames 90-119 (never trained on), head-cropped at the model's size."""
    from ..data.animation_data import carphone_split

    _, test = carphone_split(model.config.image_size)
    return reconstruction_scores(model, np.asarray(test))


# --------------------------------------------------------------------------------------------
# Motion transfer to another person (no ground truth)
# --------------------------------------------------------------------------------------------
#: mean flow (share of the frame side) below which a driving clip counts as still: the flow between two copies of
#: one frame is not exactly 0, but ~1e-5
STILL = 1e-3


#: the side both videos are resized to before the flow is taken (see the module text)
FLOW_SIZE = 64


def motion_field(frames, grid: int = 8, size: int = FLOW_SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, grid, grid, 2): optical flow from frame 0 to each frame, cell means / frame side,
    taken on the frames resized to ``size`` x ``size``."""
    import cv2

    from ..data.animation_data import resize_frames

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 2:
        raise ValueError(f"frames {frames.shape} of {frames.dtype}: need (T >= 2, H, W, 3) uint8 RGB")
    frames = resize_frames(frames, size)
    t, h, w, _ = frames.shape
    if h % grid or w % grid:
        raise ValueError(f"frames {h}x{w}: the side must be a multiple of grid={grid}")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    fields = np.zeros((t, grid, grid, 2))
    for i in range(1, t):
        flow = optical_flow(grey[0], grey[i])
        fields[i] = flow.reshape(grid, h // grid, grid, w // grid, 2).mean(axis=(1, 3)) / max(h, w)
    return fields


def motion_transfer(driving, generated, grid: int = 8) -> float:
    """The share of the driver's motion that ``generated`` reproduces (see the module text): 1 - E_out / E_still."""
    drv, out = motion_field(driving, grid), motion_field(generated, grid)
    if drv.shape != out.shape:
        raise ValueError(f"driving {np.asarray(driving).shape} and generated {np.asarray(generated).shape}: "
                         "need videos of the same length")
    if np.abs(drv[1:]).mean() < STILL:
        raise ValueError(f"driving video: no motion at all (mean flow under {STILL:g} of the frame side); the measure "
                         "needs a driver that moves")
    return float(1.0 - np.abs(out - drv).sum() / np.abs(drv).sum())


class MouthStill(ValueError):
    """The driving clip's mouth does not move: :func:`mouth_transfer` has nothing to compare with."""


def mouth_signals(frames, mouth: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) uint8 -> two (T,) signals of how far the mouth has opened since frame 0 (see the module text):
    the jaw opening (the chin's move down relative to the nose, face widths) and the darkening of the lips' box
    (grey levels / 255, frame 0's minus frame t's, after following the nose's move)."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) < 2:
        raise ValueError(f"frames {frames.shape} of {frames.dtype}: need (T >= 2, H, W, 3) uint8 RGB")
    h, w = frames.shape[1:3]
    width = mouth[2] * w
    chin, nose, lips = (face_box((h, w), mouth, b) for b in (CHIN_BOX, NOSE_BOX, LIPS_BOX))
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    opening, darkening = np.zeros(len(frames)), np.zeros(len(frames))
    ys, xs = np.mgrid[lips[0], lips[1]].astype(np.float32)
    lips_first = grey[0][lips].astype(np.float64).mean()
    for i in range(1, len(frames)):
        flow = optical_flow(grey[0], grey[i])                                  # (H, W, 2) px
        head = flow[nose].reshape(-1, 2).mean(axis=0)                          # the rigid part
        opening[i] = (flow[chin][..., 1].mean() - head[1]) / width
        moved = cv2.remap(grey[i].astype(np.float32), xs + head[0], ys + head[1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        darkening[i] = (lips_first - moved.mean()) / 255
    return opening, darkening


def _share_and_correlation(out: np.ndarray, drv: np.ndarray) -> tuple[float, float]:
    share = 1.0 - np.abs(out - drv).sum() / np.abs(drv).sum()
    corr = 0.0 if out[1:].std() < 1e-9 or drv[1:].std() < 1e-9 else float(np.corrcoef(out[1:], drv[1:])[0, 1])
    return float(share), corr


def mouth_transfer(driving, driving_mouth, generated, generated_mouth) -> dict[str, float]:
    """How the output's mouth follows the driver's: for the jaw opening and for the lips' darkening, the share of
    the driver's signal reproduced and the correlation of the two over the clip (see the module text)."""
    drv, out = mouth_signals(driving, driving_mouth), mouth_signals(generated, generated_mouth)
    if drv[0].shape != out[0].shape:
        raise ValueError(f"driving {np.asarray(driving).shape} and generated {np.asarray(generated).shape}: "
                         "need videos of the same length")
    if np.abs(drv[0][1:]).mean() < STILL:
        raise MouthStill(f"driving video: its mouth does not move (mean jaw opening under {STILL:g} face widths); "
                         "the measure needs a driver that talks")
    jaw_share, jaw_corr = _share_and_correlation(out[0], drv[0])
    dark_share, dark_corr = _share_and_correlation(out[1], drv[1])
    return {"jaw_share": jaw_share, "jaw_corr": jaw_corr, "dark_share": dark_share, "dark_corr": dark_corr}


@torch.no_grad()
def transfer_to_himself(model: FirstOrderModel, crops: np.ndarray, driving: np.ndarray,
                        source: int) -> tuple[float, dict[str, float] | None]:
    """For scale, identity no obstacle: the carphone man's frame ``source`` of ``crops`` (his face crops at the model's size)
    driven by ``driving`` as ``animate`` drives a portrait. (motion transfer, :func:`mouth_transfer` or None where
    the driver's mouth does not move); his lips are placed from his next frame in which a face is found."""
    from .transfer import animate

    himself = np.stack(animate(model, crops[source], driving, adapt_scale=ADAPT_SCALE_DEFAULT,
                               find_best_frame=BEST_FRAME_DEFAULT, crop=False))
    try:
        mouth = mouth_transfer(driving, find_mouth(driving), himself, find_mouth(crops[source:]))
    except MouthStill:
        mouth = None
    return motion_transfer(driving, himself), mouth


@dataclass
class TransferScores:
    """Cross-identity animation of one portrait by one driving clip: motion transfer and identity."""

    portrait: str
    transfer: float  # share of the driver's motion reproduced; the still portrait scores 0
    to_source_l1: float  # mean L1 (0-1) of the output frames to the source portrait
    to_driver_l1: float  # ... and to the driver's frames
    frames: int
    size: int
    mouth: dict[str, float] | None = None  # :func:`mouth_transfer`; None where the driver's mouth does not move

    @property
    def mouth_corr(self) -> float:
        """How the darkening of the output's lips follows the driver's (correlation; 0 when the output's mouth does
        not move, nan when the driver's does not: then there is nothing to follow)."""
        return self.mouth["dark_corr"] if self.mouth else float("nan")

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def line(self) -> str:
        return (f"{self.portrait:14s} motion transfer {self.transfer:6.3f} (still portrait 0)   L1 to the source "
                f"{self.to_source_l1:.4f}, to the driver {self.to_driver_l1:.4f}   mouth: opens with the driver's "
                f"r = {self.mouth_corr:.2f}")


@torch.no_grad()
def evaluate_transfer(model: FirstOrderModel, portraits: tuple[str, ...] | None = None,
                      driving: np.ndarray | None = None, find_best_frame: bool = BEST_FRAME_DEFAULT,
                      adapt_scale: bool = ADAPT_SCALE_DEFAULT, relative: bool = True,
                      driving_mouth: tuple[float, float, float] | None = None) -> list[TransferScores]:
    """Each offline portrait driven by the held-out carphone frames 90-119 (relative motion, as ``deepfake-lab
    animate`` and the app make it: from the driving frame closest to the portrait's pose, the motion not rescaled).

    ``driving``: other driving frames instead, (T, S, S, 3) uint8 face crops at the model's size S (for example
    another window of the clip: ``benchmarks/animation_transfer_windows.py``). ``find_best_frame`` False: motion
    relative to the first driving frame instead (``animate --no-find-best-frame``).
    ``adapt_scale``: the motion scaled by the ratio of the faces' keypoint spreads (the paper's demo,
    ``animate --adapt-scale``); ``relative`` False: absolute keypoints (``animate --absolute``).
    ``driving_mouth``: where the driver's lips are (:func:`mouth_signals`; default: :func:`find_mouth`); the
    portraits' are :data:`~deepfake_lab.data.animation_data.PORTRAIT_MOUTHS`.
    """
    from ..data.animation_data import PORTRAIT_MOUTHS, carphone_split
    from ..data.portraits import PORTRAITS, portrait_head
    from .transfer import animate

    size = model.config.image_size
    if driving is None:
        _, driving = carphone_split(size)
    if driving.ndim != 4 or driving.shape[1:] != (size, size, 3) or driving.dtype != np.uint8:
        raise ValueError(f"driving frames of shape {driving.shape} ({driving.dtype}); need (T, {size}, {size}, 3) "
                         "uint8 face crops at the model's size")
    try:
        driving_mouth = driving_mouth or find_mouth(driving)
    except MouthNotFound:  # no face found to place the driver's lips: no mouth scores, the rest stands
        driving_mouth = None
    scores = []
    for name in portraits or tuple(PORTRAITS):
        source = portrait_head(name, size)
        out = np.stack(animate(model, source, driving, relative=relative, adapt_scale=adapt_scale, crop=False,
                               find_best_frame=find_best_frame))
        moved, still, drv = (a.astype(np.float64) / 255 for a in (out, source[None], driving))
        try:
            mouth = mouth_transfer(driving, driving_mouth, out, PORTRAIT_MOUTHS[name]) if driving_mouth else None
        except MouthStill:  # the driver's mouth does not move: nothing to follow
            mouth = None
        scores.append(TransferScores(name, motion_transfer(driving, out), float(np.abs(moved - still).mean()),
                                     float(np.abs(moved - drv).mean()), len(out), size, mouth))
    return scores
