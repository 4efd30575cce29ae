"""Tiny helpers shared by the examples: command line, printed results, the optional loss-curve PNG.

Every example prints its losses as ``loss[<label>]: first <x> final <y>`` (``first`` is measured
before any training step, ``final`` after the last), which is what ``tests/test_examples.py``
parses to check that training made progress.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tinygrad_rnn import runtime


def parser(description: str, name: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every example shares: --quick, --seed, --plot, --no-plot.
    Every example starts here, so this also applies ``runtime.tune_for_training()``: one BLAS
    thread and freed memory kept mapped suit their small matrices (see tinygrad_rnn/runtime.py)."""
    runtime.tune_for_training()
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds (smoke test)")
    p.add_argument("--seed", type=int, default=0, help="seed for the library and the data")
    p.add_argument("--plot", default=f"{name}_loss.png", help="where to save the loss-curve PNG")
    p.add_argument("--no-plot", action="store_true", help="do not save the loss-curve PNG")
    p.add_argument("--no-compile", action="store_true",
                   help="train eagerly instead of replaying a traced step (tinygrad_rnn.compile)")
    return p


def report_loss(label: str, first: float, final: float) -> None:
    """The parseable line the smoke tests read."""
    print(f"loss[{label}]: first {first:.4f} final {final:.4f}")


def progress_bar() -> bool:
    """Show tqdm bars only on a terminal (logs of background runs stay readable)."""
    return sys.stderr.isatty()


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` is the time so far inside, the total after."""

    def __enter__(self) -> "Timer":
        self.start, self.end = time.perf_counter(), None
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = time.perf_counter()

    @property
    def seconds(self) -> float:
        return (self.end if self.end is not None else time.perf_counter()) - self.start


def save_curves(args: argparse.Namespace, curves: dict[str, list[float]], xlabel: str,
                ylabel: str, title: str) -> None:
    """Plot one line per label and save a PNG, if matplotlib (the ``plot`` extra) is installed."""
    if args.no_plot:
        return
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed, no loss curve saved: pip install 'tinygrad_rnn[plot]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=label)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(args.plot)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"loss curve saved to {path}")
