"""examples/visualize_unrolled.py end to end, in a subprocess writing into a temporary directory."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "visualize_unrolled.py"
ROW = re.compile(r"^\s*(\d+)((?:\s+\d\.\d{3}e[+-]\d+){3})\s*$", re.M)


def test_visualize_unrolled_writes_the_graph_and_the_gradient_flow_table(tmp_path):
    have_dot = shutil.which("dot") is not None
    if not have_dot and os.environ.get("TINYGRAD_RNN_ALLOW_NO_DOT") != "1":
        pytest.fail("Graphviz `dot` is not installed: install it (apt-get install graphviz) or set "
                    "TINYGRAD_RNN_ALLOW_NO_DOT=1 to accept the example's no-SVG path")
    result = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    folder = tmp_path / "out"

    dot_source = (folder / "lstm_unrolled.dot").read_text(encoding="utf-8")
    for t in range(3):
        assert f'label="lstm/l0/fwd/t{t}"' in dot_source
    assert "|grad|" in dot_source
    if have_dot:
        svg = ET.parse(folder / "lstm_unrolled.svg").getroot()
        texts = {node.text for node in svg.iter("{http://www.w3.org/2000/svg}text")}
        assert {"lstm/l0/fwd/t0", "lstm/l0/fwd/t1", "lstm/l0/fwd/t2"} <= texts
        assert any(text and text.startswith("|grad|") for text in texts)
    else:
        assert "apt-get install graphviz" in out

    # The table: t = 0, 5, ..., 45 and 49, three norms per row, decaying back in time.
    assert "||dL/dh_t||" in out
    rows = {int(t): [float(v) for v in values.split()] for t, values in ROW.findall(out)}
    assert sorted(rows) == list(range(0, 50, 5)) + [49]
    for column in range(3):
        assert 0 < rows[0][column] < rows[25][column] < rows[49][column]
    assert "Look for" in out

    if importlib.util.find_spec("matplotlib") is not None:
        assert (folder / "gradient_flow.png").read_bytes()[:4] == b"\x89PNG"
    else:
        assert "pip install tinygrad_rnn[plot]" in out and not (folder / "gradient_flow.png").exists()
