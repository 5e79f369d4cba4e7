""""How many images do I need?": held-out quality against training-set size, with and without DiffAugment.

    .venv/bin/python benchmarks/data_size_curves.py                       # both lessons, every run (CPU hours)
    .venv/bin/python benchmarks/data_size_curves.py --lesson pix2pix      # one lesson
    .venv/bin/python benchmarks/data_size_curves.py --jobs 2              # two runs at once (one thread each)
    .venv/bin/python benchmarks/data_size_curves.py --table               # only print the table of the results file

For each translation lesson it trains the lesson's ``demo`` preset with the project's own command,
``deepfake-lab train LESSON --preset demo --train-images N [--diffaugment color,translation,cutout]``,
for a few training-set sizes N (evenly spaced images of the training set, the same steps for every N),
and reads the held-out figures that the command itself writes to ``metrics.json``:

* **lesson 2, CycleGAN** on the embedded ``face2cartoon`` set: N = 12, 25, 50 images *per domain* (50 is
  all of it); G (face -> cartoon) on the 20 held-out frames against their true cartoons;
* **lesson 3, pix2pix** on the carphone edges -> face task: N = 25, 50, 100 pairs (100 is all of it), the
  paper's objective (``--lambda-vgg 0``: the demo's VGG term off); on the 20 held-out frames.

Runs that already have a ``metrics.json`` are not trained again (delete the run folder to redo one). The
results go to ``tutorial/assets/data-size-curves.json`` (with each run's command, CPU time and precision),
which ``tutorial/make_figures.py`` turns into the tutorial's figure and table, and notebooks 02 and 03 read.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tutorial" / "assets" / "data-size-curves.json"
POLICY = "color,translation,cutout"  # the DiffAugment paper's policy for small data
#: lesson -> training-set sizes, steps of every run, flags added to the demo preset's
#: (pix2pix: the paper's objective, L1 + cGAN, without the demo's VGG term and its scale jitter, as when the
#: curves were made, so the curve is about pix2pix itself and a run costs a third)
LESSONS = {
    "cyclegan": {"sizes": (12, 25, 50), "steps": 1000, "unit": "images per domain", "all": 50, "flags": ()},
    "pix2pix": {"sizes": (25, 50, 100), "steps": 1200, "unit": "training pairs", "all": 100,
                "flags": ("--lambda-vgg", "0", "--load-size", "128")},
}
METRICS = ("psnr", "ssim", "lpips_alex", "lpips")


def held_out(lesson: str, metrics: dict) -> dict[str, float]:
    """The model's held-out figures in a run's metrics.json: CycleGAN's G, pix2pix's generator."""
    scores = metrics["G"] if lesson == "cyclegan" else metrics["pix2pix"]
    return {k: float(scores[k]) for k in METRICS}


def baseline(lesson: str, metrics: dict) -> dict[str, float]:
    """Doing nothing (CycleGAN: the input itself) or the mean training frame (pix2pix), from the same file."""
    scores = metrics["identity"] if lesson == "cyclegan" else metrics["mean_frame"]
    return {k: float(scores[k]) for k in METRICS}


def command(lesson: str, size: int, augment: bool, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "deepfake_lab.cli", "train", lesson, "--preset", "demo",
           "--steps", str(LESSONS[lesson]["steps"]), "--train-images", str(size), *LESSONS[lesson]["flags"],
           "--out", str(out), "--no-progress"]
    return cmd + (["--diffaugment", POLICY] if augment else [])


def run_one(lesson: str, size: int, augment: bool, runs: Path) -> dict:
    out = runs / f"{lesson}-n{size}{'-da' if augment else ''}"
    cmd = command(lesson, size, augment, out)
    if not (out / "metrics.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        print("running:", " ".join(cmd[3:]), flush=True)
        with open(out / "train.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    summary = json.loads((out / "metrics.json").read_text())
    return {"lesson": lesson, "train_images": size, "diffaugment": POLICY if augment else "",
            "steps": summary["step"], "cpu_seconds": summary["cpu_seconds"], "precision": summary["precision"],
            "command": "deepfake-lab " + " ".join(cmd[3:]).replace(str(out), f"runs/curves/{out.name}"),
            "held_out": held_out(lesson, summary["metrics"]), "baseline": baseline(lesson, summary["metrics"])}


def table(results: dict) -> str:
    lines = []
    for lesson, rows in results["lessons"].items():
        unit = LESSONS[lesson]["unit"]
        lines += [f"{lesson} ({rows[0]['steps']} steps each; held-out frames; baseline: "
                  f"{'the input unchanged' if lesson == 'cyclegan' else 'the mean training frame'})", "",
                  f"| {unit} | DiffAugment | PSNR (dB) | SSIM | LPIPS (AlexNet) | LPIPS (VGG) | CPU s |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (r["train_images"], r["diffaugment"])):
            m = r["held_out"]
            lines.append(f"| {r['train_images']} | {'yes' if r['diffaugment'] else 'no'} | {m['psnr']:.2f} | "
                         f"{m['ssim']:.3f} | {m['lpips_alex']:.3f} | {m['lpips']:.3f} | {r['cpu_seconds']:.0f} |")
        b = rows[0]["baseline"]
        lines += [f"| baseline | | {b['psnr']:.2f} | {b['ssim']:.3f} | {b['lpips_alex']:.3f} | {b['lpips']:.3f} | |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lesson", choices=tuple(LESSONS), action="append", help="only this lesson (repeatable)")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "curves", help="where the runs go")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each on one thread)")
    p.add_argument("--note", default="", help="how the machine was shared, for the record (e.g. another job ran)")
    p.add_argument("--table", action="store_true", help="only print the table of " + str(RESULTS.relative_to(ROOT)))
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(RESULTS.read_text())))
        return 0
    lessons = args.lesson or list(LESSONS)
    jobs = [(lesson, size, augment) for lesson in lessons for size in LESSONS[lesson]["sizes"]
            for augment in (False, True)]
    started = time.time()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda job: run_one(*job, args.runs), jobs))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"lessons": {}}
    for lesson in lessons:
        results["lessons"][lesson] = [r for r in rows if r["lesson"] == lesson]
    import torch

    from deepfake_lab.device import machine_key

    torch.set_num_threads(1)  # the key names the threads: each run had one
    results["machine"] = {"cpu": machine_key(torch.device("cpu")), "torch": torch.__version__,
                          "python": platform.python_version(), "threads_per_run": 1, "runs_at_once": args.jobs,
                          "note": args.note}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    print(f"wrote {RESULTS.relative_to(ROOT)} ({time.time() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
