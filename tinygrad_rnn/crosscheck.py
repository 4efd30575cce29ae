"""The three-way cross-check behind ``tinygrad-rnn check``: composed autograd vs handwritten
analytic BPTT vs finite differences, one cell at a time, as a use of
:func:`tinygrad_rnn.testing.crosscheck_cell`.

The built-in cells are checked against :mod:`tinygrad_rnn.reference.analytic` through small adapters to
``crosscheck_cell``'s forward/backward signature; a user's cell and derivation are loaded from
``package.module:Name`` specs (:func:`check_user_cell`).
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

from .reference import analytic
from .nn import GRUCell, LSTMCell, RNNCell
from .random import manual_seed
from .testing import CellCheck, crosscheck_cell

__all__ = ["KINDS", "CheckResult", "analytic_pair", "check_kind", "check_user_cell", "format_table",
           "load_object"]

KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
CheckResult = CellCheck  # the row of the table: name, max abs/rel vs analytic and vs finite differences


def _weights(params: dict) -> tuple:
    return params["weight_ih"], params["weight_hh"], params.get("bias_ih"), params.get("bias_hh")


def _param_grads(d: dict, params: list[str]) -> dict:
    return {name: d[name] for name in params}


def analytic_pair(kind: str) -> tuple[Callable, Callable]:
    """``(forward, backward)`` of :mod:`tinygrad_rnn.reference.analytic` for a built-in cell kind, adapted to
    ``crosscheck_cell``'s ``forward(x, state0, params)`` / ``backward(d_outputs, d_final_state,
    cache)``. The cells' output is h, their state ``(h,)`` (LSTM ``(h, c)``)."""
    if kind not in KINDS:
        raise ValueError(f"check: kind must be one of {KINDS}, got {kind!r}")
    names = [n for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    if kind == "lstm":
        def forward(x, state0, params):
            out, h_n, c_n, cache = analytic.lstm_forward(x, state0[0], state0[1], *_weights(params))
            return out, (h_n, c_n), cache

        def backward(d_out, d_state, cache):
            d = analytic.lstm_backward(d_out, d_state[0], d_state[1], cache)
            return {"x": d["x"], "state0": (d["h0"], d["c0"]), **_param_grads(d, names)}
    elif kind == "gru":
        def forward(x, state0, params):
            out, h_n, cache = analytic.gru_forward(x, state0[0], *_weights(params))
            return out, (h_n,), cache

        def backward(d_out, d_state, cache):
            d = analytic.gru_backward(d_out, d_state[0], cache)
            return {"x": d["x"], "state0": (d["h0"],), **_param_grads(d, names)}
    else:
        nonlinearity = kind.split("_")[1]

        def forward(x, state0, params):
            out, h_n, cache = analytic.rnn_forward(x, state0[0], *_weights(params), nonlinearity=nonlinearity)
            return out, (h_n,), cache

        def backward(d_out, d_state, cache):
            d = analytic.rnn_backward(d_out, d_state[0], cache)
            return {"x": d["x"], "state0": (d["h0"],), **_param_grads(d, names)}
    return forward, backward


def check_kind(kind: str, steps: int = 5, batch: int = 2, input_size: int = 3, hidden: int = 4,
               seed: int = 0) -> CheckResult:
    """The built-in cell ``kind`` (float64, seeded weights) against :mod:`tinygrad_rnn.reference.analytic`
    and central differences; the loss puts random upstream gradients on every output and state."""
    forward, backward = analytic_pair(kind)
    manual_seed(seed)
    if kind.startswith("rnn"):
        cell = RNNCell(input_size, hidden, nonlinearity=kind.split("_")[1])
    else:
        cell = {"lstm": LSTMCell, "gru": GRUCell}[kind](input_size, hidden)
    result = crosscheck_cell(cell, forward, backward, steps=steps, batch=batch, seed=seed,
                             raise_exception=False)
    result.name = kind
    return result


def load_object(spec: str, flag: str) -> Any:
    """``package.module:Name`` (``Name`` may be dotted) imported from the current directory or
    the installed packages, like an entry point."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{flag}: expected package.module:Name, got {spec!r}")
    if os.getcwd() not in sys.path:  # a console script does not put the working directory there
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{flag}: cannot import module {module_name!r} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{flag}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _analytic_functions(spec: str) -> tuple[Callable, Callable]:
    """``module:forward,backward``, or ``module:obj`` where ``obj`` has ``forward`` and ``backward``."""
    module_name, _, names = spec.partition(":")
    if "," in names:
        parts = [p.strip() for p in names.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"--analytic: expected package.module:forward,backward, got {spec!r}")
        forward, backward = (load_object(f"{module_name}:{p}", "--analytic") for p in parts)
    else:
        holder = load_object(spec, "--analytic")
        forward, backward = getattr(holder, "forward", None), getattr(holder, "backward", None)
        if not callable(forward) or not callable(backward):
            raise ValueError(f"--analytic: {spec!r} must name forward,backward or an object with "
                             "callable forward and backward attributes")
    for fn, what in ((forward, "forward"), (backward, "backward")):
        if not callable(fn):
            raise ValueError(f"--analytic: {what} in {spec!r} is not callable")
    return forward, backward


def check_user_cell(cell_spec: str, analytic_spec: str, input_size: int = 3, hidden: int = 4,
                    steps: int = 5, batch: int = 2, seed: int = 0) -> CheckResult:
    """A user's cell (``module:CellClass`` called as ``CellClass(input_size, hidden)``, or
    ``module:cell`` naming a cell instance) against the user's ``forward``/``backward``."""
    target = load_object(cell_spec, "--cell")
    forward, backward = _analytic_functions(analytic_spec)
    manual_seed(seed)
    cell = target(input_size, hidden) if isinstance(target, type) or not hasattr(target, "step") else target
    if not hasattr(cell, "step"):
        raise ValueError(f"--cell: {cell_spec!r} did not give a cell (no step method)")
    result = crosscheck_cell(cell, forward, backward, steps=steps, batch=batch, seed=seed,
                             input_size=getattr(cell, "input_size", input_size), raise_exception=False)
    result.name = type(cell).__name__
    return result


def format_table(results: list[CheckResult]) -> str:
    """The results of ``tinygrad-rnn check`` as a Markdown table: max abs/rel errors and PASS/FAIL per cell."""
    lines = ["| cell | autograd vs analytic: max abs | max rel | autograd vs finite diff: max abs | max rel | result |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.max_abs_analytic:.2e} | {r.max_rel_analytic:.2e} | "
                     f"{r.max_abs_numeric:.2e} | {r.max_rel_numeric:.2e} | {'PASS' if r.passed else 'FAIL'} |")
    return "\n".join(lines)
