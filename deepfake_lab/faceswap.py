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
3. random-warp augmentation (:func:`random_affine`, :func:`random_warp_field`, :func:`warp_pair`) and
   :class:`FaceSwapDataset`;
4. the loss (:func:`reconstruction_loss`) and :class:`FaceSwapModel`, one training step per
   identity on the shared loop (:func:`deepfake_lab.train.fit`);
5. the swap itself (:func:`swap_faces`);
6. the weights file (:func:`export_weights`, :func:`load_faceswap`);
7. the presets and the demo data (:data:`PRESETS`, :func:`build_training_faces`).

Around it, elsewhere: finding and aligning faces (:func:`deepfake_lab.data.faces.align_face`), the two
identities available offline (:mod:`deepfake_lab.data.faceswap_data`), putting a swapped face back
into a photo (:mod:`deepfake_lab.compositing`), the held-out measurements
(:func:`deepfake_lab.evaluation.evaluate_reconstruction`) and the commands ``deepfake-lab train
faceswap`` and ``deepfake-lab swap`` (:mod:`deepfake_lab.cli`).

Every image made with this lesson is labelled synthetic (:mod:`deepfake_lab.provenance`). The two
identities here are real, identifiable people (the man of the public "carphone" test clip, and
Rear Admiral Grace Hopper in a public-domain portrait); the swaps are teaching material about how the
technique works, and are labelled so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvNormAct, count_parameters
from .data.faceswap_data import identity_A_faces, identity_B_faces, split_frames
from .settings import demo_weights
from .train import LessonModel, LoopConfig, config_from_dict, config_to_dict
from .run_folder import open_weights

__all__ = [
    "FaceSwapConfig", "UpscaleBlock", "Encoder", "Decoder", "count_parameters",
    "random_affine", "random_warp_field", "remove_similarity", "warp_pair", "center_faces", "FaceSwapDataset",
    "reconstruction_loss", "FaceSwapModel", "swap_faces",
    "export_weights", "load_faceswap", "demo_weights_path", "DEMO_WEIGHTS", "PRESETS", "build_training_faces",
    "gpu_check_generator",
]

#: the demo weights (trained by ``deepfake-lab train faceswap --preset demo``)
DEMO_WEIGHTS = demo_weights("faceswap-demo")


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
    #: bf16 autocast keeps this model within its parity bound; whether it pays is measured (:mod:`deepfake_lab.device`)
    bf16_ok: bool = True

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


# --------------------------------------------------------------------------------------------
# 3. Random-warp augmentation (the 2017 ``random_transform`` + ``random_warp``) and the data set
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

    ``faces_A``/``faces_B``: (N, S, S, 3) uint8 context crops (for the demo:
    :func:`deepfake_lab.data.faceswap_data.identity_A_faces` and ``identity_B_faces``). Item ``i`` takes
    A's face ``i mod N_A`` and a random face of B, each through its own random transform and warp. ``length`` sets the epoch (default: the larger set).
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
# 5. The swap
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def swap_faces(nets: dict[str, nn.Module], faces: torch.Tensor, to: str = "B", batch_size: int = 32) -> torch.Tensor:
    """Dec_to(Enc(faces)): (N, 3, 64, 64) in [-1, 1] -> (N, 3, 64, 64) in [-1, 1] (fp32, CPU)."""
    if to not in ("A", "B"):
        raise ValueError(f"swap to {to!r}: use 'A' or 'B' (whose decoder paints the face)")
    enc, dec = nets["encoder"], nets[f"decoder_{to}"]
    device = next(enc.parameters()).device
    outs = [dec(enc(faces[i:i + batch_size].to(device))).float().cpu() for i in range(0, faces.shape[0], batch_size)]
    return torch.cat(outs)


# --------------------------------------------------------------------------------------------
# 6. Weights: export, load, the demo file
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
    from .checkpoints import CheckpointError

    nets_sd, meta, path = open_weights(path if path is not None else demo_weights_path(), "faceswap",
                                       networks=FaceSwapModel.inference_nets)
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
