"""Lesson 1's held-out figures at every checkpoint of a GAN run: G, and with ``--ema`` the average beside it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_checkpoints.py runs/gan-mnist-subset

For each ``step-*.safetensors`` of the run folder: 1,000 samples (noise seed 0) judged by the digit classifier
(share recognised with confidence >= 0.9, mean confidence, classes covered) and their FID to the held-out digits
in its features (:func:`deepfake_lab.gan.evaluate_generator`). A run trained with ``--ema`` keeps the average in
each checkpoint's ``.state.pt``; it is scored with its own BatchNorm statistics, as the train command exports it
(:func:`deepfake_lab.gan.average_statistics`). Prints one line per checkpoint; writes nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from deepfake_lab import checkpoints as ckpt
from deepfake_lab import gan


def _line(scores: dict) -> str:
    line = (f"{scores['confident_share']:6.1%} confident, mean {scores['mean_confidence']:.3f}, "
            f"{scores['classes_covered']:2d} classes, FID {scores.get('fid_heldout', float('nan')):.3f}")
    return line + (f", code = digit {scores['code_agreement']:.1%}" if "code_agreement" in scores else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a GAN run folder (step-*.safetensors inside)")
    args = parser.parse_args(argv)
    steps = sorted(args.run.glob("step-*.safetensors"))
    if not steps:
        print(f"{args.run}: no step-*.safetensors checkpoints; give a GAN run folder", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    for path in steps:
        try:
            G, config = gan.load_generator(path)
        except ckpt.CheckpointError as err:  # another lesson's run, a damaged file: one line, no traceback
            print(f"gan_checkpoints: {err}", file=sys.stderr)
            return 2
        scores = gan.evaluate_generator(G, config)
        if "confident_share" not in scores:
            print(f"{args.run}: a run on --data {config.data}; this script scores digit runs (mnist-subset, digits) "
                  "and needs the digit classifier's weights (deepfake_lab/assets/weights/digit-classifier.safetensors)",
                  file=sys.stderr)
            return 2
        line = f"{path.stem}  G: {_line(scores)}"
        state_file = path.with_suffix(".state.pt")
        average = ckpt.load_state(state_file)["extra"].get("G_ema") if state_file.exists() else None
        if average is not None:
            E = gan.build_generator(config)
            E.load_state_dict(average)
            gan.average_statistics(E, config)  # as GANModel.inference_generator does before it exports
            line += f"   average: {_line(gan.evaluate_generator(E, config))}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
