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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .model import FirstOrderModel
from .transfer import default_batch_size, to_model_input

__all__ = ["ReconstructionScores", "reconstruction_scores", "evaluate_carphone"]


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
