"""What the precision policy chooses for each model, how much faster bf16 is, and how far it moves the output.

    python benchmarks/bench_precision.py --threads 1
    python benchmarks/bench_precision.py --device cuda

For every model: one forward (inference) in fp32 eager and under bf16 autocast, timed alternately in the same
process (median of ``--repeats``), their ratio, the largest and mean deviation of the bf16 output from the fp32
one in levels of 255 (and the share of values more than one level off), for First Order Motion also how far
the keypoints move (pixels at 256), and what ``--precision auto`` picks on this machine
(:func:`deepfake_lab.device.choose_precision`, measured, not cached). Official-layout networks carry the
official initialisation N(0, 0.02) with a fixed seed, as an imported checkpoint would carry trained weights;
the demo models are the shipped files.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from deepfake_lab.device import Precision, choose_precision, cpu_supports_bf16, describe, pick_device


def official_init(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return net.eval()


def models(size: int):
    """(name, callable on one input, example input, output scale to levels, official?) of every model."""
    from deepfake_lab import animation, cyclegan, faceswap, gan, pix2pix
    from deepfake_lab.animation.model import AnimationConfig, FirstOrderModel
    from deepfake_lab.settings import demo_weights

    g = torch.Generator().manual_seed(0)
    G = official_init(cyclegan.ResnetGenerator())
    yield "CycleGAN ResNet-9 (official layout)", G, torch.rand(1, 3, size, size, generator=g) * 2 - 1, 127.5, True
    demo_G, _ = cyclegan.load_generator(demo_weights("cyclegan-face2cartoon"))
    yield "CycleGAN demo G", demo_G, torch.rand(1, 3, 128, 128, generator=g) * 2 - 1, 127.5, False
    U, _ = pix2pix.load_generator(demo_weights("pix2pix-carphone-edges"))
    yield "pix2pix demo U-Net", U, torch.rand(4, 3, 128, 128, generator=g) * 2 - 1, 127.5, False
    fomm = FirstOrderModel(AnimationConfig()).eval()
    official_init(fomm)
    frames = torch.rand(1, 3, 256, 256, generator=g)
    yield "First Order Motion vox-256 (official layout)", fomm, frames, 255.0, True
    demo = animation.load_animation_model(precision="fp32")
    yield "animation demo", demo, torch.rand(2, 3, 64, 64, generator=g), 255.0, False
    nets, _ = faceswap.load_faceswap()
    yield ("face-swap demo (to B)", lambda x: faceswap.swap_faces(nets, x, "B"),
           torch.rand(8, 3, 64, 64, generator=g) * 2 - 1, 127.5, False)
    D, config = gan.load_generator(gan.demo_weights_path("digits"))
    yield "DCGAN digits demo", D, torch.randn(64, config.latent_dim, generator=g), 127.5, False


def run(model, x, precision: Precision):
    with torch.no_grad(), precision.autocast():
        if x.shape[1] == 3 and hasattr(model, "kp_detector"):  # First Order Motion: source, driving
            out = model(x[:1].expand(x.shape[0], -1, -1, -1), x)
            return out["prediction"].float(), out["kp_driving"]["value"].float()
        return model(x).float(), None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=128, help="side of the ResNet-9 input")
    p.add_argument("--only", nargs="*", help="models whose name contains one of these words")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    fp32, bf16 = Precision(device.type, None), Precision(device.type, torch.bfloat16)
    print(f"torch {torch.__version__} on {describe(device)}; CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_supports_bf16()}")
    print("| model | fp32 eager | bf16 autocast | speed-up | max / mean deviation (levels of 255) | "
          "> 1 level | keypoints moved (px at 256) | auto picks |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model, x, scale, official in models(args.size):
        if args.only and not any(word.lower() in name.lower() for word in args.only):
            continue
        if hasattr(model, "to"):
            model = model.to(device)
        x = x.to(device)
        times = {"fp32": [], "bf16": []}
        run(model, x, fp32), run(model, x, bf16)  # warm-up
        # without native bf16 an emulated bf16 call can take a minute: then time it once
        emulated = device.type == "cpu" and not cpu_supports_bf16()
        for i in range(args.repeats):
            for key, prec in (("fp32", fp32), ("bf16", bf16)):
                if emulated and key == "bf16" and i > 0:
                    continue
                start = time.perf_counter()
                run(model, x, prec)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[key].append(time.perf_counter() - start)
        t32, t16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        y32, k32 = run(model, x, fp32)
        y16, k16 = run(model, x, bf16)
        diff = (y32 - y16).abs() * scale
        kp = f"{float((k32 - k16).norm(dim=-1).max()) * 128:.2f}" if k32 is not None else "-"
        choice = choose_precision(device, "auto", key=name, official=official, cache=False,
                                  probe=lambda prec, m=model, v=x: run(m, v, prec))
        print(f"| {name} | {t32:.3f} s | {t16:.3f} s | {t32 / t16:.2f}x | {float(diff.max()):.1f} / "
              f"{float(diff.mean()):.2f} | {100 * float((diff > 1).float().mean()):.1f} % | {kp} | "
              f"{choice.name}: {choice.reason} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
