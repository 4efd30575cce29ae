"""Write PyTorch reference fixtures for the recurrent cells and layers.

Each fixture is one small ``.npz`` file in ``tests/fixtures/``: inputs, initial
states, parameters, random upstream gradients and what PyTorch computed from
them (outputs and every gradient).  The test suite only reads these files, so
it runs without PyTorch; this script is the one place that needs it.  The
file layout is documented in ``tests/fixtures/README.md``.

Run it from a separate environment that has torch (never the project's venv):

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install numpy torch
    /work/torchvenv/bin/python scripts/make_torch_fixtures.py

The loss behind every gradient is
``sum(output * g.output) + sum(h_n * g.h_n) (+ sum(c_n * g.c_n))``, with the
``g.*`` arrays drawn at random so that a wrong gradient rule cannot pass by
symmetry.
"""

from __future__ import annotations

import argparse
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

# (kind, nonlinearity, short name used in file names)
KINDS = [("RNN", "tanh", "rnn_tanh"), ("RNN", "relu", "rnn_relu"), ("LSTM", None, "lstm"), ("GRU", None, "gru")]

# Small sizes (I, H, L, N), rotated between fixtures so shape bugs that only
# show when I != H or N == 1 are not masked by one lucky choice.
SIZES = [(3, 4, 5, 2), (4, 5, 7, 3), (5, 6, 6, 1)]

LOSS = "sum(output * g.output) + sum(h_n * g.h_n) (+ sum(c_n * g.c_n) for LSTM)"


@dataclass
class LayerCase:
    suffix: str
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    bidirectional: bool = False
    with_state: bool = True
    unbatched: bool = False
    lengths: tuple[int, ...] | None = None  # needs N == len(lengths), L >= max(lengths)
    dtype: str = "float64"


LAYER_CASES = [
    LayerCase("base"),
    LayerCase("nostate", with_state=False),
    LayerCase("float32", dtype="float32"),
    LayerCase("layers2", num_layers=2),
    LayerCase("bidir", bidirectional=True),
    LayerCase("layers2_bidir", num_layers=2, bidirectional=True),
    LayerCase("batch_first", batch_first=True),
    LayerCase("nobias", bias=False),
    # Unsorted lengths, one sequence shorter than L (padding must be skipped).
    LayerCase("lengths", lengths=(5, 7, 3)),
    LayerCase("lengths_bidir_nostate", bidirectional=True, with_state=False, lengths=(5, 7, 3)),
    # Every sequence shorter than L: padded outputs past the longest must be 0 too.
    LayerCase("lengths_layers2_bidir_batch_first", num_layers=2, bidirectional=True,
              batch_first=True, lengths=(4, 2, 6)),
    LayerCase("unbatched", unbatched=True),
    LayerCase("unbatched_layers2_bidir", num_layers=2, bidirectional=True, unbatched=True),
]


@dataclass
class CellCase:
    suffix: str
    bias: bool = True
    batched: bool = True
    with_state: bool = True
    dtype: str = "float64"


CELL_CASES = [
    CellCase("batched_state"),
    CellCase("batched_nostate", with_state=False),
    CellCase("batched_state_nobias", bias=False),
    CellCase("unbatched_state", batched=False),
    CellCase("unbatched_nostate_nobias", batched=False, with_state=False, bias=False),
    CellCase("float32", dtype="float32"),
]


def _seed(name: str) -> int:
    """A stable seed per fixture name, independent of the order of the lists above."""
    return zlib.crc32(name.encode())


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _tensor(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, requires_grad=grad)


def _save(name: str, arrays: dict[str, np.ndarray], config: dict, meta: dict) -> int:
    path = FIXTURE_DIR / f"{name}.npz"
    arrays = dict(arrays)
    arrays["config"] = np.array(json.dumps(config, sort_keys=True))
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(path, **arrays)
    return path.stat().st_size


def _params_and_grads(module: nn.Module) -> dict[str, np.ndarray]:
    arrays = {}
    for pname, p in module.named_parameters():
        arrays[f"param.{pname}"] = p.detach().numpy().copy()
        arrays[f"grad.{pname}"] = p.grad.numpy().copy()
    return arrays


