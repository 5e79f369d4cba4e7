"""The flags the commands share: the training loop's (every ``deepfake-lab train <lesson>``) and the device's."""
from __future__ import annotations

import argparse
from dataclasses import fields, replace

from ..errors import UserError
from ..train import LoopConfig

__all__ = ["add_device_arguments", "add_loop_arguments", "loop_config_from_args"]


def add_device_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto: bf16 autocast where it is faster for this model (default)")


def add_loop_arguments(p: argparse.ArgumentParser, presets=None) -> None:
    """The flags every ``deepfake-lab train <lesson>`` shares; unset ones come from the preset."""
    g = p.add_argument_group("training loop")
    if presets:
        names = list(presets)
        g.add_argument("--preset", default="default" if "default" in names else names[0], choices=sorted(names),
                       help="a named set of defaults (demo: small enough for a laptop CPU)")
    g.add_argument("--steps", type=int, help="total optimizer steps")
    g.add_argument("--epochs", type=int, help="when --steps is not given: train this many epochs")
    g.add_argument("--batch-size", type=int, help="images (or points) per step, per process")
    g.add_argument("--out", help="run folder: checkpoints, samples, losses.csv, tb/ (default runs/<lesson>)")
    g.add_argument("--seed", type=int, help="random seed of the initial weights and the data order (default 0)")
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
