r"""Responsible use: a small detector of generated faces, and where it fails.

A deepfake detector is a classifier :math:`D: x \mapsto p(\text{generated} \mid x)` trained on real
images and on images made by known methods. Detectors of this kind find the *traces* a method leaves
(the blur of a 64x64 autoencoder, the up-sampling pattern of a decoder, colour statistics; Rossler
et al., "FaceForensics++", ICCV 2019) and do well on the methods they were trained on. On a method
they never saw they often fail: what they learned are that method's traces, not "fakeness"
(the generalisation problem studied, for example, by Cozzolino et al. 2018 "ForensicTransfer" and
Wang et al. 2020 "CNN-generated images are surprisingly easy to spot... for now").

This module reproduces that lesson at a scale a laptop trains in a minute:

1. :class:`DetectorConfig` and :class:`RealFakeDetector`: a four-stage CNN on 64x64 face crops;
2. the images, all from what ships with the package (:func:`real_faces`, and one set per method:
   :func:`faceswap_fakes` from the lesson-5 demo weights, :func:`pix2pix_fakes` from the lesson-3
   demo weights where present, and :func:`splice_fakes`, a classical cut-and-paste face replacement
   without any network);
3. :func:`train_detector` (deterministic) and :func:`evaluate` (accuracy on held-out frames);
4. :func:`detection_report`: train on face-swap outputs, test on the held-out face-swap frames
   (*seen* method) and on every other method (*unseen*).

Real and generated images are split by *source frame* (the face swap's held-out frames), so no
test image shares its frame with a training image.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .settings import WEIGHTS_DIR

__all__ = ["DetectorConfig", "RealFakeDetector", "real_faces", "faceswap_fakes", "pix2pix_fakes", "splice_fakes",
           "available_methods", "train_detector", "predict", "evaluate", "detection_report"]

#: the methods this module can make images with (pix2pix only where its demo weights are present)
METHODS = ("faceswap", "pix2pix", "splice")


@dataclass
class DetectorConfig:
    """The detector and its training: widths of the four stages, Adam, a fixed number of steps."""

    width: int = 16
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


class RealFakeDetector(nn.Module):
    """A small CNN: four stages of (3x3 conv, BatchNorm, ReLU, 2x2 max-pool), global average pool, linear.

    (B, 3, 64, 64) -> (B, w, 32, 32) -> (B, 2w, 16, 16) -> (B, 4w, 8, 8) -> (B, 4w, 4, 4) -> (B, 4w) -> (B,)
    logits; sigmoid(logit) is the probability that the image is generated. The first stage has no
    pooling stride trick or large kernel: the traces detectors use are often in the finest pixels.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        chans = (3, width, 2 * width, 4 * width, 4 * width)
        layers = []
        for i, o in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)                 # (B, 3, 64, 64) -> (B, 4w, 4, 4)
        return self.head(h.mean((2, 3)))[:, 0]  # -> (B, 4w) -> (B,)


# --------------------------------------------------------------------------------------------
# The images: real faces and one set per method, split by source frame
# --------------------------------------------------------------------------------------------
Split = dict[str, torch.Tensor]  # {"train": (N, 3, 64, 64), "test": (M, 3, 64, 64)} in [-1, 1]


@lru_cache(maxsize=1)
def _faceswap_data():
    """The face swap's context crops of both identities and its frame split (made once per process)."""
    from .data.faceswap_data import identity_A_faces, identity_B_faces, split_frames
    from .faceswap import FaceSwapConfig

    config = FaceSwapConfig()
    A = identity_A_faces(config.context_size)
    B = identity_B_faces(len(A), config.context_size)
    return config, A, B, split_frames(len(A))


def real_faces() -> Split:
    """Real faces: the carphone man's frames and the Grace Hopper portrait's pseudo-video frames, plus
    the astronaut portrait (Eileen Collins, scikit-image) moved the same way; 64x64 centre crops.

    Train/test follow the face swap's split (every 6th frame held out).
    """
    from .data.faceswap_data import identity_B_faces, split_frames
    from .data.portraits import portrait
    from .faceswap import center_faces

    config, A, B, (tr, te) = _faceswap_data()
    # the left 300 columns: on the whole photo the Haar cascade's largest box is a false one beside her face
    astronaut = np.ascontiguousarray(portrait("astronaut")[:, :300])
    C = identity_B_faces(60, config.context_size, seed=1, image=astronaut)
    tr_c, te_c = split_frames(len(C))
    faces = {"train": [center_faces(A[tr], config), center_faces(B[tr], config), center_faces(C[tr_c], config)],
             "test": [center_faces(A[te], config), center_faces(B[te], config), center_faces(C[te_c], config)]}
    return {k: torch.cat(v) for k, v in faces.items()}


def faceswap_fakes(weights: str | Path | None = None) -> Split:
    """Face-swap outputs of the lesson-5 demo weights (or ``weights``): for every frame of both
    identities, its reconstruction and its swap (A -> B and B -> A), straight from the decoders."""
    from .faceswap import center_faces, load_faceswap, swap_faces

    config, A, B, (tr, te) = _faceswap_data()
    nets, fs_config = load_faceswap(weights)
    out = {}
    for split, idx in (("train", tr), ("test", te)):
        fa, fb = center_faces(A[idx], fs_config), center_faces(B[idx], fs_config)
        out[split] = torch.cat([swap_faces(nets, fa, "A"), swap_faces(nets, fa, "B"),
                                swap_faces(nets, fb, "B"), swap_faces(nets, fb, "A")]).clamp(-1, 1)
    return out


def _pix2pix_weights() -> Path | None:
    found = sorted(WEIGHTS_DIR.glob("pix2pix*.safetensors"))
    return found[0] if found else None


