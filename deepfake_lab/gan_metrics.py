"""How good is a GAN? Lesson 1's two yardsticks.

**2-D mixtures** (:func:`mixture_metrics`), the protocol of the mode-collapse literature (VEEGAN,
Srivastava et al. 2017; PacGAN, Lin et al. 2018), with the rule written out:

* a sample is *high quality* when it lies within 3 standard deviations of its nearest mode centre
  (Euclidean distance < 3 sigma);
* a mode is *covered* when at least ``min_share`` of all samples are high-quality samples of that
  mode. The default ``min_share`` is a fifth of a fair share, ``0.2 / K`` for K modes (2.5 % for
  ring8; 0.8 % for grid25, i.e. 20 of 2,500 samples), so a few stray samples do not count as a
  mode, and a mode holding a fifth of what it should does.

**Digits** (:func:`digit_metrics`): a small CNN classifier (:class:`DigitClassifier`), trained by this
module on the *held-out* real digits (which no GAN trains on), looks at generated digits:

* *class coverage*: the number of digit classes to which at least ``min_share`` (default 2 %) of the
  samples are assigned with confidence (max softmax probability) >= ``confident`` (0.9); a collapsed
  generator covers few classes;
* *mean confidence*: the mean max softmax probability, high when the digits are legible.

The classifier's weights ship as ``assets/weights/digit-classifier.safetensors`` (fp16, ~0.2 MB);
:func:`train_digit_classifier` made them (``python -m deepfake_lab.gan_metrics train-classifier``).
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints as ckpt

__all__ = ["MixtureMetrics", "mixture_metrics", "DigitClassifier", "DigitMetrics", "digit_metrics",
           "train_digit_classifier", "load_digit_classifier", "classifier_path", "classifier_accuracy", "digit_fid",
           "code_agreement"]


# ==============================================================================================
# 2-D mixtures
# ==============================================================================================
@dataclass
class MixtureMetrics:
    """Mode coverage and sample quality of points drawn from a generator for a 2-D mixture."""

    modes_covered: int
    n_modes: int
    hq_share: float  # share of samples within 3 std of their nearest mode
    counts: list[int]  # high-quality samples per mode
    n_samples: int
    min_share: float

    def as_dict(self) -> dict:
        return asdict(self)


def mixture_metrics(points: torch.Tensor, mixture: str | tuple[torch.Tensor, float],
                    min_share: float | None = None) -> MixtureMetrics:
    """Modes covered and high-quality share of ``points`` (N, 2) for ``mixture`` (a name or (centres, std)).

    See the module docstring for the rule; ``min_share`` defaults to ``0.2 / K``.
    """
    if isinstance(mixture, str):
        from .data.toy import modes

        centres, std = modes(mixture)
    else:
        centres, std = mixture
    points = points.detach().float().cpu()
    if points.dim() != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"points of shape {tuple(points.shape)}: need (N, 2) with N >= 1")
    k = len(centres)
    min_share = 0.2 / k if min_share is None else min_share
    dist, nearest = torch.cdist(points, centres.float()).min(dim=1)  # (N,), (N,)
    hq = dist < 3 * std
    counts = torch.bincount(nearest[hq], minlength=k)  # (K,)
    covered = int((counts >= min_share * len(points)).sum())
    return MixtureMetrics(covered, k, float(hq.float().mean()), counts.tolist(), len(points), min_share)


# ==============================================================================================
# Digits
# ==============================================================================================
class DigitClassifier(nn.Module):
    """A small CNN: (B, 1, 32, 32) in [-1, 1] -> (B, 10) logits.

    Three 3x3 conv + ReLU + 2x2 max-pool stages (32 -> 16 -> 8 -> 4), dropout, one linear layer.
    """

    def __init__(self, width: int = 32, n_classes: int = 10):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, 16, 16)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 8, 8)
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 4w, 4, 4)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * w * 16, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 32, 32) -> (B, 4 * width) features: the last stage averaged over its 4x4 positions (the role
        Inception-v3's pool3 plays in FID)."""
        return self.features(x).mean(dim=(2, 3))


