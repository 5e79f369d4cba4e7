"""A run folder's checkpoints: writing them atomically, finding the newest intact one, resuming exactly.

A run folder (``--out``) holds ``step-NNNNNNN.safetensors`` (the weights) and ``step-NNNNNNN.state.pt``
(optimizers, schedulers, RNG states, data position, the model's extra state; read with
``weights_only=True``) for the last few steps, and ``latest.json`` naming the newest. Each file is
written to a temporary name and moved into place, so a crash leaves the old checkpoint whole.

Resuming (:func:`restore_latest`) tries the newest checkpoint first; one that cannot be read (truncated,
0 bytes, a damaged ``latest.json``) is reported in one line and moved aside as ``*.broken``, and the
next older one is used, so a broken file costs at most one checkpoint interval.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoints as ckpt
from .checkpoints import config_to_dict
from .device import mix_seeds, seed_everything
from .distributed import dist_info, unwrap

__all__ = ["checkpoint_paths", "latest_checkpoint", "read_checkpoint", "save_checkpoint", "load_checkpoint",
           "restore_latest", "open_weights", "rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_paths(run_dir: Path, step: int) -> tuple[Path, Path]:
    return run_dir / f"step-{step:07d}.safetensors", run_dir / f"step-{step:07d}.state.pt"


def latest_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, Path, int] | None:
    """The newest complete checkpoint of a run folder: the one its ``latest.json`` names or, when that
    pointer is missing, empty, garbage or names files that are gone, the highest step whose two files
    are both there. ``None`` if there is none. The files are not opened here: :func:`fit` reads them,
    and falls back to an older checkpoint when one turns out to be corrupt."""
    steps, _, _ = _candidate_steps(Path(run_dir))
    if not steps:
        return None
    return (*checkpoint_paths(Path(run_dir), steps[0]), steps[0])


def _read_pointer(run_dir: Path) -> tuple[int | None, str | None]:
    """``latest.json``'s step and what is wrong with it, if anything (``(None, None)``: no pointer;
    ``(step, problem)`` when it names a step whose files are not both there)."""
    pointer = run_dir / "latest.json"
    if not pointer.exists():
        return None, None
    text = pointer.read_text(errors="replace")
    if not text.strip():
        return None, f"empty ({len(text.encode())} bytes)"
    try:
        step = json.loads(text)["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise TypeError(step)
    except (ValueError, KeyError, TypeError, IndexError):  # JSONDecodeError is a ValueError
        return None, f"not a checkpoint pointer (starts {text[:24]!r})"
    absent = [p.name for p in checkpoint_paths(run_dir, step) if not p.exists()]
    if absent:
        return step, f"names step {step}, but {' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing"
    return step, None


def _candidate_steps(run_dir: Path) -> tuple[list[int], int | None, str | None]:
    """Steps to try resuming from, best first (the pointer's step, then every step whose weights and
    state files are both in the folder, newest first), the step the pointer names, and what is wrong
    with the pointer, if anything."""
    named, problem = _read_pointer(run_dir)
    pointed = None if problem else named
    found = []
    for weights in run_dir.glob("step-*.safetensors"):
        digits = weights.name[len("step-"):-len(".safetensors")]
        if digits.isdigit() and checkpoint_paths(run_dir, int(digits))[1].exists():
            found.append(int(digits))
    found.sort(reverse=True)
    return ([pointed] if pointed is not None else []) + [s for s in found if s != pointed], named, problem


class _UnreadableCheckpoint(ckpt.CheckpointError):
    """A checkpoint file that is there but cannot be read back: truncated, empty, overwritten."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def _what_is_wrong(path: Path, err: Exception) -> str:
    """``missing``, ``empty (0 bytes)`` or ``truncated or damaged (N bytes; the reader's first sentence)``."""
    if not path.exists():
        return "missing"
    size = path.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    cause = err.__cause__ or err
    detail = str(cause).removeprefix(f"{path}: ").split(". ")[0].strip() or type(cause).__name__
    return f"truncated or damaged ({size:,} bytes; {detail})"


