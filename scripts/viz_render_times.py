"""Wall time of `tinygrad-rnn graph` (whole process: forward, layout, writing) per layout, side
by side in one run, on this machine. Plain `dot` runs get a time limit (--limit seconds).

    python scripts/viz_render_times.py            # the issue's table
    python scripts/viz_render_times.py --limit 60
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

CASES = [
    # (label, arguments)
    ("--steps 10 (auto: dot)", ["--steps", "10"]),
    ("--steps 20 --layout dot", ["--steps", "20", "--layout", "dot"]),
    ("--steps 100 (auto: linear-in-T)", ["--steps", "100"]),
    ("--steps 100 --layout dot", ["--steps", "100", "--layout", "dot"]),
    ("--collapse --steps 50 --layout dot", ["--collapse", "--steps", "50", "--layout", "dot"]),
    ("--collapse --steps 1000 (auto: linear-in-T)", ["--collapse", "--steps", "1000"]),
    ("--steps 100 --layers 2 --bidirectional", ["--steps", "100", "--layers", "2", "--bidirectional"]),
    ("--steps 100 --format html", ["--steps", "100", "--format", "html"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=30.0, help="seconds before a run is stopped")
    args = parser.parse_args()
    print(f"| `tinygrad-rnn graph` | wall time (limit {args.limit:.0f} s) |\n|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in CASES:
            start = time.perf_counter()
            try:
                done = subprocess.run([sys.executable, "-m", "tinygrad_rnn.cli", "graph", *extra],
                                      cwd=tmp, capture_output=True, text=True, timeout=args.limit)
                took = time.perf_counter() - start
                text = f"{took:.2f} s" if done.returncode == 0 else f"failed: {done.stderr.strip()[:80]}"
            except subprocess.TimeoutExpired:
                text = f"over {args.limit:.0f} s (stopped)"
            print(f"| `{label}` | {text} |", flush=True)


if __name__ == "__main__":
    main()
