"""First Order Motion Model speed: the project's fast path against plain fp32 eager, in the same run.

    .venv/bin/python benchmarks/bench_animation.py                     # demo preset (64x64), CPU
    .venv/bin/python benchmarks/bench_animation.py --preset default    # official vox-256 networks at 256x256
    .venv/bin/python benchmarks/bench_animation.py --force-bf16        # also time bf16 autocast where the policy says no

Two measurements, each timed alternately in one process so the machine's noise mostly cancels in the ratios:

* **training step** (keypoints of source, driving and a randomly warped driving frame, generator,
  perceptual + L1 + equivariance losses, backward, two Adam steps): the project's step, under the
  precision policy :func:`deepfake_lab.device.precision_for` (bf16 autocast on CUDA and on CPUs with
  native bf16 where the model's config says it is faster), against the same step in plain fp32;
* **inference** (animating frames): :func:`deepfake_lab.animation.animate`'s path (frames in batches
  of :func:`~deepfake_lab.animation.transfer.default_batch_size`: 8 at 64x64, 1 at 256x256; the
  precision policy) against the official demo's loop (one frame at a time, fp32), in frames per second.

Prints medians and ratios ``fp32 / project`` (> 1: the project's path is faster). On a CPU without
native bf16 (AVX-512-bf16 or AMX) bf16 convolutions fall back to a slow reference kernel, many times
slower than fp32; ``--force-bf16`` shows by how much (with fewer repetitions).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.animation.model import PRESETS, AnimationModel, FirstOrderModel  # noqa: E402
from deepfake_lab.animation.transfer import default_batch_size  # noqa: E402
from deepfake_lab.device import Precision, cpu_supports_bf16, describe, pick_device, precision_for  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fns: dict[str, callable], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Call each function once to warm up, then ``repeats`` times alternately; seconds per call."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def training_step(config, precision: Precision, device: torch.device, batch: dict[str, torch.Tensor]):
    torch.manual_seed(0)
    model = AnimationModel(config, device, precision, total_steps=10 ** 6)
    model.set_input(batch)
    return model.optimize_parameters


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=None, help="training batch (demo 8, default 4)")
    ap.add_argument("--frames", type=int, default=16, help="frames to animate per inference measurement")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--force-bf16", action="store_true", help="also time bf16 autocast even where the policy says no")
    ap.add_argument("--only", choices=("train", "infer"), help="run one of the two measurements")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    config = PRESETS[args.preset]
    batch_size = args.batch or (8 if args.preset == "demo" else 4)
    project = precision_for(device, config.bf16_ok, "auto")
    fp32 = Precision(device.type, None)
    bf16 = Precision(device.type, torch.bfloat16)
    print(f"device: {describe(device)}; native CPU bf16: {cpu_supports_bf16()}; preset {args.preset} "
          f"({config.image_size}x{config.image_size}); project precision: {project.name}")
    s = config.image_size
    g = torch.Generator().manual_seed(0)
    batch = {"source": torch.rand(batch_size, 3, s, s, generator=g) * 2 - 1,
             "driving": torch.rand(batch_size, 3, s, s, generator=g) * 2 - 1}

    slow = project.dtype is None and args.force_bf16 and device.type == "cpu" and not cpu_supports_bf16()
    if args.only != "infer":
        bench_training(config, batch, project, fp32, bf16, args, device, slow)
    if args.only != "train":
        bench_inference(config, default_batch_size(config.image_size), project, fp32, bf16, args, device, slow)
    return 0


def bench_training(config, batch, project, fp32, bf16, args, device, slow) -> None:
    batch_size = batch["source"].shape[0]
    steps = {"fp32 eager": training_step(config, fp32, device, batch),
             "project": training_step(config, project, device, batch)}
    if args.force_bf16 and project.dtype is None:
        steps["bf16 autocast"] = training_step(config, bf16, device, batch)
    train_times = time_calls(steps, 1 if slow else args.repeats, device)
    med = {k: statistics.median(v) for k, v in train_times.items()}
    print(f"\ntraining step, batch {batch_size} ({args.repeats if not slow else 1} repeats, median):")
    for name, t in med.items():
        print(f"  {name:14s} {t:8.3f} s/step   {batch_size / t:7.2f} pairs/s   fp32/this = {med['fp32 eager'] / t:.2f}")


def bench_inference(config, batch_size, project, fp32, bf16, args, device, slow) -> None:
    s = config.image_size
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    model = FirstOrderModel(config).to(device).eval()
    frames = torch.rand(args.frames, 3, s, s, generator=g).to(device)
    source = frames[:1]

    def run(precision: Precision, chunk: int):
        def go():
            with torch.no_grad(), precision.autocast():
                kp_s = model.kp_detector(source)
                for i in range(0, args.frames, chunk):
                    drv = frames[i:i + chunk]
                    n = drv.shape[0]
                    kp_d = model.kp_detector(drv)
                    model.generator(source.expand(n, -1, -1, -1), kp_driving=kp_d,
                                    kp_source={k: v.expand(n, *v.shape[1:]) for k, v in kp_s.items()})
        return go

    infer = {"fp32 eager": run(fp32, 1), "project": run(project, batch_size)}
    if args.force_bf16 and project.dtype is None:
        infer["bf16 autocast"] = run(bf16, batch_size)
    infer_times = time_calls(infer, 1 if slow else args.repeats, device)
    med = {k: statistics.median(v) for k, v in infer_times.items()}
    print(f"\ninference, {args.frames} frames (official loop: 1 frame at a time in fp32; project: batches of "
          f"{batch_size}, {project.name}):")
    for name, t in med.items():
        print(f"  {name:14s} {args.frames / t:8.2f} frames/s   fp32/this = {med['fp32 eager'] / t:.2f}")


if __name__ == "__main__":
    sys.exit(main())