def read_checkpoint(weights: Path, state_path: Path, step: int | None = None) -> tuple[dict, dict, dict]:
    """Both files of a checkpoint, read into memory: ``(networks, metadata, training state)``.

    A file that cannot be read (truncated, empty, not a checkpoint of ``step``) raises
    :class:`~deepfake_lab.checkpoints.CheckpointError` naming that file; nothing is applied to a model yet.
    """
    try:
        nets, meta = ckpt.load_weights(weights)
    except (ValueError, OSError) as err:  # CheckpointError is a ValueError
        raise _UnreadableCheckpoint(weights, _what_is_wrong(weights, err)) from err
    try:
        state = ckpt.load_state(state_path)
    except (ValueError, OSError) as err:
        raise _UnreadableCheckpoint(state_path, _what_is_wrong(state_path, err)) from err
    lacking = [k for k in ("optimizers", "schedulers", "rng") if k not in state]
    if lacking:
        raise _UnreadableCheckpoint(state_path, f"lacks {', '.join(lacking)}: not a training state of this loop")
    if step is not None and (int(state["step"]) != step or meta.get("step", str(step)) != str(step)):
        raise _UnreadableCheckpoint(state_path, f"the files hold steps {meta.get('step')} and {state['step']}, "
                                                f"not {step}")
    return nets, meta, state


def _gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's RNG state (rank order); a single-process run has one."""
    mine = rng_state()
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [mine]
    states: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(states, mine)
    return states


def save_checkpoint(model, run_dir: Path, step: int, keep_last: int = 3) -> Path | None:
    """Write weights + state for ``step`` atomically, move ``latest.json`` to it, drop old ones.

    Call it on every rank of a torchrun job: all ranks hand their RNG state to rank 0, which alone writes.
    """
    rng_states = _gather_rng_states()
    rank, _ = dist_info()
    if rank != 0:
        return None
    weights, state_path = checkpoint_paths(run_dir, step)
    ckpt.save_weights(weights, {k: unwrap(v) for k, v in model.nets.items()}, model.kind,
                      config_to_dict(model.config), extra={"step": str(step)})
    state = {
        "step": step,
        "kind": model.kind,
        "optimizers": {k: v.state_dict() for k, v in model.opts.items()},
        "schedulers": {k: v.state_dict() for k, v in model.scheds.items()},
        "rng": rng_states[0],
        "rng_ranks": rng_states,
        "extra": model.extra_state(),
    }
    ckpt.save_state(state_path, state)
    ckpt.atomic_write(run_dir / "latest.json",
                      lambda tmp: Path(tmp).write_text(json.dumps({"step": step, "weights": weights.name})))
    kept = sorted(run_dir.glob("step-*.safetensors"))
    for old in kept[:-keep_last] if keep_last > 0 else []:
        old.unlink(missing_ok=True)
        old.with_name(old.name.replace(".safetensors", ".state.pt")).unlink(missing_ok=True)
    return weights


def load_checkpoint(model, weights: Path, state_path: Path) -> int:
    """Restore everything :func:`save_checkpoint` wrote; return the step."""
    return _apply_checkpoint(model, weights, state_path, *read_checkpoint(weights, state_path))


def _apply_checkpoint(model, weights: Path, state_path: Path, nets: dict, meta: dict,
                      state: dict) -> int:
    """Put a checkpoint read by :func:`read_checkpoint` into ``model``, its optimizers and the RNGs."""
    if meta.get("kind") != model.kind:
        raise ckpt.CheckpointError(f"{weights}: a {meta.get('kind')!r} checkpoint, not {model.kind!r}; "
                                   "use a fresh --out folder or the matching lesson")
    for name, net in model.nets.items():
        if name not in nets:
            raise ckpt.CheckpointError(f"{weights}: has no weights for network {name!r}")
        try:
            unwrap(net).load_state_dict(nets[name])
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise ckpt.CheckpointError(f"{weights}: network {name!r} does not fit this model ({first}); resume with "
                                       "the options the run started with, or start over with --no-resume") from err
    for name, opt in model.opts.items():
        if name not in state["optimizers"]:
            raise ckpt.CheckpointError(f"{state_path}: has no optimizer state for {name!r}; start over with "
                                       "--no-resume")
        opt.load_state_dict(state["optimizers"][name])
    for name, sched in model.scheds.items():
        if name not in state["schedulers"]:
            raise ckpt.CheckpointError(f"{state_path}: has no scheduler state for {name!r}; start over with "
                                       "--no-resume")
        sched.load_state_dict(state["schedulers"][name])
    model.load_extra_state(state.get("extra", {}))
    rank, world = dist_info()
    per_rank = state.get("rng_ranks") or [state["rng"]]
    if len(per_rank) == world:
        set_rng_state(per_rank[rank])  # exact: same world size as the run that saved it
    else:
        # another world size: a checkpoint from 2 processes resumed in 1 (or vice versa) continues
        # correctly but not bit-identically; give each rank its own stream
        seed_everything(mix_seeds(int(state["step"]), rank) % 2**31)
    return int(state["step"])


