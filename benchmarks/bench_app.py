"""Latency of one Image-to-image request of the demo app: every demo model on one 256x256 picture.

    .venv/bin/python benchmarks/bench_app.py                 # CPU (or the default device), 256x256, 10 requests
    .venv/bin/python benchmarks/bench_app.py --size 512 --repeats 20 --threads 1

Times :func:`deepfake_lab.app.tab_translate.translate_image`, the function the ``/image_to_image`` endpoint
calls, in-process (no HTTP, no browser): decode and check the upload, CycleGAN G and F and pix2pix, a
labelled PNG with provenance per output, the table. Three figures, all medians except the first:

* **first request**: right after the models are loaded, as when the app has just started;
* **request**: after one warm-up request, the median of ``--repeats``;
* **models alone**: the three translators on the same picture, no checks, no PNGs (the baseline of the
  same run); ``request / models alone`` is the app's overhead.

The goal is a request under 1 s on a laptop CPU. The machine these numbers come from is shared and
noisy: trust the ratio more than the milliseconds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.app import tab_translate  # noqa: E402
from deepfake_lab.app.common import AppContext, ModelStore  # noqa: E402
from deepfake_lab.app.models import demo_entries, run_entry  # noqa: E402
from deepfake_lab.device import describe, pick_device  # noqa: E402

GOAL_S = 1.0


def picture(path: Path, size: int) -> Path:
    """A real photo (scikit-image's astronaut, public domain) resized to ``size`` x ``size``, as a PNG."""
    from deepfake_lab.data.embedded import source_photo

    source_photo("astronaut").resize((size, size), Image.LANCZOS).save(path)
    return path


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--size", type=int, default=256, help="side of the square input picture (default 256)")
    p.add_argument("--repeats", type=int, default=10, help="timed requests after the warm-up (default 10)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"torch {torch.__version__} on {describe(device)}, {torch.get_num_threads()} thread(s); "
          f"input {args.size}x{args.size}, {args.repeats} requests")

    ctx = AppContext(device=device, models=ModelStore(device))
    load = timed(lambda: ctx.models.preload(tab_translate.MODELS))
    entries = demo_entries(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        path = picture(Path(tmp) / "astronaut.png", args.size)
        first = timed(lambda: tab_translate.translate_image(ctx, path))
        with Image.open(path) as im:
            image = im.convert("RGB")  # the baseline's input: decoded once, outside the timing
        requests, models, per_model = [], [], {e.name: [] for e in entries}
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = tab_translate.translate_image(ctx, path)
            requests.append(time.perf_counter() - start)
            for row in result.table:  # the per-model latency the table shows
                if row[0] in per_model:
                    per_model[row[0]].append(float(row[2]) / 1000)
            models.append(timed(lambda: [run_entry(e, image) for e in entries]))

    request, alone = statistics.median(requests), statistics.median(models)
    print(f"\n{'what':<44} {'time':>10}")
    print(f"{'load the models (once, when the app starts)':<44} {load * 1000:>7.0f} ms")
    print(f"{'first request':<44} {first * 1000:>7.0f} ms")
    print(f"{'request (median)':<44} {request * 1000:>7.0f} ms")
    for name, times in per_model.items():
        print(f"{'  of which ' + name:<44} {statistics.median(times) * 1000:>7.0f} ms")
    print(f"{'models alone (median, baseline)':<44} {alone * 1000:>7.0f} ms")
    print(f"\nrequest / models alone: {request / alone:.2f}x (the app's checks, labelled PNGs and table)")
    verdict = "meets" if request < GOAL_S else "misses"
    print(f"goal: one request under {GOAL_S:.0f} s: {verdict} it ({request:.2f} s median, first {first:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