def classifier_path() -> Path:
    """Where the shipped digit classifier lives."""
    return Path(__file__).resolve().parent / "assets" / "weights" / "digit-classifier.safetensors"


def _heldout_and_test() -> tuple[torch.utils.data.Dataset, dict[str, torch.utils.data.Dataset]]:
    from torch.utils.data import ConcatDataset

    from .data.digits import mnist_subset, sklearn_digits

    train = ConcatDataset([mnist_subset("heldout"), sklearn_digits("heldout")])
    # the classifier's test data: the GANs' training splits, which it never sees
    tests = {"mnist-subset": mnist_subset("train"), "digits": sklearn_digits("train")}
    return train, tests


def _affine(images: torch.Tensor, generator: torch.Generator, rotate: float = 10.0, scale: float = 0.1,
            shift: float = 0.12) -> torch.Tensor:
    """Random rotation (up to ``rotate`` degrees), zoom (1 +- ``scale``) and shift (up to ``shift`` of the half-side,
    ~2 pixels at 32x32), the uncovered border filled with the background -1: the ways handwriting varies."""
    b = images.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(rotate)
    zoom = 1 + (torch.rand(b, generator=generator) * 2 - 1) * scale
    offset = (torch.rand(b, 2, generator=generator) * 2 - 1) * shift
    theta = torch.zeros(b, 2, 3)  # output -> input sampling positions, in [-1, 1] coordinates
    theta[:, 0, 0] = theta[:, 1, 1] = torch.cos(angle) / zoom
    theta[:, 0, 1] = -torch.sin(angle) / zoom
    theta[:, 1, 0] = torch.sin(angle) / zoom
    theta[:, :, 2] = offset
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images + 1, grid, align_corners=False) - 1  # zero padding of x + 1 is -1 in x


@torch.no_grad()
def classifier_accuracy(net: nn.Module, dataset) -> float:
    """Share of ``dataset``'s (image, label) items that ``net`` classifies correctly."""
    net.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=500)
    right = total = 0
    for x, y in loader:
        right += int((net(x.float()).argmax(1) == y).sum())
        total += len(y)
    return right / max(total, 1)