def make_layer_fixture(kind: str, nonlinearity: str | None, short: str, case: LayerCase, index: int) -> tuple[str, int]:
    name = f"layer_{short}_{case.suffix}"
    seed = _seed(name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    I, H, L, N = SIZES[index % len(SIZES)]
    if case.lengths is not None:
        N, L = len(case.lengths), 7
    D = 2 if case.bidirectional else 1
    dt = case.dtype

    config = {"kind": kind, "input_size": I, "hidden_size": H, "num_layers": case.num_layers,
              "bias": case.bias, "batch_first": case.batch_first, "dropout": 0.0,
              "bidirectional": case.bidirectional}
    if kind == "RNN":
        config["nonlinearity"] = nonlinearity
    ctor = {k: v for k, v in config.items() if k != "kind"}
    layer = getattr(nn, kind)(**ctor).to(getattr(torch, dt))

    if case.unbatched:
        x_shape, state_shape = (L, I), (D * case.num_layers, H)
    else:
        x_shape = (N, L, I) if case.batch_first else (L, N, I)
        state_shape = (D * case.num_layers, N, H)
    arrays = {"x": _random(rng, x_shape, dt)}
    x_t = _tensor(arrays["x"], grad=True)

    hx, state_ts = None, {}
    if case.with_state:
        for sname in ("h0", "c0") if kind == "LSTM" else ("h0",):
            arrays[sname] = _random(rng, state_shape, dt, scale=0.5)
            state_ts[sname] = _tensor(arrays[sname], grad=True)
        hx = (state_ts["h0"], state_ts["c0"]) if kind == "LSTM" else state_ts["h0"]

    if case.lengths is not None:
        arrays["lengths"] = np.array(case.lengths, dtype=np.int64)
        packed = pack_padded_sequence(x_t, torch.tensor(case.lengths, dtype=torch.int64),
                                      batch_first=case.batch_first, enforce_sorted=False)
        out_packed, hn = layer(packed, hx)
        output, _ = pad_packed_sequence(out_packed, batch_first=case.batch_first, total_length=L)
    else:
        output, hn = layer(x_t, hx)
    results = {"output": output}
    if kind == "LSTM":
        results["h_n"], results["c_n"] = hn
    else:
        results["h_n"] = hn

    loss = 0
    for rname, r in results.items():
        g = _random(rng, tuple(r.shape), dt)
        arrays[f"g.{rname}"] = g
        arrays[f"out.{rname}"] = r.detach().numpy().copy()
        loss = loss + (r * _tensor(g)).sum()
    loss.backward()

    arrays["grad.x"] = x_t.grad.numpy().copy()
    for sname, s in state_ts.items():
        arrays[f"grad.{sname}"] = s.grad.numpy().copy()
    arrays.update(_params_and_grads(layer))

    meta = {"dtype": dt, "seed": seed, "torch_version": torch.__version__, "loss": LOSS,
            "unbatched": case.unbatched, "has_state": case.with_state,
            "has_lengths": case.lengths is not None, "module": "layer"}
    return name, _save(name, arrays, config, meta)


def make_cell_fixture(kind: str, nonlinearity: str | None, short: str, case: CellCase, index: int) -> tuple[str, int]:
    name = f"cell_{short}_{case.suffix}"
    seed = _seed(name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    I, H, _, N = SIZES[index % len(SIZES)]
    dt = case.dtype
    cell_kind = kind + "Cell"

    config = {"kind": cell_kind, "input_size": I, "hidden_size": H, "bias": case.bias}
    if kind == "RNN":
        config["nonlinearity"] = nonlinearity
    ctor = {k: v for k, v in config.items() if k != "kind"}
    cell = getattr(nn, cell_kind)(**ctor).to(getattr(torch, dt))

    x_shape, state_shape = ((N, I), (N, H)) if case.batched else ((I,), (H,))
    arrays = {"x": _random(rng, x_shape, dt)}
    x_t = _tensor(arrays["x"], grad=True)

    hx, state_ts = None, {}
    if case.with_state:
        for sname in ("h0", "c0") if kind == "LSTM" else ("h0",):
            arrays[sname] = _random(rng, state_shape, dt, scale=0.5)
            state_ts[sname] = _tensor(arrays[sname], grad=True)
        hx = (state_ts["h0"], state_ts["c0"]) if kind == "LSTM" else state_ts["h0"]

    new_state = cell(x_t, hx)
    if kind == "LSTM":
        results = {"h_n": new_state[0], "c_n": new_state[1]}
    else:
        results = {"h_n": new_state}

    loss = 0
    for rname, r in results.items():
        g = _random(rng, tuple(r.shape), dt)
        arrays[f"g.{rname}"] = g
        arrays[f"out.{rname}"] = r.detach().numpy().copy()
        loss = loss + (r * _tensor(g)).sum()
    loss.backward()

    arrays["grad.x"] = x_t.grad.numpy().copy()
    for sname, s in state_ts.items():
        arrays[f"grad.{sname}"] = s.grad.numpy().copy()
    arrays.update(_params_and_grads(cell))

    meta = {"dtype": dt, "seed": seed, "torch_version": torch.__version__,
            "loss": "sum(h_n * g.h_n) (+ sum(c_n * g.c_n) for LSTMCell)",
            "unbatched": not case.batched, "has_state": case.with_state,
            "has_lengths": False, "module": "cell"}
    return name, _save(name, arrays, config, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    torch.use_deterministic_algorithms(True)
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    total, count = 0, 0
    for kind, nonlinearity, short in KINDS:
        for index, case in enumerate(CELL_CASES):
            _, size = make_cell_fixture(kind, nonlinearity, short, case, index)
            total, count = total + size, count + 1
        for index, case in enumerate(LAYER_CASES):
            _, size = make_layer_fixture(kind, nonlinearity, short, case, index)
            total, count = total + size, count + 1
    print(f"wrote {count} fixtures, {total / 1024:.1f} KiB, to {FIXTURE_DIR}")


if __name__ == "__main__":
    main()
