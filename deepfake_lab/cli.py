"""``deepfake-lab``: the command line.

Each lesson module adds its own commands (``add_commands(subparsers)``) and its training
sub-command (``add_train_command(train_subparsers)``); this file holds only what they share: the
loop and device flags, presets, and turning errors into one clear line instead of a traceback.

    deepfake-lab train gan --data ring8 --out runs/ring8
    deepfake-lab sample --model runs/ring8 -o samples.png
    deepfake-lab demo
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import fields, replace

from .train import LoopConfig

#: modules that add commands, in the order they appear in ``--help``; a missing one is skipped
COMMAND_MODULES = (
    "deepfake_lab.gan",
    "deepfake_lab.cyclegan",
    "deepfake_lab.pix2pix",
    "deepfake_lab.animation",
    "deepfake_lab.faceswap",
    "deepfake_lab.data.fetch",
    "deepfake_lab.metrics",
    "deepfake_lab.app",
)


class UserError(Exception):
    """Wrong input from the user; printed as one line, exit status 2."""


def quick_mode() -> bool:
    """True when ``DEEPFAKE_LAB_QUICK=1``: CI and notebook tests shrink steps and sizes."""
    return os.environ.get("DEEPFAKE_LAB_QUICK", "") not in ("", "0", "false", "False")


def add_device_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto: bf16 autocast where it is faster for this model (default)")


def add_loop_arguments(p: argparse.ArgumentParser, presets: dict[str, object] | None = None) -> None:
    """The flags every ``deepfake-lab train <lesson>`` shares; unset ones come from the preset."""
    g = p.add_argument_group("training loop")
    if presets:
        g.add_argument("--preset", default="default" if "default" in presets else next(iter(presets)),
                       choices=sorted(presets), help="a named set of defaults (demo: small enough for a laptop CPU)")
    g.add_argument("--steps", type=int, help="total optimizer steps")
    g.add_argument("--batch-size", type=int, help="images (or points) per step, per process")
    g.add_argument("--out", help="run folder: checkpoints, samples, losses.csv, tb/ (default runs/<lesson>)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--log-every", type=int)
    g.add_argument("--sample-every", type=int, help="save a sample grid every N steps (0: never)")
    g.add_argument("--checkpoint-every", type=int, help="save a checkpoint every N steps")
    g.add_argument("--keep-last", type=int, help="checkpoints to keep")
    g.add_argument("--num-workers", type=int, help="data loader worker processes")
    g.add_argument("--no-resume", action="store_true", help="start over even if --out has a checkpoint")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_arguments(p)


def loop_config_from_args(args: argparse.Namespace, base: LoopConfig) -> LoopConfig:
    """Override the preset's loop config with the flags the user gave."""
    changes = {}
    for f in fields(LoopConfig):
        value = getattr(args, f.name, None)
        if f.name == "out_dir":
            value = getattr(args, "out", None)
        if value is not None and f.name not in ("resume", "progress"):
            changes[f.name] = value
    if getattr(args, "no_resume", False):
        changes["resume"] = False
    if getattr(args, "no_progress", False):
        changes["progress"] = False
    cfg = replace(base, **changes)
    if cfg.steps < 1:
        raise UserError(f"--steps {cfg.steps}: need at least 1")
    if cfg.batch_size < 1:
        raise UserError(f"--batch-size {cfg.batch_size}: need at least 1")
    return cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepfake-lab",
        description="How deepfakes are made, block by block. Every image it writes is labelled synthetic.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"deepfake_lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a lesson's model on the shared loop")
    train_sub = train.add_subparsers(dest="lesson", metavar="LESSON")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and (err.name == name or name.startswith(err.name + ".")):
                continue  # that lesson has not landed yet
            raise
        if hasattr(module, "add_train_command"):
            module.add_train_command(train_sub)
        if hasattr(module, "add_commands"):
            module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .checkpoints import CheckpointError

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        (parser if args.command != "train" else parser).print_help()
        return 2
    try:
        return int(func(args) or 0)
    except (UserError, CheckpointError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"deepfake-lab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepfake-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
