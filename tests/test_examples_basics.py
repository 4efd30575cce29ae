"""Smoke test: examples/autograd_basics.py runs in a fresh interpreter, exits 0, and prints the
gradients of its neuron, which we recompute here with plain NumPy."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "autograd_basics.py"


def test_autograd_basics_runs_and_prints_correct_gradients():
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "OK: gradients match" in out
    assert "Traceback" not in done.stderr

    # The script's neuron: x = [0.5, -1, 2], w = [0.3, 0.8, -0.2], b = 0.1, target 0.5.
    x, w, b, target = np.array([0.5, -1.0, 2.0]), np.array([0.3, 0.8, -0.2]), 0.1, 0.5
    y = np.tanh(w @ x + b)
    dz = 2 * (y - target) * (1 - y ** 2)
    loss = float(re.search(r"loss\s*=\s*(\S+)", out).group(1))
    dw = np.array(re.search(r"dL/dw\s*=\s*\[([^\]]*)\]", out).group(1).split(), dtype=float)
    db = float(re.search(r"dL/db\s*=\s*(\S+)", out).group(1))
    np.testing.assert_allclose(loss, (y - target) ** 2, atol=1e-6)
    np.testing.assert_allclose(dw, dz * x, atol=1e-6)
    np.testing.assert_allclose(db, dz, atol=1e-6)
