"""Held-out evaluation of each lesson, beside the metrics it uses (:mod:`deepfake_lab.metrics`).

The training command (:mod:`deepfake_lab.cli.train`) calls the ``*_held_out`` function of the lesson
it trained, through the lesson table; the tests, the app and the tutorial call the same functions, so
every figure of a model card comes from one place.

* lesson 2 (CycleGAN): :func:`run_generator`, :func:`evaluate_pairs` on pairs with a ground truth
  (the embedded sets' ``testA``/``testB`` + ``manifest.json``), :func:`domain_distances` (FID/KID to
  the target domain, no ground truth needed), :func:`cyclegan_held_out`;
* lesson 3 (pix2pix): :func:`evaluate`, :func:`sharpness_gap`, :func:`face_baselines`,
  :func:`face_task_report` on the held-out carphone frames, :func:`pix2pix_held_out`;
* lesson 5 (face swap): :func:`evaluate_reconstruction`, :func:`identity_similarity`,
  :func:`faceswap_held_out`.

Lesson 1 measures samples (:mod:`deepfake_lab.gan_metrics`), lesson 4 self-reconstruction of held-out
video frames (:mod:`deepfake_lab.animation.evaluate`).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .device import Precision
from .faceswap import swap_faces
from .pix2pix import Pix2PixConfig, translate

__all__ = ["run_generator", "as_saved", "evaluate_pairs", "domain_distances", "cyclegan_held_out", "sharpness_gap",
           "evaluate", "face_baselines", "face_task_report", "pix2pix_held_out", "evaluate_reconstruction",
           "identity_similarity", "faceswap_held_out"]


# --------------------------------------------------------------------------------------------
# Lesson 2: CycleGAN on held-out pairs
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def run_generator(G: nn.Module, images: torch.Tensor, precision: Precision | None = None,
                  batch_size: int = 16) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1], any H and W -> G's output of the same shape, in fp32.

    Pads to a multiple of 4 (reflection) and crops back, so rectangular and odd sizes work.
    """
    from .data.images import pad_to_multiple, unpad

    device = next(G.parameters()).device
    outs = []
    for chunk in images.split(batch_size):
        x, size = pad_to_multiple(chunk.to(device), 4)
        with precision.autocast() if precision else contextlib.nullcontext():
            y = G(x)
        outs.append(unpad(y.float(), size).cpu())
    return torch.cat(outs)


def as_saved(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] rounded to the 256 levels a saved 8-bit picture has (what a user would score)."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().div(127.5).sub(1)


def _sides(direction: str) -> tuple[str, str]:
    """("A", "B") for G (``"AtoB"``), ("B", "A") for F (``"BtoA"``); anything else is an error."""
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction {direction!r}: use AtoB (G, testA -> testB) or BtoA (F, testB -> testA)")
    return ("A", "B") if direction == "AtoB" else ("B", "A")


@torch.no_grad()
def evaluate_pairs(G: nn.Module, root: str | Path, phase: str = "test", limit: int | None = None,
                   precision: Precision | None = None, direction: str = "AtoB",
                   perceptual: bool = False) -> dict[str, Any]:
    """Measure G on held-out pairs: ``<root>/<phase>A/f`` translated, against the truth ``<root>/<phase>B/f``
    (``direction="BtoA"``: measure F, from ``<phase>B`` to ``<phase>A``).

    Only meaningful for data sets whose testB is the exact translation of testA (the embedded
    ``face2cartoon`` and ``photo2winter``); official sets like horse2zebra have no such truth. The outputs
    are rounded to 8 bits, as a saved image would be. Returns PSNR (dB), SSIM and mean absolute error (in [0, 1] units)
    of G(x) and, as the baseline, of the identity (x itself) against the truth, averaged over the images.
    ``perceptual``: also LPIPS with the AlexNet (``lpips_alex``) and VGG (``lpips``) heads (NaN when their
    weights are not installed: ``deepfake-lab setup-weights``).
    """
    from .data.images import list_images, load_image, pil_to_tensor
    from .metrics import pair_scores

    root = Path(root)
    src, dst = _sides(direction)
    files = list_images(root / f"{phase}{src}")[:limit]
    truth_dir = root / f"{phase}{dst}"
    if not files or not all((truth_dir / f.name).exists() for f in files):
        raise ValueError(f"{root}: {phase}A/ and {phase}B/ do not hold the same file names; evaluation needs "
                         "held-out pairs (the embedded face2cartoon and photo2winter sets have them)")
    x = torch.stack([pil_to_tensor(load_image(f)) for f in files])                 # (N, 3, H, W)
    y = torch.stack([pil_to_tensor(load_image(truth_dir / f.name)) for f in files])
    fake = run_generator(G, x, precision)
    fake = as_saved(fake)

    wanted = ("psnr", "ssim", "l1", "lpips") if perceptual else ("psnr", "ssim", "l1")

    def scores(pred: torch.Tensor) -> dict[str, float]:  # psnr, ssim, l1 [, lpips_alex, lpips]
        return {k: round(v, 3 if k == "psnr" else 4) for k, v in pair_scores(pred, y, wanted).items()}

    return {"images": len(files), "size": list(x.shape[-2:]), "G": scores(fake), "identity": scores(x)}


