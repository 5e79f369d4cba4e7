"""A class at once: many simultaneous Image-to-image requests to the demo app, with and without batching.

    .venv/bin/python benchmarks/bench_class.py                    # 60 requests, batching on then off
    .venv/bin/python benchmarks/bench_class.py --requests 20 --modes on --concurrency 4

Serves the app in-process on 127.0.0.1 (as ``tests/conftest.py`` does), then for each mode:

1. **one at a time**: ``--sequential`` requests, each sent when the previous one is answered: the
   throughput of a lone student (requests/s), the baseline of the same process;
2. **a class at once**: ``--requests`` threads that send one ``/image_to_image`` request each through
   ``gradio_client`` at the same moment (the same example tile, as when a teacher says "click the first
   example"); each request's latency is from that moment to its answer.

Printed per mode: all answered?, failed count, p50, p90 and max latency, throughput (answered requests over
the time to the last answer), its ratio to one-at-a-time throughput, and how many pictures each forward pass
held on average (the batcher's own counts). Every answer is checked: three labelled outputs in the gallery.

The machine these numbers come from is shared and noisy (``uptime``'s load is printed): trust the ratios
more than the seconds.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by linear interpolation (``statistics.quantiles`` needs 2+ values)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def answered(result) -> bool:
    """A /image_to_image answer with its three labelled outputs (one per demo view)."""
    gallery = result[0]
    return len(gallery) == 3 and all(item.get("image") for item in gallery)


def run_mode(batching: bool, args, picture: str) -> dict:
    """Serve the app with batching on or off and measure one at a time, then ``args.requests`` at once."""
    from gradio_client import Client, handle_file

    from deepfake_lab.app import build_app, launch_options

    demo = build_app(device=args.device, concurrency=args.concurrency, batching=batching)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, **launch_options())
    batcher = demo.deepfake_lab_context.batcher
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, max_workers=args.requests + 4)

        def request():
            return client.predict(handle_file(picture), "", "auto", api_name="/image_to_image")

        for _ in range(2):  # warm-up: first-call costs (example digests, allocator) out of the figures
            request()
        start = time.perf_counter()
        for _ in range(args.sequential):
            assert answered(request()), "a one-at-a-time request came back without its three outputs"
        one_at_a_time = args.sequential / (time.perf_counter() - start)

        forwards, pictures = batcher.forwards, batcher.pictures
        go = threading.Barrier(args.requests + 1)
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def student():
            go.wait()
            sent = time.perf_counter()
            try:
                ok = answered(request())
                error = None if ok else "answer without its three outputs"
            except Exception as err:  # noqa: BLE001 - counted and shown, the others go on
                error = f"{type(err).__name__}: {err}"
            with lock:
                if error:
                    failures.append(error)
                else:
                    latencies.append(time.perf_counter() - sent)

        with ThreadPoolExecutor(args.requests) as pool:
            futures = [pool.submit(student) for _ in range(args.requests)]
            go.wait()
            start = time.perf_counter()
            for future in futures:
                future.result()
            wall = time.perf_counter() - start
        forwards, pictures = batcher.forwards - forwards, batcher.pictures - pictures
    finally:
        demo.close()
    return dict(batching=batching, one=one_at_a_time, latencies=latencies, failures=failures, wall=wall,
                per_forward=pictures / forwards if forwards else float("nan"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=60, help="simultaneous requests (default 60)")
    p.add_argument("--sequential", type=int, default=10, help="one-at-a-time requests, the baseline (default 10)")
    p.add_argument("--modes", default="on,off", help="batching modes to measure, in order (default on,off)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="requests computed at once (default: the app's own, from the CPU)")
    p.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N or mps")
    p.add_argument("--input", default=None, help="the picture every request sends (default: the first example)")
    args = p.parse_args(argv)
    if args.requests > 64:
        print("note: the app's queue holds 64 requests (MAX_QUEUE); more are turned away as 'queue full'")

    import torch

    from deepfake_lab.app.examples import examples
    from deepfake_lab.app.ui import cpu_cores, serving_plan

    picture = args.input or str(examples()[0].input)
    concurrency, threads = serving_plan(args.concurrency)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {cpu_cores()} core(s), load average {load:.2f} before the run; "
          f"app: {concurrency} request(s) at once, {threads} torch thread(s); input {Path(picture).name}; "
          f"{args.requests} simultaneous requests, {args.sequential} one at a time")
    rows = []
    for mode in args.modes.split(","):
        result = run_mode(mode.strip() == "on", args, picture)
        rows.append(result)
        times = result["latencies"] or [float("nan")]
        throughput = len(result["latencies"]) / result["wall"]
        print(f"\nbatching {'on' if result['batching'] else 'off'}:")
        print(f"  all answered: {'yes' if not result['failures'] else 'no'}; failed: {len(result['failures'])}"
              + (f" (e.g. {result['failures'][0][:160]})" if result["failures"] else ""))
        print(f"  latency p50 {percentile(times, 0.5):.2f} s, p90 {percentile(times, 0.9):.2f} s, "
              f"max {max(times):.2f} s (all {args.requests} answered in {result['wall']:.2f} s)")
        print(f"  throughput {throughput:.2f} requests/s; one at a time {result['one']:.2f} requests/s; "
              f"ratio {throughput / result['one']:.2f}x")
        print(f"  pictures per forward pass: {result['per_forward']:.2f} (1.00: none stacked)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load:.2f} after the run")
    if len(rows) == 2 and all(r["latencies"] for r in rows):
        on, off = rows if rows[0]["batching"] else rows[::-1]
        speed = (len(on["latencies"]) / on["wall"]) / (len(off["latencies"]) / off["wall"])
        print(f"batching on / off: throughput {speed:.2f}x, p50 "
              f"{statistics.median(off['latencies']) / statistics.median(on['latencies']):.2f}x shorter")
    return 0 if all(not r["failures"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
