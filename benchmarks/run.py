"""Run every benchmark of the package and print their tables.

    python benchmarks/run.py                 # all lessons, on the default device
    python benchmarks/run.py --device cuda   # on a GPU (see gpu_check.sh)
    python benchmarks/run.py cyclegan pix2pix
    python benchmarks/run.py --threads 1     # one CPU thread each (a shared or busy machine)

Each ``bench_<lesson>.py`` times the project's fast path against a plain fp32 eager baseline of the same
networks *in the same process*, and prints the ratio: the machine's noise cancels in a ratio, not in a time.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="which bench_<lesson>.py to run (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads in every benchmark (default: torch's choice)")
    args, rest = parser.parse_known_args()
    if args.threads:
        rest = ["--threads", str(args.threads), *rest]
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.lessons:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.lessons]
        if not scripts:
            parser.error(f"no benchmark named {args.lessons}; have {[s.stem[6:] for s in HERE.glob('bench_*.py')]}")
    failed = 0
    for script in scripts:
        print(f"\n=== {script.stem.removeprefix('bench_')} ===", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(script), "--device", args.device, *rest])
        print(f"({script.name}: {time.perf_counter() - start:.0f} s, exit {done.returncode})", flush=True)
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