@torch.no_grad()
def domain_distances(G: nn.Module, root: str | Path, direction: str = "AtoB", phase: str = "test",
                     kid_subsets: int = 100) -> dict[str, Any]:
    """How far G's outputs are from the *target domain* as a whole: FID and KID (Inception pool3 features)
    of G(x) for the held-out ``<phase>A`` images against the training images of domain B (``trainB``),
    beside the same distances of the inputs themselves (doing nothing). ``direction="BtoA"``: F, from
    ``<phase>B`` against ``trainA``.

    This is the measure that needs no ground truth (it is how CycleGAN results on horse2zebra are
    reported); with tens of images FID is biased upwards, so compare only numbers made with the same sets;
    KID is unbiased (:func:`~deepfake_lab.metrics.kid`). Returns ``{"images": n, "reference": m,
    "G": {"fid", "kid"}, "identity": {"fid", "kid"}}``.
    """
    from .data.images import list_images, load_image, pil_to_tensor
    from .metrics import fid, inception_features, kid

    root = Path(root)
    src, dst = _sides(direction)

    def stack(folder: Path) -> torch.Tensor:
        files = list_images(folder)
        if not files:
            raise ValueError(f"{folder}: no images; domain distances need the held-out and the training images")
        return torch.stack([pil_to_tensor(load_image(f)) for f in files])

    x, target = stack(root / f"{phase}{src}"), stack(root / f"train{dst}")
    fake = as_saved(run_generator(G, x))
    ref = inception_features(target)
    result: dict[str, Any] = {"images": len(x), "reference": len(target)}
    for name, images in (("G", fake), ("identity", x)):
        feats = inception_features(images)
        result[name] = {"fid": round(fid(feats, ref), 2), "kid": round(kid(feats, ref, num_subsets=kid_subsets), 5)}
    return result


def cyclegan_held_out(model, root: Path) -> dict | None:
    """G on testA -> testB and F on testB -> testA, when ``root`` has held-out pairs with a ground truth."""
    if not ((root / "testA").is_dir() and (root / "testB").is_dir() and (root / "manifest.json").exists()):
        return None
    metrics = evaluate_pairs(model.nets["G"].eval(), root, perceptual=True)
    metrics["F"] = evaluate_pairs(model.nets["F"].eval(), root, direction="BtoA", perceptual=True)["G"]
    return metrics


# --------------------------------------------------------------------------------------------
# Lesson 3: pix2pix on the held-out carphone frames
# --------------------------------------------------------------------------------------------
def _gradient_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean Sobel gradient magnitude of the luminance, per image: (N, 3, H, W) in [-1, 1] -> (N,)."""
    x = (x.float().clamp(-1, 1) + 1) / 2
    lum = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1) if x.shape[1] == 3 else x[:, :1]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.t()]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    g = torch.nn.functional.conv2d(lum, kernels)  # (N, 2, H-2, W-2)
    return g.pow(2).sum(1).sqrt().flatten(1).mean(1)


def sharpness_gap(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A VGG-free companion to LPIPS: how far the output's sharpness is from the target's, per image.

    .. math:: \\mathrm{gap} = \\big|\\log\\big(S(\\hat y) / S(y)\\big)\\big|, \\quad S = \\text{mean Sobel gradient magnitude}

    0 when the output has as much fine detail as the ground truth; the blur of L1-only regression
    (the paper's Fig. 4) gives :math:`S(\\hat y) < S(y)`. Lower is better. It does not check *where*
    the detail is (PSNR, SSIM and LPIPS do). (N, 3, H, W) in [-1, 1] -> (N,).
    """
    return (torch.log(_gradient_energy(output).clamp_min(1e-8))
            - torch.log(_gradient_energy(target).clamp_min(1e-8))).abs()


def evaluate(output: torch.Tensor, target: torch.Tensor, use_lpips: bool = True) -> dict[str, float]:
    """Mean PSNR (dB), SSIM, LPIPS with both heads (``lpips``: VGG, ``lpips_alex``: AlexNet, the LPIPS
    authors' default for measuring; each NaN when its weights are not installed), sharpness gap and ratio
    S(output)/S(target) of (N, 3, H, W) outputs against their targets, both in [-1, 1]."""
    from .metrics import pair_scores

    output, target = output.float(), target.float()
    out = pair_scores(output, target, ("psnr", "ssim", "lpips"), lpips_nets=("vgg", "alex") if use_lpips else ())
    out.setdefault("lpips", float("nan"))
    out.setdefault("lpips_alex", float("nan"))
    ratio = _gradient_energy(output) / _gradient_energy(target).clamp_min(1e-8)
    out.update(sharpness_gap=sharpness_gap(output, target).mean().item(), sharpness_ratio=ratio.mean().item())
    return out


