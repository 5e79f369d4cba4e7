"""``deepfake-lab train <lesson>``: one command for every lesson of the table.

What it does, in order, the same for every lesson:

1. the preset (``--preset``) gives the model config and the loop config; the lesson's own flags
   (its :class:`~deepfake_lab.lessons.Flag` s) override config fields, the loop flags the loop;
2. the training data (``--data``) is opened before any network exists, so a wrong folder costs nothing;
3. the device (``--device``) and the precision policy (``--precision``) are chosen;
4. **the run's seed is set, then the networks are built**: ``--seed`` fixes the initial weights of
   every lesson (and the data order, through the loop); ``--init FILE`` then starts them from a weights
   file instead (fine-tuning: the lesson's demo weights or an earlier export; an official checkpoint goes through
   ``deepfake-lab import`` first);
5. :func:`deepfake_lab.train.fit` trains (progress bar, logs, atomic checkpoints, exact resume, DDP
   under torchrun);
6. the lesson's held-out evaluation runs on rank 0 and goes to the screen and ``metrics.json``;
7. ``--export FILE`` writes the demo-weights file with the run's details (steps, seed, data, times,
   metrics) in its metadata.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..errors import UserError
from ..lessons import LESSONS, Lesson
from ..settings import quick_mode

__all__ = ["add_commands", "train_lesson"]


def add_commands(sub) -> None:
    from .common import add_loop_arguments

    train = sub.add_parser("train", help="train a lesson's model on the shared loop")
    train_sub = train.add_subparsers(dest="lesson", metavar="LESSON")
    for row in LESSONS:
        p = train_sub.add_parser(
            row.name, help=f"lesson {row.number}: {row.title} ({row.paper})",
            description=f"Train lesson {row.number}, {row.title} ({row.paper}), on the shared loop. Presets: "
                        f"{', '.join(row.preset_names)} (default: the paper's settings; demo: small enough for a "
                        "laptop CPU).")
        p.add_argument("--data", default=row.default_data, help=row.data_help)
        for flag in row.flags:
            if flag.switch:
                p.add_argument(flag.name, dest=flag.dest, action="store_const", const=flag.value, default=None,
                               help=flag.help)
            else:
                p.add_argument(flag.name, dest=flag.dest, type=flag.type, choices=flag.choices, help=flag.help)
        p.add_argument("--init", metavar="FILE", help="start the networks from this weights file (fine-tuning: "
                                                      "the lesson's demo weights or a file written by --export) "
                                                      "instead of random weights; a checkpoint in --out still wins")
        p.add_argument("--export", metavar="FILE", help="after training, write the inference networks as fp16 "
                                                        "safetensors here (the demo weights' format)")
        add_loop_arguments(p, row.preset_names)
        p.set_defaults(func=_command, lesson_row=row)


def _config_from_flags(row: Lesson, config, args: argparse.Namespace):
    changes = {f.field: getattr(args, f.dest) for f in row.flags
               if f.field is not None and getattr(args, f.dest, None) is not None}
    return replace(config, **changes)


def _steps(row: Lesson, loop, args: argparse.Namespace, dataset):
    """The run's length: ``--steps``; else ``--epochs`` or the paper's epochs when the preset says 0; quick mode."""
    batch = args.batch_size or loop.batch_size
    if args.steps is None and (args.epochs or (loop.steps == 0 and row.epochs)):
        loop = replace(loop, steps=max(1, (args.epochs or row.epochs) * (len(dataset) // batch)))
    return loop


def _config_key(config) -> str:
    """A short fingerprint of a model config, for the precision verdict's cache key."""
    from ..train import config_to_dict

    text = json.dumps(config_to_dict(config), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def training_probe(model, dataset, batch_size: int):
    """A ``probe(precision)`` for the precision policy: one training step of ``model`` on the first batch of
    ``dataset`` under that precision, with the weights, optimizer state, extra state and random state put back
    afterwards, so probing changes nothing about the run."""
    import copy
    import random

    import numpy as np
    import torch
    from torch.utils.data import default_collate

    def snapshot():
        return copy.deepcopy({"nets": {k: n.state_dict() for k, n in model.nets.items()},
                              "opts": {k: o.state_dict() for k, o in model.opts.items()},
                              "extra": model.extra_state()})

    def probe(precision) -> None:
        saved, before = snapshot(), model.precision
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
                batch = default_collate([dataset[i] for i in range(min(batch_size, len(dataset)))])
                model.precision = precision
                model.set_input(batch)
                model.optimize_parameters()
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            model.precision = before
            for k, net in model.nets.items():
                net.load_state_dict(saved["nets"][k])
            for k, opt in model.opts.items():
                opt.load_state_dict(saved["opts"][k])
            model.load_extra_state(saved["extra"])

    return probe


def init_networks(model, path: str) -> str:
    """Copy the networks of the weights file ``path`` (this package's safetensors format, e.g. a lesson's demo
    weights or an ``--export``) into ``model``'s networks of the same names, in fp32; return the file's SHA-256
    for the export's metadata. The file must be of the model's kind and hold every inference network."""
    from ..checkpoints import CheckpointError, load_weights
    from ..weights import sha256_file

    where = f"--init {path}"
    try:
        nets, meta = load_weights(path)
    except CheckpointError as err:  # its message starts with the file's name, already in ``where``
        problem = str(err).removeprefix(f"{path}: ").split("; give")[0].rstrip(".")  # its own advice is replaced
        raise UserError(f"{where}: {problem}; give a .safetensors file of this lesson (its demo weights, or one "
                        f"written by `train {model.kind} --export`)") from None
    if meta.get("kind") != model.kind:
        raise UserError(f"{where}: holds {meta.get('kind')!r} weights, not {model.kind!r}; give a weights file of "
                        f"this lesson (its demo weights, or a file written by `train {model.kind} --export`)")
    for name in model.inference_nets or tuple(model.nets):
        if name not in nets:
            raise UserError(f"{where}: has no {name!r} network (it holds {', '.join(sorted(nets))}); give a file "
                            f"written by `train {model.kind} --export`")
        state = {k: v.float() if v.is_floating_point() else v for k, v in nets[name].items()}
        try:
            model.nets[name].load_state_dict(state)
        except RuntimeError as err:
            detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
            raise UserError(f"{where}: its {name!r} does not fit the networks of this --preset and these flags "
                            f"({detail}); use the preset and flags the file was trained with") from None
    return sha256_file(path)


def _command(args: argparse.Namespace) -> int:
    return train_lesson(args.lesson_row, args)


def train_lesson(row: Lesson, args: argparse.Namespace) -> int:
    """Train one lesson as the flags in ``args`` say (see the module docstring for the order)."""
    import torch

    from ..device import choose_precision, pick_device, seed_everything
    from ..distributed import init_distributed
    from ..train import fit
    from .common import loop_config_from_args

    if args.preset not in row.preset_names:
        raise UserError(f"--preset {args.preset}: {row.name} has {', '.join(row.preset_names)}")
    config, loop = row.preset(args.preset, args.data)
    config = _config_from_flags(row, config, args)
    options = vars(args)
    if row.configure is not None:
        config = row.configure(config, options)

    dataset = row.dataset(config, args.data, options)
    loop = _steps(row, loop, args, dataset)
    if quick_mode() and args.steps is None and row.quick is not None:
        loop = row.quick(loop, config)
    loop = loop_config_from_args(args, loop)

    device = pick_device(args.device)
    seed_everything(loop.seed)  # before any network exists: the seed fixes the initial weights
    model = row.model(config, device, None, loop.steps)
    init_sha = init_networks(model, args.init) if getattr(args, "init", None) else None
    rank, world = init_distributed(device)  # a no-op outside torchrun
    choice = [None]
    if rank == 0:  # one measurement for the job: every rank must run the same precision
        choice[0] = choose_precision(
            device, args.precision, key=f"{row.name} training step, batch {loop.batch_size}, {_config_key(config)}",
            bf16_ok=getattr(config, "bf16_ok", True), probe=training_probe(model, dataset, loop.batch_size))
    if world > 1:
        torch.distributed.broadcast_object_list(choice, src=0)
    model.precision = precision = choice[0]
    about = row.describe(model, config, dataset) if row.describe else row.name
    if rank == 0:  # under torchrun, one line for the run, not one per process
        print(f"{about}; {loop.steps:,} steps of batch {loop.batch_size} on {device}, seed {loop.seed}; precision "
              f"{precision.describe()}", file=sys.stderr)

    cpu_start = time.process_time()
    result = fit(model, dataset, loop)
    cpu_seconds = time.process_time() - cpu_start
    if rank == 0:  # what this run folder cost over all its sessions (a resumed run adds to it)
        total_seconds, total_cpu = _add_time(Path(result.run_dir), result.seconds, cpu_seconds,
                                             fresh=result.resumed_from is None)
    if rank == 0:  # which file the run started from: kept in the run folder, so a resumed run still knows
        _record_init(Path(result.run_dir), init_sha, fresh=result.resumed_from is None)
    if result.interrupted:
        print(f"stopped at step {result.step} of {loop.steps}: not evaluated or exported; run the same command to "
              "resume", file=sys.stderr)
        return 130
    if rank != 0:  # rank 0 alone evaluates and writes
        return 0

    if row.after_training is not None:
        note = row.after_training(model, dataset, loop)
        if note:
            print(note, file=sys.stderr)
    model.eval()
    metrics = row.evaluate(model, config, args.data) if row.evaluate is not None else None
    model.train()
    summary = {"lesson": row.name, "data": str(args.data), "step": result.step, "seconds": round(total_seconds, 1),
               "cpu_seconds": round(total_cpu, 1), "device": str(device), "precision": precision.name,
               "seed": loop.seed, "metrics": metrics}
    (Path(result.run_dir) / "metrics.json").write_text(json.dumps(summary, indent=2))
    print(f"trained to step {result.step} in {result.seconds:.1f} s (CPU time of this process {cpu_seconds:.1f} s; "
          f"of the run folder, all sessions: {total_seconds:.1f} s, CPU {total_cpu:.1f} s); weights {result.weights}")
    if metrics:
        print("metrics: " + json.dumps(metrics))
    if args.export:
        extra = {"steps": str(result.step), "seed": str(loop.seed), "data": str(args.data),
                 "batch_size": str(loop.batch_size), "train_seconds": f"{total_seconds:.1f}",
                 "cpu_seconds": f"{total_cpu:.1f}", row.metrics_key: metrics}
        started_from = _recorded_init(Path(result.run_dir))
        if started_from:
            extra["init_sha256"] = started_from
        path = row.export(model, config, args.export, extra)
        print(f"exported the inference networks (fp16) to {path or args.export}")
    return 0


#: the training time of a run folder, summed over the sessions that trained it
TIME_FILE = "time.json"


def _add_time(run_dir: Path, seconds: float, cpu_seconds: float, fresh: bool = False) -> tuple[float, float]:
    """Add one session's wall-clock and CPU seconds to ``run_dir/time.json``; return the totals.

    The loop's own timer starts again in every session, so without this a resumed run (or the command run
    once more to export a finished one) would report only its last session. ``fresh``: the session started
    from step 0 (``--no-resume``, or no intact checkpoint), so an earlier record belongs to discarded weights
    and is replaced. A damaged file counts as zero; a session killed before the loop returns is not counted.
    """
    path = run_dir / TIME_FILE
    try:
        if fresh:
            raise FileNotFoundError(path)
        before = json.loads(path.read_text())
        total = (float(before["seconds"]) + seconds, float(before["cpu_seconds"]) + cpu_seconds)
    except (OSError, ValueError, KeyError, TypeError):
        total = (seconds, cpu_seconds)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"seconds": round(total[0], 1), "cpu_seconds": round(total[1], 1)}))
    os.replace(tmp, path)
    return total


#: the SHA-256 of the ``--init`` file a run folder's weights started from
INIT_FILE = "init.json"


def _record_init(run_dir: Path, sha: str | None, fresh: bool) -> None:
    """On a fresh start, note the ``--init`` file's hash in ``run_dir`` (or that there was none); a resumed run
    keeps what its first session noted, whatever ``--init`` says now."""
    if not fresh:
        return
    path = run_dir / INIT_FILE
    if sha is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"init_sha256": sha}))
    os.replace(tmp, path)


def _recorded_init(run_dir: Path) -> str | None:
    try:
        return str(json.loads((run_dir / INIT_FILE).read_text())["init_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
