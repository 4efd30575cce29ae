"""Smoke tests: every example runs end to end with --quick and its loss goes down.

Each script runs once in a subprocess (as a user would run it) in a temporary directory; the
examples print ``loss[<label>]: first <x> final <y>`` lines, measured on held-out data before
and after training, which these tests parse.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOSS_LINE = re.compile(r"^loss\[(\w+)\]: first ([\d.]+) final ([\d.]+)$", re.MULTILINE)


@functools.lru_cache(maxsize=None)  # each example runs once even when several tests read it
def run_example(name: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--no-plot"],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
        assert not os.listdir(cwd), f"{name} --no-plot wrote files: {os.listdir(cwd)}"
    return done.stdout


def losses(output: str) -> dict[str, tuple[float, float]]:
    found = {label: (float(a), float(b)) for label, a, b in LOSS_LINE.findall(output)}
    assert found, f"no 'loss[...]: first ... final ...' line in the output:\n{output}"
    return found


@pytest.mark.parametrize("name, labels", [
    ("char_names.py", {"rnn", "lstm", "gru"}),
    ("char_text.py", {"lstm"}),
    ("time_series.py", {"synthetic", "sunspots"}),
    ("sentiment.py", {"gru"}),
    ("surname_language.py", {"rnn", "gru", "lstm"}),
    ("custom_cells.py", {"rnn", "gru", "lstm"}),
    ("fit_predict_series.py", {"tanh"}),
    ("next_token_accuracy.py", {"lstm"}),
    ("adding_problem.py", {"lstm", "gru", "rnn"}),
    ("copy_task.py", {"lstm", "gru"}),
    ("embedded_reber.py", {"lstm", "gru", "rnn"}),
])
def test_example_loss_goes_down(name, labels):
    found = losses(run_example(name))
    assert set(found) == labels
    for label, (first, final) in found.items():
        assert final < first, f"{name} [{label}]: loss went from {first} to {final}"


def test_cells_from_scratch_errors_are_tiny():
    out = run_example("cells_from_scratch.py")
    rows = re.findall(r"^(d? ?\w+)\s+([\d.e+-]+)\s+([\d.e+-]+)$", out, re.MULTILINE)
    assert len(rows) == 10, out  # output, h_n, c_n and 7 gradients
    for name, vs_layer, vs_analytic in rows:
        assert float(vs_layer) < 1e-12 and float(vs_analytic) < 1e-12, f"{name}: {vs_layer}, {vs_analytic}"
    # ...while a deliberately wrong cell is caught by the same comparison.
    swapped = float(re.search(r"swapped differs by: ([\d.e+-]+)", out).group(1))
    assert swapped > 1e-3


def test_time_series_rnn_beats_naive_forecast():
    out = run_example("time_series.py")
    table = out.split("(b) sunspots")[1]
    rmse = {name.strip(): float(value) for name, value in
            re.findall(r"^  (RNN|last value)\s+[\d.]+\s+[\d.]+\s+([\d.]+)$", table, re.MULTILINE)}
    assert rmse["RNN"] < rmse["last value"], table


def test_sentiment_padding_does_not_leak():
    out = run_example("sentiment.py")
    gap = float(re.search(r"padded batch\| = ([\d.e+-]+)", out).group(1))
    assert gap < 1e-5, out