def face_baselines(train_B: torch.Tensor, test_B: torch.Tensor) -> dict[str, torch.Tensor]:
    """Two baselines without any learning, for held-out frames ``test_B`` (N, 3, H, W):

    * ``"mean_frame"``: the mean training frame, the same for every test frame (a generator that
      ignores its input can do this well);
    * ``"nearest_frame"``: for each test frame, the training frame closest to its *ground truth* in
      L2; an oracle (it cheats: it looks at the answer), the best any look-up of training frames can do.
    """
    mean = train_B.float().mean(0, keepdim=True).expand_as(test_B)
    d = torch.cdist(test_B.float().flatten(1), train_B.float().flatten(1))  # (N_test, N_train)
    return {"mean_frame": mean.contiguous(), "nearest_frame": train_B[d.argmin(1)].float()}


def face_task_report(G: nn.Module | None, config: Pix2PixConfig, mode: str = "eval", seed: int = 0,
                     use_lpips: bool = True, baselines: bool = True) -> dict[str, dict[str, float]]:
    """Scores on the held-out carphone frames (100-119): G (if given) and the two baselines.

    The test pairs are the un-jittered ``crop_size`` crops; ``mode`` is the test-time convention
    (:func:`generator_mode`); ``seed`` fixes the dropout noise in ``"official"`` mode.
    """
    from .data.paired import CarphoneEdges2Face

    test_A, test_B = CarphoneEdges2Face("test", config.crop_size).stacked()
    report = {}
    if baselines:
        _, train_B = CarphoneEdges2Face("train", config.crop_size, jitter=False).stacked()
        report = {name: evaluate(images, test_B, use_lpips) for name, images in face_baselines(train_B, test_B).items()}
    if G is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            report["pix2pix"] = evaluate(translate(G, test_A, mode), test_B, use_lpips)
    return report


def pix2pix_held_out(G: nn.Module, config: Pix2PixConfig, data: str) -> dict | None:
    """The face task's held-out report (G and the two baselines) when ``data`` is the embedded face task."""
    if data != "carphone-edges":
        return None
    return face_task_report(G, config)


# --------------------------------------------------------------------------------------------
# Lesson 5: face swap, reconstruction of held-out faces
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_reconstruction(nets: dict[str, nn.Module], held_out: dict[str, torch.Tensor],
                            train: dict[str, torch.Tensor] | None = None) -> dict[str, dict[str, float]]:
    """Reconstruction error of each identity's autoencoder on its held-out faces (no augmentation).

    ``held_out``/``train``: ``{"A": (N, 3, 64, 64), "B": ...}`` in [-1, 1]. Returns per identity the
    L1 error (mean absolute error on the [0, 1] scale, :func:`deepfake_lab.metrics.reconstruction_l1`)
    and PSNR (dB); with ``train`` given, the same for the *mean training face* of that identity, a
    baseline any useful decoder must beat (it is what a decoder that ignores its input learns).
    """
    from .metrics import psnr, reconstruction_l1

    out: dict[str, dict[str, float]] = {}
    for who, faces in held_out.items():
        rec = swap_faces(nets, faces, who)
        row = {"l1": reconstruction_l1(rec, faces), "psnr": psnr(rec.clamp(-1, 1), faces), "n": int(faces.shape[0])}
        if train is not None and who in train:
            mean = train[who].float().mean(0, keepdim=True).expand_as(faces)
            row["mean_face_l1"] = reconstruction_l1(mean, faces)
            row["mean_face_psnr"] = psnr(mean, faces)
        out[who] = row
    return out


def identity_similarity(faces_x: torch.Tensor, faces_y: torch.Tensor,
                        embed: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    r"""Cosine similarity of face embeddings, pair by pair: :math:`\cos(e(x_i), e(y_i))`, (N,).

    ``embed`` maps (N, 3, H, W) faces in [-1, 1] to (N, D) identity embeddings (a face-recognition
    network such as FaceNet, Schroff et al. 2015). A swap A -> B should be *more* similar to B's
    faces than to A's. No such network's weights ship inside a package installable offline
    (facenet-pytorch ships only its MTCNN detector weights), so this lesson does not report this
    figure; with internet, ``facenet_pytorch.InceptionResnetV1(pretrained="vggface2")`` is one choice.
    """
    ex, ey = embed(faces_x).float(), embed(faces_y).float()
    return F.cosine_similarity(ex, ey, dim=1)


def faceswap_held_out(nets: dict[str, nn.Module], config) -> dict:
    """Reconstruction of every 6th (held-out) frame of both identities, against the mean training face."""
    from .faceswap import build_training_faces

    _, _, held, train = build_training_faces(config)
    return evaluate_reconstruction(nets, held, train)
