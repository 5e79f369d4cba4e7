"""One CycleGAN training step: the project's step (its precision policy) against a plain fp32 eager step.

    .venv/bin/python benchmarks/bench_cyclegan.py                      # official networks (ngf 64, 9 blocks) @128
    .venv/bin/python benchmarks/bench_cyclegan.py --size 256           # the paper's training size
    .venv/bin/python benchmarks/bench_cyclegan.py --ngf 16 --ndf 32 --n-blocks 6 --size 64 --batch 4   # demo preset
    .venv/bin/python benchmarks/bench_cyclegan.py --force-bf16         # also time bf16 autocast where the policy says no
    .venv/bin/python benchmarks/bench_cyclegan.py --compile            # also time torch.compile'd networks (fp32)

Both steps are the same :class:`~deepfake_lab.cyclegan.CycleGANModel` step (G and F, then D_X and D_Y;
Adam; image pools), built from the same seed, in the same process, alternating, so the machine's noise
mostly cancels in the ratio. "Project" uses :func:`deepfake_lab.device.precision_for` with the model's
``bf16_ok=True``: bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512-bf16/AMX), where the
ResNet generator runs about 2x faster; fp32 elsewhere (emulated bf16 is many times slower).
Prints medians and ``fp32 / project`` (> 1: the project's step is faster).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.cyclegan import CycleGANConfig, CycleGANModel  # noqa: E402
from deepfake_lab.device import Precision, cpu_supports_bf16, pick_device, precision_for  # noqa: E402


def make_step(config: CycleGANConfig, precision: Precision, device: torch.device, batch: int, size: int,
              compiled: bool = False):
    torch.manual_seed(0)
    model = CycleGANModel(config, device, precision, total_steps=1000)
    if compiled:  # the networks through TorchInductor; the step itself is unchanged
        for name in list(model.nets):
            model.nets[name] = torch.compile(model.nets[name])
    data = {"A": torch.rand(batch, 3, size, size) * 2 - 1, "B": torch.rand(batch, 3, size, size) * 2 - 1}

    def step():
        model.set_input(data)
        model.optimize_parameters()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=128, help="square training crop (multiple of 4)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--n-blocks", type=int, default=9)
    p.add_argument("--repeats", type=int, default=3, help="timed steps per variant (after one warm-up step)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--force-bf16", action="store_true", help="also time bf16 autocast when the policy picks fp32")
    p.add_argument("--compile", action="store_true", help="also time the fp32 step with torch.compile'd networks")
    p.add_argument("--norm", default="instance", choices=("instance", "batch"))
    p.add_argument("--upsample", default="transposed", choices=("transposed", "resize"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    config = CycleGANConfig(ngf=args.ngf, ndf=args.ndf, n_blocks=args.n_blocks, norm=args.norm, upsample=args.upsample)
    project = precision_for(device, config.bf16_ok, "auto")
    variants = {"project": project, "fp32 eager": Precision(device.type, None)}
    if args.force_bf16 and project.dtype is None:
        variants["bf16 autocast (forced)"] = Precision(device.type, torch.bfloat16)
    print(f"torch {torch.__version__} on {device} ({torch.get_num_threads()} CPU thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_supports_bf16()}); "
          f"G/F ngf {args.ngf} {args.n_blocks} blocks, D ndf {args.ndf}, batch {args.batch} @{args.size}; "
          f"project precision: {project.name}", flush=True)

    steps = {name: make_step(config, prec, device, args.batch, args.size) for name, prec in variants.items()}
    if args.compile:
        steps["fp32 torch.compile"] = make_step(config, Precision(device.type, None), device, args.batch, args.size,
                                                compiled=True)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up: allocations, kernel selection (and compilation)
        start = time.perf_counter()
        step()
        step()
        if name == "fp32 torch.compile":
            print(f"  torch.compile: first two steps took {time.perf_counter() - start:.0f} s (compilation)", flush=True)
    for _ in range(args.repeats):  # alternate, so slow phases of a shared machine hit every variant
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in med.items():
        print(f"  {name:<24} {t:8.3f} s/step  (median of {args.repeats})")
    ratio = med["fp32 eager"] / med["project"]
    if project.dtype is None:
        print(f"fp32 eager / project step = {ratio:.2f}x: the project's policy is fp32 on this machine (no native "
              "bf16), so both are the same step and the ratio only shows the machine's noise")
    else:
        print(f"fp32 eager / project step = {ratio:.2f}x ({project.name} is "
              f"{'faster' if ratio > 1 else 'slower'} than fp32 eager)")
    if "fp32 torch.compile" in med:
        print(f"fp32 eager / torch.compile step = {med['fp32 eager'] / med['fp32 torch.compile']:.2f}x")
    if "bf16 autocast (forced)" in med:
        print(f"bf16 autocast / fp32 = {med['bf16 autocast (forced)'] / med['fp32 eager']:.2f}x on this CPU "
              "(why the policy keeps fp32 here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
