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
    proj_size: int = 0                       # LSTM only


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


# LSTM with a projection (PyTorch's proj_size): h and the output have P < H features.
PROJ_CASES = [
    LayerCase("proj", proj_size=2),
    LayerCase("proj_layers2_bidir", num_layers=2, bidirectional=True, proj_size=3),
    LayerCase("proj_lengths_bidir_batch_first", bidirectional=True, batch_first=True, proj_size=2,
              lengths=(5, 7, 3)),
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
    if case.proj_size:
        config["proj_size"] = case.proj_size
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
            shape = state_shape
            if sname == "h0" and case.proj_size:  # h is projected to P features, c keeps H
                shape = state_shape[:-1] + (case.proj_size,)
            arrays[sname] = _random(rng, shape, dt, scale=0.5)
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


# ----- cross-entropy with class-probability targets ------------------------------------------------
CE_CASES = [  # (suffix, logits shape with classes LAST, reduction, label_smoothing, class weights)
    ("mean", (6, 5), "mean", 0.0, False),
    ("sum_weight", (6, 5), "sum", 0.0, True),
    ("none_seq", (3, 4, 5), "none", 0.0, False),
    ("mean_smoothing_weight_seq", (3, 4, 5), "mean", 0.1, True),
]


def make_ce_fixture(suffix: str, shape: tuple, reduction: str, smoothing: float, weighted: bool) -> int:
    """F.cross_entropy with soft targets (rows summing to 1); torch wants the classes at dim 1."""
    name = f"ce_prob_{suffix}"
    rng = np.random.default_rng(_seed(name))
    x = rng.standard_normal(shape) * 2.0
    raw = rng.random(shape)
    target = raw / raw.sum(axis=-1, keepdims=True)
    arrays = {"x": x, "target": target}
    weight = None
    if weighted:
        arrays["weight"] = rng.random(shape[-1]) + 0.5
        weight = torch.tensor(arrays["weight"])
    x_t = _tensor(x, grad=True)
    to_torch = (lambda a: a) if len(shape) == 2 else (lambda a: a.movedim(-1, 1))
    loss = torch.nn.functional.cross_entropy(to_torch(x_t), to_torch(torch.tensor(target)), weight=weight,
                                             reduction=reduction, label_smoothing=smoothing)
    g = rng.standard_normal(tuple(loss.shape))
    (loss * _tensor(g)).sum().backward()
    arrays.update({"g.loss": g, "out.loss": loss.detach().numpy().copy(), "grad.x": x_t.grad.numpy().copy()})
    config = {"reduction": reduction, "label_smoothing": smoothing, "weighted": weighted}
    meta = {"dtype": "float64", "seed": _seed(name), "torch_version": torch.__version__,
            "loss": "sum(loss * g.loss)", "module": "cross_entropy"}
    return _save(name, arrays, config, meta)


# ----- nn.init laws -----------------------------------------------------------------------------------
INIT_CASES = [  # (name, torch function, shape, kwargs)
    ("uniform", "uniform_", (300, 200), {"a": -0.5, "b": 1.5}),
    ("normal", "normal_", (300, 200), {"mean": 0.3, "std": 2.0}),
    ("zeros", "zeros_", (30, 20), {}),
    ("ones", "ones_", (30, 20), {}),
    ("xavier_uniform", "xavier_uniform_", (300, 200), {"gain": 2.0}),
    ("xavier_normal", "xavier_normal_", (300, 200), {"gain": 0.5}),
    ("kaiming_uniform", "kaiming_uniform_", (300, 200), {}),
    ("kaiming_uniform_fan_out_relu", "kaiming_uniform_", (300, 200), {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal", "kaiming_normal_", (300, 200), {"a": 0.2}),
    ("kaiming_normal_fan_out_tanh", "kaiming_normal_", (200, 50, 3), {"mode": "fan_out", "nonlinearity": "tanh"}),
    ("orthogonal_tall", "orthogonal_", (300, 200), {"gain": 1.5}),
    ("orthogonal_wide", "orthogonal_", (100, 250), {}),
]
GAIN_CASES = [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
              ("leaky_relu", 0.2), ("selu", None)]


def make_init_fixture() -> int:
    """Sample moments and extremes of every law (one draw each), and calculate_gain's values."""
    torch.manual_seed(_seed("init_laws"))
    arrays, config = {}, {"cases": [], "gains": []}
    for name, fn, shape, kwargs in INIT_CASES:
        w = torch.empty(shape, dtype=torch.float64)
        getattr(torch.nn.init, fn)(w, **kwargs)
        a = w.numpy()
        rows = a.reshape(shape[0], -1)
        gram = rows @ rows.T if rows.shape[0] <= rows.shape[1] else rows.T @ rows
        arrays[f"out.{name}"] = np.array([a.mean(), a.std(), a.min(), a.max()])
        arrays[f"out.{name}_gram_diag_mean"] = np.array(np.diag(gram).mean())
        arrays[f"out.{name}_gram_offdiag_maxabs"] = np.array(np.abs(gram - np.diag(np.diag(gram))).max())
        config["cases"].append({"name": name, "fn": fn, "shape": list(shape), "kwargs": kwargs})
    for nonlinearity, param in GAIN_CASES:
        config["gains"].append([nonlinearity, param, torch.nn.init.calculate_gain(nonlinearity, param)])
    meta = {"dtype": "float64", "seed": _seed("init_laws"), "torch_version": torch.__version__,
            "module": "init", "stats": "out.<case> = [mean, std, min, max] of one draw"}
    return _save("init_laws", arrays, config, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["all", "proj", "ce", "init"], default="all",
                        help="write only this group (the others' files stay byte-identical)")
    only = parser.parse_args().only
    torch.use_deterministic_algorithms(True)
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    total, count = 0, 0
    if only in ("all", "proj"):
        for index, case in enumerate(PROJ_CASES):
            _, size = make_layer_fixture("LSTM", None, "lstm", case, index)
            total, count = total + size, count + 1
    if only in ("all", "ce"):
        for case in CE_CASES:
            total, count = total + make_ce_fixture(*case), count + 1
    if only in ("all", "init"):
        total, count = total + make_init_fixture(), count + 1
    for kind, nonlinearity, short in KINDS if only == "all" else ():
        for index, case in enumerate(CELL_CASES):
            _, size = make_cell_fixture(kind, nonlinearity, short, case, index)
            total, count = total + size, count + 1
        for index, case in enumerate(LAYER_CASES):
            _, size = make_layer_fixture(kind, nonlinearity, short, case, index)
            total, count = total + size, count + 1
    print(f"wrote {count} fixtures, {total / 1024:.1f} KiB, to {FIXTURE_DIR}")


if __name__ == "__main__":
    main()
