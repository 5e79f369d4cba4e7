"""The one training loop every lesson uses.

A lesson supplies a :class:`LessonModel` (its networks, optimizers and one training step, in the
three verbs of the official CycleGAN/pix2pix code: ``set_input``, ``forward``,
``optimize_parameters``); :func:`fit` supplies everything around it:

* the device and mixed-precision policy (:mod:`deepfake_lab.device`),
* the data order: a seeded, resumable, rank-aware batch sampler; each item gets its own seed, so
  random augmentations come out the same however many workers load them,
* a tqdm progress bar, loss logs (``losses.csv`` and TensorBoard event files under ``tb/``),
* sample grids saved as PNG every ``sample_every`` steps (labelled synthetic),
* checkpoints every ``checkpoint_every`` steps, at the end, and on Ctrl-C/SIGTERM (the signal is
  deferred to the end of the current step, so a checkpoint never holds half a step),
* **exact resume**: weights, optimizers, schedulers, RNG states, the step counter and the data
  position are all restored, so an interrupted-and-resumed run ends with bit-identical weights to an
  uninterrupted one (``tests/test_train_loop.py`` checks this, including after SIGKILL); a latest
  checkpoint that cannot be read (truncated, empty, a garbage ``latest.json``) is reported, moved aside
  as ``*.broken`` and the intact one before it is used.
"""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .checkpoints import config_from_dict, config_to_dict
from .device import Precision, mix_seeds, seed_everything
from .distributed import assert_in_sync, dist_info, init_distributed, unwrap_distributed, wrap_distributed
from .run_folder import (checkpoint_paths, latest_checkpoint, load_checkpoint, read_checkpoint, restore_latest,
                         save_checkpoint)

__all__ = ["LessonModel", "LoopConfig", "TrainResult", "fit", "ResumableBatchSampler", "SeededDataset",
           "read_log", "linear_decay",
           # re-exported from the modules that hold them, for code that imports them from the loop
           "config_to_dict", "config_from_dict", "dist_info", "latest_checkpoint", "load_checkpoint",
           "read_checkpoint", "restore_latest", "save_checkpoint", "checkpoint_paths", "assert_in_sync"]


