"""Peak memory of each lesson's networks: one training step and one inference pass, at 128 and 256 pixels.

    python benchmarks/bench_memory.py                 # CPU: peak resident memory of each call
    python benchmarks/bench_memory.py --device cuda   # CUDA: torch.cuda.max_memory_allocated
    python benchmarks/bench_memory.py cyclegan        # one model

Every model is the paper's (official) configuration, batch 1, fp32: the CycleGAN step (G, F, D_X, D_Y, Adam,
image pools), the pix2pix step (unet_128 at 128 px, unet_256 from 256 px: the U-Net's depth fixes its input
size), the First Order Motion step at the vox-256 configuration (keypoint detector, generator with its dense
motion network, VGG perceptual and equivariance losses), and the face-swap autoencoder (64 px faces only).

On the CPU each figure is the peak resident memory of a fresh process during the call, less what the process
held before it, plus the networks' parameters and buffers. The last lines estimate the largest square
training image whose step fits in 8 GiB of GPU memory, from the two largest measured sizes: peak = fixed + per_pixel x side^2 (parameters, gradients and Adam state are fixed;
activations grow with the pixel count), solved for 8 GiB and rounded down to a size the network takes.
It is an estimate from fp32 at batch 1: the CUDA allocator's caching and cuDNN workspaces add to it, bf16
autocast stores many activations in half the bytes. The data loaders stream images from disk (one batch in
memory at a time), so the data set's size does not enter.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.device import Precision, describe, pick_device  # noqa: E402

GIB = 2 ** 30
MIB = 2 ** 20
BUDGET = 8 * GIB


def _training_step(model, data: dict[str, torch.Tensor]):
    """(one training step of a lesson model on ``data``, its networks, its optimizers)."""
    def step():
        model.set_input(data)
        model.optimize_parameters()

    return step, list(model.nets.values()), list(model.opts.values())


def _pair(size: int, names=("A", "B")) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {name: torch.rand(1, 3, size, size, generator=g) * 2 - 1 for name in names}


def cyclegan_step(size: int, device: torch.device) -> tuple[Callable, list[torch.nn.Module], list]:
    from deepfake_lab.cyclegan import CycleGANConfig, CycleGANModel

    model = CycleGANModel(CycleGANConfig(), device, Precision(device.type, None), total_steps=1000)
    return _training_step(model, _pair(size))


def cyclegan_infer(size: int, device: torch.device):
    from deepfake_lab.cyclegan import ResnetGenerator

    G = ResnetGenerator().to(device).eval()
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    return (lambda: G(x)), [G]


def _unet_config(size: int):
    from deepfake_lab.pix2pix import Pix2PixConfig

    net = "unet_128" if size < 256 else "unet_256"
    return Pix2PixConfig(netG=net, load_size=size, crop_size=size)


def pix2pix_step(size: int, device: torch.device):
    from deepfake_lab.pix2pix import Pix2Pix

    model = Pix2Pix(_unet_config(size), device, Precision(device.type, None), total_steps=1000)
    return _training_step(model, _pair(size))


def pix2pix_infer(size: int, device: torch.device):
    from deepfake_lab.pix2pix import build_generator

    G = build_generator(_unet_config(size)).to(device).eval()
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    return (lambda: G(x)), [G]


def animation_step(size: int, device: torch.device):
    from dataclasses import replace

    from deepfake_lab.animation.model import PRESETS, AnimationModel

    config = replace(PRESETS["default"], image_size=size)
    model = AnimationModel(config, device, Precision(device.type, None), total_steps=10 ** 6)
    g = torch.Generator().manual_seed(0)
    batch = {"source": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
             "driving": torch.rand(1, 3, size, size, generator=g) * 2 - 1}

    def step():
        model.set_input(batch)
        model.optimize_parameters()

    return step, list(model.nets.values()), list(model.opts.values())


def animation_infer(size: int, device: torch.device):
    from dataclasses import replace

    from deepfake_lab.animation.model import PRESETS, FirstOrderModel

    model = FirstOrderModel(replace(PRESETS["default"], image_size=size)).to(device).eval()
    source, driving = torch.rand(2, 1, 3, size, size, device=device)
    return (lambda: model(source, driving)), [model]


def faceswap_step(size: int, device: torch.device):
    from deepfake_lab.faceswap import FaceSwapConfig, FaceSwapModel

    model = FaceSwapModel(FaceSwapConfig(), device, Precision(device.type, None))
    return _training_step(model, _pair(size))


def faceswap_infer(size: int, device: torch.device):
    from deepfake_lab.faceswap import gpu_check_generator

    net, _ = gpu_check_generator()
    net = net.to(device)
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    return (lambda: net(x)), [net]


#: name -> (training step factory, inference factory, sizes measured, sizes the network takes are multiples of)
MODELS = {
    "cyclegan": (cyclegan_step, cyclegan_infer, (128, 256), 4),
    "pix2pix": (pix2pix_step, pix2pix_infer, (128, 256, 512), 256),
    "animation": (animation_step, animation_infer, (128, 256), 64),
    "faceswap": (faceswap_step, faceswap_infer, (64,), 64),
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_bytes(fn: Callable, modules: list[torch.nn.Module], device: torch.device) -> int:
    """Peak memory of the first call of ``fn`` (a training step creates the optimizer state then), counting the
    networks' parameters and buffers. CUDA: the allocator's peak. CPU: the process's peak resident memory
    during the call, less what it held before (PyTorch's CPU allocator does not cache, so this is what the
    call needed), plus the parameters and buffers; run in a fresh process per measurement."""
    weights = sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before + weights
    before = _rss_bytes()
    fn()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return max(peak - before, 0) + weights


def measure(name: str, size: int, mode: str, device: torch.device) -> int:
    make_step, make_infer = MODELS[name][:2]
    torch.manual_seed(0)
    if mode == "train":
        step, modules, _ = make_step(size, device)
        return peak_bytes(step, modules, device)
    infer, modules = make_infer(size, device)
    with torch.no_grad():
        return peak_bytes(infer, modules, device)


def measure_in_child(name: str, size: int, mode: str, args) -> int:
    """One measurement in a fresh process, so one model's peak does not hide the next one's."""
    cmd = [sys.executable, __file__, "--child", f"{name}:{size}:{mode}", "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} {size} {mode}: {done.stderr.strip()[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def largest_side(sizes: list[int], peaks: list[int], multiple: int, budget: int = BUDGET) -> int | None:
    """Solve fixed + per_pixel * side^2 = budget through the two largest measured sizes."""
    if len(sizes) < 2:
        return None
    (s0, p0), (s1, p1) = sorted(zip(sizes, peaks))[-2:]
    per_pixel = (p1 - p0) / (s1 ** 2 - s0 ** 2)
    if per_pixel <= 0:
        return None
    fixed = p1 - per_pixel * s1 ** 2
    side = math.sqrt(max(budget - fixed, 0) / per_pixel)
    return int(side // multiple * multiple)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=f"which models (default: all of {', '.join(MODELS)})")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)  # name:size:mode, one measurement, prints bytes
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.child:
        name, size, mode = args.child.split(":")
        print(measure(name, int(size), mode, device))
        return 0
    print(f"peak memory, batch 1, fp32, official configurations, on {describe(device)} "
          f"({'max_memory_allocated' if device.type == 'cuda' else 'peak resident memory'}, "
          "a fresh process per measurement)")
    print(f"{'model':<10} {'side':>5} {'train step MiB':>15} {'inference MiB':>14}")
    summary = []
    for name in args.models or MODELS:
        sizes, multiple = MODELS[name][2:]
        train_peaks = []
        for size in sizes:
            train = measure_in_child(name, size, "train", args)
            inference = measure_in_child(name, size, "infer", args)
            train_peaks.append(train)
            print(f"{name:<10} {size:>5} {train / MIB:>15.0f} {inference / MIB:>14.0f}", flush=True)
        summary.append((name, largest_side(list(sizes), train_peaks, multiple)))
    print("\nlargest square training image (batch 1, fp32) estimated to fit 8 GiB:")
    for name, side in summary:
        print(f"  {name:<10} {side if side else 'n/a (one size only: the network takes 64x64 faces)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
