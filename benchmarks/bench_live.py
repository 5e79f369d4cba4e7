"""Cost of one frame of the demo app's Live tab: a camera frame in, a labelled portrait | camera | result out.

    .venv/bin/python benchmarks/bench_live.py                 # one torch thread, 120 carphone frames
    .venv/bin/python benchmarks/bench_live.py --threads 2 --frames 60

Times :func:`deepfake_lab.app.tab_live.live_frame`, the function the tab's camera stream calls for every
frame, on the frames of the carphone clip (176x144, the size of a small webcam picture) with the demo model
(128x128 inside, 128x128 panels), in-process: no browser, no network. The frames go through in order, as a
camera's would, so the face cascade runs on every ``DETECT_EVERY``-th one, as it does live. Then the same
frame's parts, one at a time, to show where the time goes: the face cascade, the crop and keypoints, the
generator, drawing the keypoints, the labels (invisible watermark and SYNTHETIC strip, and the strip alone)
and the JPEG data URL the page receives.

The goal is 10 frames/s (100 ms a frame) on a laptop CPU. The machine these numbers come from is shared and
noisy: the load average is printed with them, the median is the figure to quote, and with one thread the
CPU time the frame used (``time.thread_time``) says what it would take with a core to itself.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepfake_lab.animation import draw_keypoints, load_animation_model  # noqa: E402
from deepfake_lab.animation.media import label_frames  # noqa: E402
from deepfake_lab.animation.transfer import (detect_keypoints, keypoints_to_pixels, normalize_kp,  # noqa: E402
                                             to_model_input)
from deepfake_lab.app import tab_live  # noqa: E402
from deepfake_lab.data.faces import carphone_clip, crop_box  # noqa: E402
from deepfake_lab.provenance import label_image  # noqa: E402

GOAL_MS = 100.0


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--frames", type=int, default=120, help="carphone frames streamed through (default 120)")
    p.add_argument("--repeats", type=int, default=20, help="repeats of each part (default 20)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_animation_model()
    frames = np.asarray(carphone_clip().frames)
    frames = np.concatenate([frames] * (-(-args.frames // len(frames))))[:args.frames]

    session = tab_live.LiveSession()
    tab_live.live_frame(model, session, frames[0])  # warm-up: the portrait is prepared on the first frame
    session = tab_live.LiveSession(source=session.source)
    times, cpu = [], []
    for frame in frames:
        used = time.thread_time()  # CPU time of this thread: what a frame costs whatever else runs beside it
        times.append(tab_live.live_frame(model, session, frame).seconds * 1000)
        cpu.append((time.thread_time() - used) * 1000)
    per_frame = statistics.median(times)

    # the parts of one frame
    frame = frames[0]
    box = tab_live._detect(frame)
    camera = crop_box(frame, box, tab_live.PANEL)
    size = model.config.image_size
    source = session.source
    kp = detect_keypoints(model, to_model_input(camera, size))

    @torch.no_grad()
    def generate():
        kp_new = normalize_kp(source.keypoints, kp, kp, adapt_movement_scale=True, use_relative_movement=True,
                              use_relative_jacobian=True)
        return model.generator(source.image, kp_driving=kp_new, kp_source=source.keypoints)["prediction"]

    panels = np.ascontiguousarray(np.concatenate([source.panel, camera, camera], axis=1))
    labelled = label_frames([panels])[0]
    parts = {
        "face cascade (1 frame in DETECT_EVERY)": median_ms(lambda: tab_live._detect(frame), args.repeats),
        "crop + keypoint detector": median_ms(
            lambda: detect_keypoints(model, to_model_input(crop_box(frame, box, tab_live.PANEL), size)), args.repeats),
        "generator (dense motion + warp)": median_ms(generate, args.repeats),
        "keypoints drawn (2 panels)": median_ms(
            lambda: [draw_keypoints(camera, keypoints_to_pixels(kp["value"][0], tab_live.PANEL)) for _ in range(2)],
            args.repeats),
        "labels: watermark + strip (label_frames)": median_ms(lambda: label_frames([panels]), args.repeats),
        "  of which the strip alone (label_image)": median_ms(lambda: label_image(Image.fromarray(panels)),
                                                             args.repeats),
        "JPEG data URL for the page": median_ms(lambda: tab_live.inline_image(labelled), args.repeats),
    }

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Live tab, one frame: demo model ({size}x{size} inside, {tab_live.PANEL}x{tab_live.PANEL} panels), "
          f"carphone frames {frames.shape[2]}x{frames.shape[1]}")
    print(f"{cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"load average {load:.2f} at the end")
    print(f"per frame: median {per_frame:.1f} ms ({1000 / per_frame:.1f} frames/s), "
          f"mean {statistics.fmean(times):.1f} ms, 90th percentile {np.percentile(times, 90):.1f} ms "
          f"over {len(times)} frames")
    if args.threads == 1:
        print(f"CPU time per frame (this thread): median {statistics.median(cpu):.1f} ms "
              f"({1000 / statistics.median(cpu):.1f} frames/s with a core to itself)")
    for name, ms in parts.items():
        print(f"  {name:<44} {ms:7.2f} ms")
    verdict = "meets" if per_frame <= GOAL_MS else "misses"
    print(f"goal {GOAL_MS:.0f} ms a frame (10 frames/s): {verdict} it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
