"""The engine's three-way cross-check: composed autograd vs handwritten analytic BPTT vs finite
differences, for one cell kind at a time (what ``tinygrad-rnn check`` prints)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import analytic
from .nn import GRU, LSTM, RNN
from .gradcheck import numeric_gradient
from .tensor import Tensor, no_grad, run_backward

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


@dataclass
class CheckResult:
    kind: str
    max_abs_analytic: float   # autograd vs analytic, over outputs and every gradient
    max_rel_analytic: float
    max_abs_numeric: float    # autograd vs central differences, over every gradient
    max_rel_numeric: float
    passed: bool


def _layer(kind: str, input_size: int, hidden: int):
    if kind.startswith("rnn"):
        return RNN(input_size, hidden, nonlinearity=kind.split("_")[1])
    return {"lstm": LSTM, "gru": GRU}[kind](input_size, hidden)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / (np.abs(b) + 1e-8)))


def check_kind(kind: str, steps: int = 5, batch: int = 2, input_size: int = 3, hidden: int = 4,
               seed: int = 0, eps: float = 1e-6) -> CheckResult:
    """Run one float64 comparison. The loss is Σ out·g_out + Σ h_n·g_h (+ Σ c_n·g_c) with random
    upstream gradients, so every output and final state is checked."""
    if kind not in KINDS:
        raise ValueError(f"check: kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    layer = _layer(kind, input_size, hidden).double()
    lstm = kind == "lstm"
    x = Tensor(rng.standard_normal((steps, batch, input_size)), requires_grad=True)
    h0 = Tensor(rng.standard_normal((1, batch, hidden)) * 0.5, requires_grad=True)
    c0 = Tensor(rng.standard_normal((1, batch, hidden)) * 0.5, requires_grad=True)
    g_out = rng.standard_normal((steps, batch, hidden))
    g_h = rng.standard_normal((1, batch, hidden))
    g_c = rng.standard_normal((1, batch, hidden))
    leaves = [x, h0] + ([c0] if lstm else []) + layer.parameters()

    def run():
        if lstm:
            out, (h_n, c_n) = layer(x, (h0, c0))
            return [out, h_n, c_n], [g_out, g_h, g_c]
        out, h_n = layer(x, h0)
        return [out, h_n], [g_out, g_h]

    outs, grads = run()
    run_backward(outs, grads, retain_graph=False)
    auto = [leaf.grad.copy() for leaf in leaves]
    for leaf in leaves:
        leaf.grad = None

    # Analytic BPTT on the same weights.
    p = {name: t.data for name, t in layer.named_parameters()}
    weights = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    if lstm:
        out, h_n, c_n, cache = analytic.lstm_forward(x.data, h0.data[0], c0.data[0], *weights)
        d = analytic.lstm_backward(g_out, g_h[0], g_c[0], cache)
        values = [out, h_n[None], c_n[None]]
    elif kind == "gru":
        out, h_n, cache = analytic.gru_forward(x.data, h0.data[0], *weights)
        d = analytic.gru_backward(g_out, g_h[0], cache)
        values = [out, h_n[None]]
    else:
        out, h_n, cache = analytic.rnn_forward(x.data, h0.data[0], *weights, nonlinearity=kind.split("_")[1])
        d = analytic.rnn_backward(g_out, g_h[0], cache)
        values = [out, h_n[None]]
    ref = [d["x"], d["h0"][None]] + ([d["c0"][None]] if lstm else []) + \
          [d[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    pairs = list(zip([o.data for o in outs], values)) + list(zip(auto, ref))
    abs_a = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    rel_a = max(_rel(a, b) for a, b in pairs)

    # Central differences of the same loss.
    def loss() -> float:
        with no_grad():
            o, g = run()
        return float(sum(np.sum(a.data * b) for a, b in zip(o, g)))

    abs_n = rel_n = 0.0
    for leaf, grad in zip(leaves, auto):
        numeric = numeric_gradient(loss, leaf, eps)
        abs_n = max(abs_n, float(np.max(np.abs(grad - numeric))))
        rel_n = max(rel_n, float(np.max(np.abs(grad - numeric) / (np.abs(numeric) + 1e-4))))
    passed = rel_a < 1e-8 and rel_n < 1e-5
    return CheckResult(kind, abs_a, rel_a, abs_n, rel_n, passed)


def format_table(results: list[CheckResult]) -> str:
    lines = ["| cell | autograd vs analytic: max abs | max rel | autograd vs finite diff: max abs | max rel | result |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.kind} | {r.max_abs_analytic:.2e} | {r.max_rel_analytic:.2e} | "
                     f"{r.max_abs_numeric:.2e} | {r.max_rel_numeric:.2e} | {'PASS' if r.passed else 'FAIL'} |")
    return "\n".join(lines)