def pix2pix_fakes(weights: str | Path | None = None) -> Split | None:
    """pix2pix outputs (lesson 3): carphone frames painted from their Canny edges by the demo generator,
    cut to the same 64x64 face region; None when no pix2pix weights are present."""
    from .data.faces import carphone_faces
    from .data.paired import canny_edges, to_tensor
    from .data.faceswap_data import split_frames
    from .faceswap import FaceSwapConfig, center_faces
    from .pix2pix import load_generator, translate

    path = Path(weights) if weights is not None else _pix2pix_weights()
    if path is None:
        return None
    G, p2p = load_generator(path)
    crops, _ = carphone_faces(p2p.crop_size)                                       # (120, S, S, 3)
    edges = torch.stack([to_tensor(canny_edges(c)) for c in crops])               # (120, 3, S, S)
    painted = translate(G, edges)                                                 # (120, 3, S, S)
    config = FaceSwapConfig()
    faces = center_faces(painted.clamp(-1, 1), config)
    tr, te = split_frames(len(faces))
    return {"train": faces[tr], "test": faces[te]}


def splice_fakes() -> Split:
    """A classical face replacement without any network ("cheap fake"): the *real* face of the other
    identity, colour-matched and pasted under the same feathered mask the face swap uses.

    Every pixel comes from a photograph; only the seam and the colour transfer are synthetic.
    """
    from .compositing import colour_match, face_mask
    from .faceswap import center_faces

    config, A, B, (tr, te) = _faceswap_data()
    mask = face_mask(config.image_size)
    fa = ((center_faces(A, config) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    fb = ((center_faces(B, config) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    made = []
    for dst, src in ((fa, fb), (fb, fa)):
        for i in range(len(dst)):
            pasted = colour_match(src[(i * 7) % len(src)], dst[i], mask, "lab").astype(np.float32)
            made.append(mask[..., None] * pasted + (1 - mask[..., None]) * dst[i].astype(np.float32))
    x = torch.from_numpy(np.stack(made)).permute(0, 3, 1, 2).div(127.5).sub(1)    # (2N, 3, 64, 64)
    n = len(fa)
    idx_tr = np.concatenate([tr, tr + n])
    idx_te = np.concatenate([te, te + n])
    return {"train": x[idx_tr], "test": x[idx_te]}


def available_methods() -> list[str]:
    """The generation methods whose images can be made here (pix2pix needs its demo weights)."""
    return [m for m in METHODS if m != "pix2pix" or _pix2pix_weights() is not None]


# --------------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------------
def train_detector(real: torch.Tensor, fake: torch.Tensor, config: DetectorConfig | None = None,
                   log: list | None = None) -> RealFakeDetector:
    """Train a :class:`RealFakeDetector` on (N, 3, 64, 64) real and (M, 3, 64, 64) generated images.

    Binary cross-entropy, Adam, balanced batches (half real, half generated) with random horizontal
    flips; deterministic for a given ``config.seed``. Losses are appended to ``log`` if given.
    """
    config = config or DetectorConfig()
    if len(real) == 0 or len(fake) == 0:
        raise ValueError(f"train_detector: {len(real)} real and {len(fake)} generated images; need both")
    g = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = RealFakeDetector(config.width)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    half = config.batch_size // 2
    labels = torch.cat([torch.zeros(half), torch.ones(half)])
    net.train()
    for _ in range(config.steps):
        x = torch.cat([real[torch.randint(len(real), (half,), generator=g)],
                       fake[torch.randint(len(fake), (half,), generator=g)]])
        flip = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        loss = F.binary_cross_entropy_with_logits(net(x), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log is not None:
            log.append(loss.item())
    return net.eval()


@torch.no_grad()
def predict(net: RealFakeDetector, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """P(generated) for (N, 3, 64, 64) images in [-1, 1]: (N,)."""
    net.eval()
    return torch.cat([torch.sigmoid(net(images[i:i + batch_size])) for i in range(0, len(images), batch_size)])


def evaluate(net: RealFakeDetector, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Balanced accuracy at threshold 0.5, and its two halves: real images called real, generated called generated."""
    real_ok = (predict(net, real) < 0.5).float().mean().item()
    fake_ok = (predict(net, fake) >= 0.5).float().mean().item()
    return {"accuracy": (real_ok + fake_ok) / 2, "real_called_real": real_ok, "fake_caught": fake_ok,
            "n_real": int(len(real)), "n_fake": int(len(fake))}


def detection_report(train_on: tuple[str, ...] = ("faceswap",), config: DetectorConfig | None = None,
                     faceswap_weights: str | Path | None = None) -> dict:
    """Train on real faces vs the methods in ``train_on``; evaluate on held-out frames of every method.

    Returns ``{"seen": {method: scores}, "unseen": {method: scores}, "train_loss": [...]}`` where the
    scores are those of :func:`evaluate` against the held-out *real* faces.
    """
    real = real_faces()
    makers = {"faceswap": lambda: faceswap_fakes(faceswap_weights), "pix2pix": pix2pix_fakes, "splice": splice_fakes}
    unknown = [m for m in train_on if m not in makers]
    if unknown:
        raise ValueError(f"methods {unknown}: use {', '.join(METHODS)}")
    fakes = {m: makers[m]() for m in available_methods()}
    missing = [m for m in train_on if fakes.get(m) is None]
    if missing:
        raise ValueError(f"no images for {missing}: their demo weights are not in this package")
    log: list[float] = []
    net = train_detector(real["train"], torch.cat([fakes[m]["train"] for m in train_on]), config, log)
    report = {"seen": {}, "unseen": {}, "train_loss": log, "train_on": list(train_on)}
    for m, split in fakes.items():
        report["seen" if m in train_on else "unseen"][m] = evaluate(net, real["test"], split["test"])
    report["detector"] = net
    return report