# --------------------------------------------------------------------------------------------
# The model side: what a lesson implements
# --------------------------------------------------------------------------------------------
class LessonModel:
    """Base class of every lesson's trainable model.

    Subclasses set ``kind`` (the lesson's name), ``Config`` (a dataclass whose defaults are the
    paper's), fill ``self.nets``, ``self.opts`` and ``self.scheds`` (dicts name -> object) in
    ``__init__``, and implement the three verbs. Schedulers are stepped by the loop after every
    step, so build them in units of steps.
    """

    kind: ClassVar[str] = "base"
    Config: ClassVar[type]
    #: networks needed at inference time (exported as demo weights); the rest are training-only
    inference_nets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config, device: str | torch.device = "cpu", precision: Precision | None = None):
        self.config = config
        self.device = torch.device(device)
        self.precision = precision or Precision(self.device.type, None)
        self.nets: dict[str, torch.nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.scheds: dict[str, Any] = {}

    # -- the three verbs ------------------------------------------------------------------
    def set_input(self, batch) -> None:
        """Take one batch from the data loader and move it to the device."""
        raise NotImplementedError

    def forward(self):
        """Run the generator(s) on the current input (used by both training and inference)."""
        raise NotImplementedError

    def optimize_parameters(self) -> dict[str, float]:
        """One training step on the current input; return the losses as floats for logging."""
        raise NotImplementedError

    # -- optional hooks -------------------------------------------------------------------
    def sample_images(self):
        """Images to save as a sample grid: a (N, C, H, W) tensor in [-1, 1], a PIL image, or None."""
        return None

    def on_nets_wrapped(self) -> None:
        """Called after the loop wrapped ``self.nets`` for DDP, and after it unwrapped them at the end; override if the
        model caches network references."""

    def extra_state(self) -> dict[str, Any]:
        """Training state beyond weights/optimizers/schedulers (e.g. CycleGAN's image pools)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def train(self) -> "LessonModel":
        for net in self.nets.values():
            net.train()
        return self

    def eval(self) -> "LessonModel":
        for net in self.nets.values():
            net.eval()
        return self

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.nets.items()}


# --------------------------------------------------------------------------------------------
# The data side: a resumable, seeded order
# --------------------------------------------------------------------------------------------
class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Shuffled batches of ``(index, item_seed)``, reproducible from ``(seed, epoch)`` and resumable mid-epoch.

    Every epoch is a fresh permutation drawn from ``seed`` and the epoch number; in a torchrun job each
    rank takes every ``world_size``-th index of it (like ``DistributedSampler``). Incomplete batches are
    dropped, so every epoch has the same number of steps and ``step -> (epoch, position)`` is exact.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        if n_items < batch_size * world_size:
            raise ValueError(
                f"the data set has {n_items} item(s), fewer than one batch ({batch_size} x {world_size} process(es)); "
                "add data or lower --batch-size")
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return (self.n_items // self.world_size) // self.batch_size

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seeds(self.seed, self.epoch))
            order = torch.randperm(self.n_items, generator=g).tolist()
        else:
            order = list(range(self.n_items))
        mine = order[self.rank::self.world_size]
        for b in range(self.start, self.batches_per_epoch):
            idx = mine[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(i, mix_seeds(self.seed, self.epoch, self.rank, b, j)) for j, i in enumerate(idx)]


class SeededDataset(Dataset):
    """Wrap a data set so each item is loaded under its own RNG seed (from the sampler).

    Random crops and flips then come out the same in the main process or any worker, before or after
    a resume. The global RNG of the calling process is left untouched. A data set whose items involve
    no randomness can say so with a class attribute ``random_items = False`` and skip the seeding.
    """

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list:
        """A whole batch at once (the DataLoader calls this): save the RNG states once, seed per item, restore."""
        if not getattr(self.base, "random_items", True):  # a data set without random augmentation
            return [self.base[index] for index, _ in keys]
        torch_state, py_state = torch.get_rng_state(), random.getstate()
        try:
            items = []
            for index, item_seed in keys:
                # data loading runs on the CPU: seed only the CPU generator (torch.manual_seed would also
                # queue a seeding of every CUDA device, which costs ~100x more per item)
                torch.default_generator.manual_seed(item_seed)
                random.seed(item_seed)
                items.append(self.base[index])
            return items
        finally:
            torch.set_rng_state(torch_state)
            random.setstate(py_state)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
@dataclass
class LoopConfig:
    """How long to train and what to write; the model's own hyper-parameters live in its Config."""

    steps: int = 1000
    batch_size: int = 64
    out_dir: str = "runs/run"
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 500
    keep_last: int = 3
    num_workers: int = 0
    resume: bool = True
    progress: bool = True
    tensorboard: bool = True
    #: stop after this many steps *in this call* (for tests and demos of resuming); None = run to ``steps``
    stop_after: int | None = None


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    losses: dict[str, float] = field(default_factory=dict)
    weights: Path | None = None
    interrupted: bool = False
    seconds: float = 0.0
    #: the checkpoint step this session resumed from; None when it started from scratch
    resumed_from: int | None = None


class _DeferredInterrupt:
    """Turn SIGINT/SIGTERM into a flag checked between steps; a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handler(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread (e.g. inside a web app): no handlers
            self._old = {}
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _save_sample(model: LessonModel, path: Path, step: int) -> None:
    from .provenance import save_labelled_png
    from .viz import to_grid_image

    images = model.sample_images()
    if images is None:
        return
    image = to_grid_image(images) if torch.is_tensor(images) else images
    save_labelled_png(image, path, {"model": model.kind, "step": step, "what": "training sample grid"})


def fit(model: LessonModel, dataset: Dataset, cfg: LoopConfig) -> TrainResult:
    """Train ``model`` on ``dataset`` for ``cfg.steps`` steps (resuming from ``cfg.out_dir`` if it has a checkpoint)."""
    run_dir = Path(cfg.out_dir)
    rank, world = init_distributed(model.device)
    is_main = rank == 0
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed + rank)

    log = (lambda message: print(message, file=sys.stderr)) if is_main else None
    # every rank reads the checkpoint; only rank 0 moves broken files aside (the others skip them)
    resumed = restore_latest(model, run_dir, move_broken=is_main, log=log) if cfg.resume else None
    step = resumed or 0
    if resumed is not None:
        if is_main:
            print(f"resuming {run_dir} from step {step}", file=sys.stderr)
    elif is_main:
        (run_dir / "config.json").write_text(json.dumps(
            {"kind": model.kind, "model": config_to_dict(model.config), "loop": asdict(cfg)}, indent=2))

    if world > 1:
        wrap_distributed(model)
    sampler = ResumableBatchSampler(len(dataset), cfg.batch_size, cfg.seed, rank, world)
    # the loader gets its own generator: creating an iterator must not draw from the global RNG, or a
    # resumed run (which starts an iterator mid-epoch) would drift from an uninterrupted one
    loader = DataLoader(SeededDataset(dataset), batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=model.device.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    bpe = sampler.batches_per_epoch

    log_rows: list[dict[str, float]] = []
    csv_path = run_dir / "losses.csv"
    writer = None
    if is_main:
        _truncate_log(csv_path, step)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                writer = SummaryWriter(str(run_dir / "tb"), purge_step=step if step else None)
            except ImportError:  # tensorboard not installed: CSV only
                writer = None

    target = cfg.steps if cfg.stop_after is None else min(cfg.steps, step + cfg.stop_after)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {model.kind}", disable=not (cfg.progress and is_main),
               dynamic_ncols=True)
    last_saved = step
    losses: dict[str, float] = {}
    interrupted = False
    started = time.perf_counter()
    model.train()
    with _DeferredInterrupt() as stop:
        while step < target and not stop.requested:
            epoch, position = divmod(step, bpe)
            sampler.set_position(epoch, position)
            for batch in loader:
                model.set_input(batch)
                losses = model.optimize_parameters()
                for sched in model.scheds.values():
                    sched.step()
                step += 1
                bar.update(1)
                if is_main and (step % cfg.log_every == 0 or step == target):
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()})
                    row = {"step": step, "epoch": epoch, **losses}
                    _append_log(csv_path, row)
                    log_rows.append(row)
                    if writer is not None:
                        for k, v in losses.items():
                            writer.add_scalar(f"loss/{k}", v, step)
                if is_main and cfg.sample_every and step % cfg.sample_every == 0:
                    model.eval()
                    with torch.no_grad():
                        _save_sample(model, run_dir / "samples" / f"step-{step:07d}.png", step)
                    model.train()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    save_checkpoint(model, run_dir, step, cfg.keep_last)
                    last_saved = step
                if world > 1:  # every rank stops at the same step, or the next collective would hang
                    flag = torch.tensor([float(stop.requested)], device=model.device)
                    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                    stop.requested = bool(flag.item())
                if step >= target or stop.requested:
                    break
        interrupted = stop.requested
    bar.close()
    weights = None
    if step != last_saved or not checkpoint_paths(run_dir, step)[0].exists():
        save_checkpoint(model, run_dir, step, cfg.keep_last)
    if is_main:
        weights = checkpoint_paths(run_dir, step)[0]
        if writer is not None:
            writer.close()
        if interrupted:
            print(f"interrupted: checkpoint saved at step {step} in {run_dir}; run the same command to resume",
                  file=sys.stderr)
    if world > 1:
        assert_in_sync(model)
        unwrap_distributed(model)  # callers evaluate and export the networks themselves
    return TrainResult(run_dir, step, losses, weights, interrupted, time.perf_counter() - started, resumed)


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log rows written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], [r for r in rows[1:] if r and int(r[0]) <= step]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(body)


def _append_log(path: Path, row: dict[str, float]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f))
    else:
        header = list(row)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_log(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The loss log of a run as a list of dicts (for plots in the notebooks)."""
    path = Path(run_dir) / "losses.csv"
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def linear_decay(total_steps: int, decay_steps: int):
    """The official CycleGAN/pix2pix schedule as a LambdaLR factor: constant, then linear to 0 over ``decay_steps``."""
    start = max(total_steps - decay_steps, 0)

    def factor(step: int) -> float:
        return 1.0 - max(0, step - start) / float(decay_steps + 1)

    return factor