def _move_aside(path: Path) -> Path | None:
    """Rename ``path`` to ``<name>.broken`` (``.broken2``, ... if taken) in its folder; never delete it."""
    if not path.exists():
        return None
    aside, n = path.with_name(f"{path.name}.broken"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.broken{n}")
    os.rename(path, aside)
    return aside


def restore_latest(model, run_dir: Path, move_broken: bool = True, log=None) -> int | None:
    """Restore the newest intact checkpoint of ``run_dir`` into ``model``; return its step (``None``: none there).

    A checkpoint that cannot be read (a truncated or 0-byte weights or state file), or a ``latest.json``
    that is empty, garbage or names files that are gone, is reported in one line through ``log``, moved
    aside as ``<name>.broken`` (with ``move_broken``; never deleted) so that the next save does not land
    on it, and the checkpoint before it is tried: a corrupt latest checkpoint costs at most one checkpoint
    interval. When checkpoints were there but none is intact, CheckpointError says so and what to do.
    """
    log = log or (lambda message: None)
    pointer = run_dir / "latest.json"
    steps, named, problem = _candidate_steps(run_dir)

    def move_aside(*paths: Path) -> str:
        moved = [_move_aside(p) for p in paths] if move_broken else []
        names = ", ".join(p.name for p in moved if p is not None)
        return f" (moved aside: {names})" if names else ""

    broken: list[str] = []
    if problem:  # with the pointer goes what is left of the step it names (one of its two files is missing)
        aside = move_aside(pointer, *(checkpoint_paths(run_dir, named) if named is not None else ()))
        log(f"{pointer}: {problem}{aside}; looking for the newest intact checkpoint in the folder")
        broken.append(f"latest.json: {problem}")
    for step in steps:
        weights, state_path = checkpoint_paths(run_dir, step)
        try:
            checkpoint = read_checkpoint(weights, state_path, step)
        except _UnreadableCheckpoint as err:
            # the whole step goes aside, and the pointer too if it names this step: the next save rewrites it
            aside = move_aside(weights, state_path, *([pointer] if step == named else []))
            log(f"{err.path}: {err.problem}; step {step} cannot be resumed from{aside}; trying an older checkpoint")
            broken.append(f"{err.path.name}: {err.problem}")
            continue
        return _apply_checkpoint(model, weights, state_path, *checkpoint)
    if broken:
        raise ckpt.CheckpointError(
            f"{run_dir}: no intact checkpoint to resume from ({'; '.join(broken)}); the broken files are kept as "
            "*.broken. Start over with --no-resume (or give a new --out folder)")
    return None


def open_weights(path: str | os.PathLike, kind: str, *, networks: tuple[str, ...] = (),
                 official_hint: str | None = None) -> tuple[dict[str, dict[str, torch.Tensor]], dict, Path]:
    """Open a weights file of lesson ``kind`` for loading: ``(nets, meta, file)``.

    The one way every lesson's ``load_*`` reads its file: ``path`` is a safetensors file (exported demo
    weights, a training checkpoint, an imported official file) or a run folder (its newest intact
    checkpoint). An official PyTorch checkpoint (``.pth``/``.pt``) is refused with ``official_hint`` (how
    to import it); a file of another lesson, or one missing any of ``networks``, with what it holds.
    """
    path = Path(path)
    if path.suffix in (".pth", ".pt") and official_hint:
        raise ckpt.CheckpointError(f"{path}: an official PyTorch checkpoint, not a weights file of this package; "
                                   f"{official_hint}")
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise ckpt.CheckpointError(f"{path}: a folder without a checkpoint (no latest.json); give a .safetensors "
                                       f"file or the --out folder of `deepfake-lab train {kind}`")
        path = found[0]
    nets, meta = ckpt.load_weights(path)
    if meta.get("kind") != kind:
        raise ckpt.CheckpointError(f"{path}: holds a {meta.get('kind')!r} model, not {kind}; give weights "
                                   f"written by `deepfake-lab train {kind}`")
    missing = [n for n in networks if n not in nets]
    if missing:
        raise ckpt.CheckpointError(f"{path}: has no weights for {', '.join(missing)}; it holds "
                                   f"{', '.join(sorted(nets)) or 'none'}")
    return nets, meta, path