def train_digit_classifier(out: str | Path | None = None, epochs: int = 60, seed: int = 0,
                           batch_size: int = 64, lr: float = 1e-3) -> dict:
    """Train :class:`DigitClassifier` on the held-out digits of both sets; save it as fp16 safetensors.

    Adam with cosine decay; every batch randomly rotated, zoomed and shifted (:func:`_affine`). Returns (and
    stores in the file's metadata) its accuracy on the train splits of ``mnist-subset`` and ``digits``, images
    it never saw.
    """
    from .device import seed_everything

    out = Path(out) if out else classifier_path()
    seed_everything(seed)
    train, tests = _heldout_and_test()
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=g, drop_last=True)
    started = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for x, y in loader:
            loss = F.cross_entropy(net(_affine(x.float(), g)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    accuracy = {name: round(classifier_accuracy(net, ds), 4) for name, ds in tests.items()}
    info = {"accuracy": accuracy, "epochs": epochs, "train_images": len(train), "seconds": round(time.perf_counter()
            - started, 1), "seed": seed}
    ckpt.save_weights(out, {"C": net}, "digit-classifier", {"width": 32}, dtype=torch.float16, extra=info)
    load_digit_classifier.cache_clear()
    return info


@functools.lru_cache(maxsize=2)
def load_digit_classifier(path: str | Path | None = None) -> DigitClassifier:
    """The digit classifier (fp32, eval mode) from ``path`` or the shipped asset."""
    path = Path(path) if path else classifier_path()
    if not path.exists():
        raise ckpt.CheckpointError(f"{path}: the digit classifier is missing; make it with "
                                   "`python -m deepfake_lab.gan_metrics train-classifier`")
    nets, meta = ckpt.load_weights(path)
    if meta.get("kind") != "digit-classifier" or "C" not in nets:
        raise ckpt.CheckpointError(f"{path}: not a digit classifier file (kind {meta.get('kind')!r})")
    net = DigitClassifier(int((meta.get("config") or {}).get("width", 32)))
    net.load_state_dict({k: v.float() for k, v in nets["C"].items()})
    return net.eval()


@dataclass
class DigitMetrics:
    """What the digit classifier says about a batch of generated digits."""

    classes_covered: int
    mean_confidence: float
    confident_share: float  # share of samples classified with confidence >= confident
    class_counts: list[int]  # confident samples per class
    n_samples: int

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def digit_metrics(images: torch.Tensor, classifier: nn.Module | None = None, confident: float = 0.9,
                  min_share: float = 0.02) -> DigitMetrics:
    """Class coverage and mean confidence of generated digits (N, 1, 32, 32) in [-1, 1] (see the module docstring)."""
    if images.dim() != 4 or images.shape[1:] != (1, 32, 32):
        raise ValueError(f"images of shape {tuple(images.shape)}: need (N, 1, 32, 32) digits in [-1, 1]")
    net = classifier or load_digit_classifier()
    probs = torch.cat([F.softmax(net(chunk.float().cpu()), dim=1) for chunk in images.split(500)])  # (N, 10)
    conf, label = probs.max(dim=1)
    sure = conf >= confident
    counts = torch.bincount(label[sure], minlength=probs.shape[1])
    covered = int((counts >= min_share * len(images)).sum())
    return DigitMetrics(covered, float(conf.mean()), float(sure.float().mean()), counts.tolist(), len(images))


@torch.no_grad()
def digit_fid(images: torch.Tensor, reference: torch.Tensor | None = None,
              classifier: nn.Module | None = None) -> float:
    """FID (:func:`deepfake_lab.metrics.fid`) between digits (N, 1, 32, 32) in [-1, 1] and ``reference`` (default:
    the 1,000 held-out ``mnist-subset`` digits), in the digit classifier's :meth:`DigitClassifier.embed` features.

    The classifier learnt on those held-out digits, so real digits it never saw do not score 0: the 4,000
    ``mnist-subset`` train digits give the floor a generator is compared with (its model card reports it). Like
    every FID, it depends on N: compare numbers from the same N only.
    """
    from .data.digits import mnist_subset
    from .metrics import fid

    net = classifier or load_digit_classifier()
    reference = mnist_subset("heldout").images if reference is None else reference

    def embed(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net.embed(chunk.float().cpu()) for chunk in x.split(500)])

    return fid(embed(images), embed(reference))


@torch.no_grad()
def code_agreement(images: torch.Tensor, codes: torch.Tensor, classifier: nn.Module | None = None) -> float:
    """The share of generated digits (N, 1, 32, 32) that the classifier names as their code (N,) says: for a
    generator trained with labels (AC-GAN, :mod:`deepfake_lab.gan_codes`), whether code k draws digit k."""
    if images.dim() != 4 or images.shape[1:] != (1, 32, 32) or codes.shape != (len(images),):
        raise ValueError(f"images {tuple(images.shape)} and codes {tuple(codes.shape)}: need (N, 1, 32, 32) digits in "
                         "[-1, 1] and N codes")
    net = classifier or load_digit_classifier()
    labels = torch.cat([net(chunk.float().cpu()).argmax(dim=1) for chunk in images.split(500)])
    return float((labels == codes.cpu()).float().mean())


def main(argv: list[str] | None = None) -> int:
    """``python -m deepfake_lab.gan_metrics train-classifier [--epochs N] [--out FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m deepfake_lab.gan_metrics")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train-classifier", help="train the digit classifier on the held-out real digits")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="weights file (default: the package asset)")
    args = parser.parse_args(argv)
    info = train_digit_classifier(args.out, epochs=args.epochs, seed=args.seed)
    print(info)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
