"""How far the animation demo's motion transfer to other people holds beyond its one held-out clip.

    .venv/bin/python benchmarks/animation_transfer_windows.py                 # the demo weights, a few CPU minutes
    .venv/bin/python benchmarks/animation_transfer_windows.py --model runs/animation --window 30 --stride 15

The model card's cross-identity figure drives each offline portrait with the held-out carphone frames 90-119. One
clip of one second is a small sample of motion, so this script drives the same portraits with every
``--window``-frame window of the whole clip, every ``--stride`` frames (frames 0-89 trained the model on the
*carphone man*, never on the portraits; with the defaults the last two windows hold the held-out frames 90-119, in
part or wholly), and scores each with :func:`deepfake_lab.animation.evaluate.motion_transfer` (the share of the
driver's optical-flow motion the output reproduces; a still portrait scores 0). Each window is scored with five
settings: relative motion as ``deepfake-lab animate`` and the app make it (from the driving frame whose keypoints
are closest to the portrait's, with the frame it picked in brackets; the motion not rescaled), the same from the
first driving frame (``--no-find-best-frame``), the paper's demo (``--adapt-scale --no-find-best-frame``: the motion
scaled by the ratio of the faces' keypoint spreads, from the first frame), the adapted scale from the best frame
(``--adapt-scale``), and absolute keypoints (``--absolute``). For scale, the last column drives a frame of
the carphone man himself, 45 frames away from the window's start (same identity, another pose), with the
default setting: how far the model carries motion when identity is no obstacle. Frame numbers are the clip's, from 0. Prints three markdown tables (transfer
per window; identity per setting; the mouth, below) and the adapted scale of every window (fp32).

The mouth is a small part of the face, so a third table scores it alone for the default setting and from the first
frame (:func:`deepfake_lab.animation.evaluate.mouth_transfer`): the correlation over the window between the darkening of
the output's lips (a mouth that opens shows its dark inside) and the driver's, and the same for the jaw's drop,
beside the driver's own darkening range (how much his mouth opens or closes in that window; where it hardly
moves, the correlations are noise).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.animation.evaluate import evaluate_transfer, find_mouth, mouth_signals  # noqa: E402
from deepfake_lab.animation.evaluate import transfer_to_himself  # noqa: E402
from deepfake_lab.animation.importer import load_animation_model  # noqa: E402
from deepfake_lab.animation.transfer import BEST_FRAME_DEFAULT, best_frame_index, default_batch_size  # noqa: E402
from deepfake_lab.animation.transfer import adapt_scale_factor, detect_keypoints, to_model_input  # noqa: E402
from deepfake_lab.data.animation_data import CARPHONE_TEST_FRAMES  # noqa: E402
from deepfake_lab.data.faces import NoFaceError, carphone_faces, find_face  # noqa: E402
from deepfake_lab.data.portraits import PORTRAITS, portrait_head  # noqa: E402


#: the transfer settings compared: relative motion as the command's and the app's default (from the driving frame
#: closest to the portrait's pose: the frame it picked in brackets), the same from the first driving frame, the
#: paper's demo (adapted scale, from the first frame), the adapted scale from the best frame, absolute keypoints
SETTINGS = {"default": {}, "first frame": {"find_best_frame": False},
            "adapt scale": {"adapt_scale": True, "find_best_frame": False},
            "adapt scale, best frame": {"adapt_scale": True, "find_best_frame": True}, "absolute": {"relative": False}}
#: the settings whose mouth is scored (the third table)
MOUTH_SETTINGS = ("default", "first frame")


def face_width(image: np.ndarray) -> int:
    """Width in pixels of the largest frontal face the Haar cascade finds (0: none)."""
    try:
        return find_face(image)[0].w
    except NoFaceError:
        return 0


def reference_and_scale(model, name: str, driving: np.ndarray) -> tuple[int, float]:
    """For this portrait and these driving frames: the frame ``find_best_frame`` picks and the factor
    ``--adapt-scale`` applies (against the first frame), from keypoints found as
    :func:`~deepfake_lab.animation.transfer.animate` finds them (the same batches; no frames made)."""
    size = model.config.image_size
    with torch.no_grad():
        kp_source = detect_keypoints(model, to_model_input(portrait_head(name, size), size, model.device))
        kp_driving = detect_keypoints(model, to_model_input(driving, size, model.device), default_batch_size(size))
    source, frames = kp_source["value"][0], kp_driving["value"]
    return best_frame_index(source, frames), float(adapt_scale_factor(source, frames[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", help="animation weights or run folder (default: the demo weights)")
    parser.add_argument("--window", type=int, default=30, help="driving frames per window (default 30)")
    parser.add_argument("--stride", type=int, default=15, help="frames between window starts (default 15)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_animation_model(args.model, "cpu", precision="fp32")
    crops, _ = carphone_faces(model.config.image_size)
    if not 2 <= args.window <= len(crops) or args.stride < 1:
        parser.error(f"--window {args.window}, --stride {args.stride}: need 2 <= window <= {len(crops)}, stride >= 1")
    names = tuple(PORTRAITS)
    header = " | ".join(f"{n}: {label}" for n in names for label in SETTINGS)
    print(f"model {model.source}, {model.config.image_size}x{model.config.image_size}, fp32; still portrait: 0\n")
    print(f"| carphone frames | {header} | the carphone man (source frame) |")
    print("|---" * (2 + len(SETTINGS) * len(names)) + "|")
    totals: dict[tuple[str, str], list] = {(n, label): [] for n in names for label in SETTINGS}
    factors: dict[str, list[float]] = {n: [] for n in names}
    himself_scores, mouth_rows = [], []
    first_test = len(crops) - CARPHONE_TEST_FRAMES  # frames from here on are held out from training
    for start in range(0, len(crops) - args.window + 1, args.stride):
        driving = crops[start:start + args.window]
        lips = find_mouth(driving)
        scores = {label: {s.portrait: s for s in evaluate_transfer(model, names, driving, driving_mouth=lips,
                                                                   **options)}
                  for label, options in SETTINGS.items()}
        cells = []
        for n in names:
            reference, factor = reference_and_scale(model, n, driving)
            factors[n].append(factor)
            for label, options in SETTINGS.items():
                totals[n, label].append(scores[label][n])
                best = options.get("relative", True) and options.get("find_best_frame", BEST_FRAME_DEFAULT)
                picked = f" ({start + reference})" if best else ""
                cells.append(f"{scores[label][n].transfer:.3f}{picked}")
        own = (start + 45) % first_test  # a training frame of the man, 45 frames away
        motion, own_mouth = transfer_to_himself(model, crops, driving, own)
        himself_scores.append(motion)
        cells.append(f"{motion:.3f} ({own})")
        darkening = mouth_signals(driving, lips)[1]
        mouth_rows.append((start, float(darkening.max() - darkening.min()),
                           [scores[label][n].mouth for n in names for label in MOUTH_SETTINGS] + [own_mouth]))
        held_out = (" (held out)" if start >= first_test else
                    " (partly held out)" if start + args.window > first_test else "")
        print(f"| {start}-{start + args.window - 1}{held_out} | " + " | ".join(cells) + " |", flush=True)
    means = " | ".join(f"{np.mean([t.transfer for t in totals[n, label]]):.3f}" for n in names for label in SETTINGS)
    print(f"| mean | {means} | {np.mean(himself_scores):.3f} |")

    print("\n| carphone frames | the driver's darkening range | "
          + " | ".join(f"{n}, {label}: mouth r (jaw r)" for n in names for label in MOUTH_SETTINGS)
          + " | the carphone man: mouth r (jaw r) |")
    print("|---" * (3 + len(names) * len(MOUTH_SETTINGS)) + "|")
    for start, spread, mouths in mouth_rows:
        cells = [f"{m['dark_corr']:.2f} ({m['jaw_corr']:.2f})" if m else "-" for m in mouths]
        print(f"| {start}-{start + args.window - 1} | {spread:.3f} | " + " | ".join(cells) + " |")
    for label, least in (("mean", 0.0), ("mean where the range >= 0.05", 0.05)):
        rows = [mouths for _, spread, mouths in mouth_rows if spread >= least]
        cells = []
        for i in range(len(names) * len(MOUTH_SETTINGS) + 1):
            scored = [m[i] for m in rows if m[i]]
            cells.append(f"{np.mean([m['dark_corr'] for m in scored]):.2f} "
                         f"({np.mean([m['jaw_corr'] for m in scored]):.2f})" if scored else "-")
        print(f"| {label} ({len(rows)} windows) | | " + " | ".join(cells) + " |")

    # identity and the adapted scale, over all windows
    print("\n| portrait | setting | mean transfer | mean L1 to the source | mean L1 to the driver |")
    print("|---|---|---|---|---|")
    for n in names:
        for label in SETTINGS:
            runs = totals[n, label]
            print(f"| {n} | {label} | {np.mean([t.transfer for t in runs]):.3f} | "
                  f"{np.mean([t.to_source_l1 for t in runs]):.4f} | {np.mean([t.to_driver_l1 for t in runs]):.4f} |")
    size = model.config.image_size
    widths = [face_width(frame) for frame in crops[::3]]
    found = [w for w in widths if w]
    print("\nadapted scale per window (the first driving frame's keypoint hull against the portrait's):")
    for n in names:
        print(f"  {n}: " + " ".join(f"{f:.2f}" for f in factors[n])
              + f"; Haar face box {face_width(portrait_head(n, size))} px wide at {size}x{size}")
    print(f"  the carphone man: Haar face box {min(found)}-{max(found)} px wide ({len(found)} of {len(widths)} "
          "frames, every third)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
