"""Smoke tests of the benchmark suite (benchmarks/run.py): it runs, checks correctness before timing,
prints the table, and refuses to time a workload whose implementations disagree. No timing assertions."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
RUN = os.path.join(BENCH, "run.py")


@pytest.fixture(scope="module")
def bench():
    """benchmarks/run.py imported as a module (its sibling modules are found through sys.path)."""
    saved = list(sys.path)
    sys.path.insert(0, BENCH)
    try:
        spec = importlib.util.spec_from_file_location("benchmarks_run_under_test", RUN)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def table_rows(text: str) -> list[list[str]]:
    """The data rows of the markdown results table, as lists of cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| W"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_quick_run_checks_then_prints_table(tmp_path, bench):
    markdown = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, RUN, "--quick", "--impl", "engine,compiled,analytic", "--markdown", str(markdown)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "## Machine" in out and "NumPy" in out and "CPU:" in out

    workloads = bench.DEFAULT_WORKLOADS
    for name in workloads:
        assert f"check {name}: correctness check passed" in out, out
    assert "FAILED" not in out

    rows = table_rows(out)
    assert [(r[0].split(" ")[0], r[1]) for r in rows] == [
        (name, impl) for name in workloads for impl in ("engine", "compiled", "analytic")
    ]
    header = next(line for line in out.splitlines() if line.startswith("| workload"))
    columns = [c.strip() for c in header.strip().strip("|").split("|")]
    assert columns[:5] == ["workload", "implementation", "median ms/step", "min–max ms", "tokens/s"]
    analytic_col, fused_col = columns.index("× analytic"), columns.index("× torch-fused")
    memory_col = columns.index("peak traced MiB")
    for r in rows:
        assert len(r) == len(columns)
        assert float(r[2]) > 0
        low, high = (float(v) for v in r[3].split("–"))
        assert 0 < low <= float(r[2]) <= high
        assert float(r[4].replace(",", "")) > 0
        assert r[fused_col] == "n/a"  # torch was not asked for
        assert float(r[memory_col]) >= 0
        if r[1] == "analytic":
            assert r[analytic_col] == "1.00"

    written = markdown.read_text()
    assert table_rows(written) == rows
    assert "## Machine" in written


def test_rejects_unknown_workload():
    done = subprocess.run([sys.executable, RUN, "--quick", "--workloads", "W9"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "unknown workload 'W9'" in done.stderr


def _results(loss: float, scale: float = 1.0) -> tuple[float, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return loss, {"rnn.weight_hh_l0": rng.standard_normal((8, 2)) * scale,
                  "rnn.bias_ih_l0": np.linspace(-1.0, 1.0, 8)}


def test_check_agreement_passes_equal_and_flags_differences(bench):
    same = bench.check_agreement({"analytic": _results(2.0), "engine": _results(2.0 * (1 + 1e-6))}, 1e-4)
    assert same.passed and same.reference == "analytic"

    loss_off = bench.check_agreement({"engine": _results(2.001), "analytic": _results(2.0)}, 1e-4)
    assert not loss_off.passed and "engine: loss" in loss_off.problems[0]

    grad_off = bench.check_agreement({"analytic": _results(2.0), "engine": _results(2.0, 1.001)}, 1e-4)
    assert not grad_off.passed and "rnn.weight_hh_l0" in grad_off.problems[0]

    loss, grads = _results(2.0)
    grads["rnn.bias_ih_l0"] = grads["rnn.bias_ih_l0"].copy()
    grads["rnn.bias_ih_l0"][3] = np.nan
    assert not bench.check_agreement({"analytic": _results(2.0), "engine": (loss, grads)}, 1e-4).passed


def test_disagreeing_implementation_aborts_the_workload(bench, monkeypatch, capsys):
    engine = bench.NUMPY_IMPLEMENTATIONS["engine"]
    honest = engine.loss_and_grads

    def wrong(self):
        loss, grads = honest(self)
        grads["rnn.weight_hh_l0"] = grads["rnn.weight_hh_l0"] * 1.01
        return loss, grads

    monkeypatch.setattr(engine, "loss_and_grads", wrong)
    status = bench.main(["--quick", "--impl", "engine,analytic", "--workloads", "W2,W1", "--no-memory"])
    out = capsys.readouterr().out
    assert status == 1
    assert "check W2: correctness check FAILED" in out and "rnn.weight_hh_l0" in out
    assert "check W1: correctness check FAILED" in out
    assert table_rows(out) == []  # nothing was timed


def test_inference_benchmark_checks_every_row_then_prints_ratios():
    done = subprocess.run(
        [sys.executable, os.path.join(BENCH, "inference.py"), "--repeats", "5", "--warmup", "1",
         "--no-torch"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| implementation")}
    assert set(rows) == {"lean-numpy", "engine", "compiled"}
    assert rows["lean-numpy"].split("|")[3].strip() == "1.00"
