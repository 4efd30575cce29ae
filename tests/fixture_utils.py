"""Load the PyTorch reference fixtures in ``tests/fixtures/`` (layout: its README.md).

Usage in a test::

    from fixture_utils import fixture_names, load_fixture

    for name in fixture_names("layer_lstm_"):
        fx = load_fixture(name)
        fx["config"]["hidden_size"], fx["x"], fx["params"]["weight_ih_l0"], fx["grad"]["x"]

Only NumPy is needed; the fixtures were written by ``scripts/make_torch_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"

# npz key prefixes and the sub-dict of load_fixture's result each one fills
_GROUPS = {"param.": "params", "g.": "g", "out.": "out", "grad.": "grad"}


def fixture_names(prefix: str = "") -> list[str]:
    """Sorted names (no ``.npz``) of the fixtures whose name starts with ``prefix``."""
    names = sorted(p.stem for p in FIXTURE_DIR.glob("*.npz") if p.stem.startswith(prefix))
    if not names:
        raise ValueError(f"prefix: no fixture in {FIXTURE_DIR} starts with {prefix!r}")
    return names


def load_fixture(name: str) -> dict[str, Any]:
    """Read one fixture into a plain dict.

    Keys: ``name``; ``config`` and ``meta`` (dicts parsed from JSON); ``x``;
    ``h0``, ``c0``, ``lengths`` (arrays, or None when the fixture has none);
    ``params`` (state_dict name -> array); ``g`` (upstream gradients),
    ``out`` (PyTorch's outputs) and ``grad`` (PyTorch's gradients: ``x``,
    ``h0``, ``c0`` and every parameter name), each keyed without its prefix.
    """
    path = FIXTURE_DIR / f"{name}.npz"
    if not path.is_file():
        raise ValueError(f"name: expected one of the fixtures in {FIXTURE_DIR}, got {name!r}")
    fixture: dict[str, Any] = {"name": name, "h0": None, "c0": None, "lengths": None}
    fixture.update({group: {} for group in _GROUPS.values()})
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            value = data[key]
            if key in ("config", "meta"):
                fixture[key] = json.loads(str(value[()]))
                continue
            for prefix, group in _GROUPS.items():
                if key.startswith(prefix):
                    fixture[group][key[len(prefix):]] = value
                    break
            else:
                fixture[key] = value
    return fixture


def fixture_loss(fixture: dict[str, Any], output: np.ndarray | None = None,
                 h_n: np.ndarray | None = None, c_n: np.ndarray | None = None) -> float:
    """The fixture's loss for given results: sum(output * g.output) + sum(h_n * g.h_n) (+ c_n term).

    Results passed as None are left out (cells have no ``output``).
    """
    total = 0.0
    for key, value in (("output", output), ("h_n", h_n), ("c_n", c_n)):
        if value is not None:
            total += float(np.sum(np.asarray(value) * fixture["g"][key]))
    return total
