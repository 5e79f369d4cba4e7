"""fp32 vs bf16 autocast for the pix2pix U-Net on the CPU: forward, one training step, and why.

    python benchmarks/bench_pix2pix.py                  # the demo U-Net (unet_128, ngf 16, batch 4 @128)
    python benchmarks/bench_pix2pix.py --official       # also unet_256 (ngf 64) @256, batch 1: slow in bf16
    python benchmarks/bench_pix2pix.py --threads 1 --repeats 5 --profile

Prints medians and the bf16/fp32 ratios (> 1: bf16 is slower), then *why*: which kernel PyTorch
dispatched the convolutions to in each precision (torch.profiler). bf16 autocast only pays off on
the CPU when oneDNN has native bf16 kernels (AVX-512-bf16 or AMX; ``torch.ops.mkldnn.
_is_mkldnn_bf16_supported()``). Without them PyTorch falls back to its reference kernels
(``aten::_slow_conv2d_forward``, ``aten::slow_conv_transpose2d``: im2col + a bf16 matrix product
emulated in fp32), and bf16 is several times *slower* than fp32. Hence the measured policy
(``deepfake_lab.device.choose_precision``) keeps pix2pix in fp32 on such a CPU (``--precision bf16`` forces bf16). The machine these
numbers come from is shared and noisy: trust the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.device import Precision, cpu_supports_bf16, describe, pick_device  # noqa: E402
from deepfake_lab.pix2pix import Pix2Pix, Pix2PixConfig, UnetGenerator  # noqa: E402

FP32, BF16 = Precision("cpu", None), Precision("cpu", torch.bfloat16)
DEVICE = torch.device("cpu")  # set by --device


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    def call():
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize(DEVICE)

    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def forward_fn(G: torch.nn.Module, x: torch.Tensor, precision: Precision):
    def run():
        with torch.no_grad(), precision.autocast():
            G(x)
    return run


def step_fn(config: Pix2PixConfig, precision: Precision, batch: int, size: int):
    torch.manual_seed(0)
    model = Pix2Pix(config, DEVICE, precision, total_steps=1000)
    model.set_input({"A": torch.rand(batch, 3, size, size) * 2 - 1, "B": torch.rand(batch, 3, size, size) * 2 - 1})
    return model.optimize_parameters


def compare(label: str, make_fn, repeats: int) -> None:
    t32 = median_time(make_fn(FP32), repeats)
    t16 = median_time(make_fn(BF16), repeats)
    print(f"{label:<52} fp32 {t32:7.3f} s   bf16 {t16:7.3f} s   bf16/fp32 {t16 / t32:5.2f}x", flush=True)


def conv_kernels(fn) -> list[str]:
    """The convolution kernels one call of ``fn`` dispatched to (profiler op names)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    generic = {"aten::conv2d", "aten::convolution", "aten::_convolution", "aten::conv_transpose2d",
               "aten::convolution_backward"}
    return sorted({e.key for e in prof.key_averages() if "conv" in e.key and e.key not in generic})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu (the question this benchmark answers), cuda or auto")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--official", action="store_true", help="also unet_256 @256 (bf16 takes minutes without AVX-512-bf16)")
    p.add_argument("--profile", action="store_true", help="also print the costliest ops of the demo forward")
    p.add_argument("--rows", type=int, default=10)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    global DEVICE, FP32, BF16
    DEVICE = pick_device(args.device)
    FP32, BF16 = Precision(DEVICE.type, None), Precision(DEVICE.type, torch.bfloat16)
    print(f"device: {describe(DEVICE)}")
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), ATen CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, oneDNN native bf16: {native}, "
          f"deepfake_lab.device.cpu_supports_bf16(): {cpu_supports_bf16()}")

    demo = Pix2PixConfig(netG="unet_128", ngf=16, ndf=16, load_size=128, crop_size=128)
    torch.manual_seed(0)
    G = UnetGenerator(num_downs=7, ngf=16).eval().to(DEVICE)
    x = (torch.rand(4, 3, 128, 128) * 2 - 1).to(DEVICE)
    compare("demo U-Net forward (unet_128 ngf 16, batch 4 @128)", lambda pr: forward_fn(G, x, pr), args.repeats)
    compare("demo training step (G + D, D then G, batch 4 @128)", lambda pr: step_fn(demo, pr, 4, 128), args.repeats)
    if args.official:
        torch.manual_seed(0)
        G256 = UnetGenerator(num_downs=8).eval().to(DEVICE)
        x256 = (torch.rand(1, 3, 256, 256) * 2 - 1).to(DEVICE)
        compare("official U-Net forward (unet_256 ngf 64, batch 1 @256)", lambda pr: forward_fn(G256, x256, pr),
                args.repeats)
        compare("official training step (batch 1 @256)", lambda pr: step_fn(Pix2PixConfig(), pr, 1, 256), args.repeats)

    print("\nwhy: the convolution kernels each precision ran")
    for precision in (FP32, BF16):
        fn = forward_fn(G, x, precision)
        fn()
        print(f"  {precision.name:<14} forward: {', '.join(conv_kernels(fn))}")
    if not native and DEVICE.type == "cpu":
        print("  no native bf16 in oneDNN here: bf16 convolutions take PyTorch's reference kernels "
              "(_slow_conv2d_forward, slow_conv_transpose2d), so fp32 (oneDNN, mkldnn_convolution) is faster")

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for precision in (FP32, BF16):
            fn = forward_fn(G, x, precision)
            fn()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fn()
            print(f"\n--- demo U-Net forward, {precision.name}: ops by self CPU time ---")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
