"""Finite-difference gradient checking.

For a function ``f`` with outputs ``y`` and a random upstream gradient ``u``, reverse mode gives
``∂(Σ u·y)/∂x``; central differences give ``(Σ u·f(x + εeᵢ) - Σ u·f(x - εeᵢ)) / 2ε`` for every
element ``i``. A random, non-uniform ``u`` matters: with ``u = 1`` wrong rules that happen to
preserve sums (a bad reduction or broadcast gradient) still pass.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

from .tensor import Tensor, no_grad, run_backward

__all__ = ["GradcheckError", "gradcheck", "numeric_gradient", "reverse_gradients", "numeric_gradients"]


class GradcheckError(AssertionError):
    """The analytic gradient of some input element disagrees with finite differences."""


def _outputs(result: Any) -> list[Tensor]:
    outs = list(result) if isinstance(result, (list, tuple)) else [result]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {type(o).__name__}")
    return outs


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Tensor] | Tensor, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
              seed: int = 0) -> bool:
    """Compare reverse-mode gradients of ``fn(*inputs)`` with central differences.

    Every element of every input that requires grad is perturbed. Returns True on success; on
    failure raises :class:`GradcheckError` naming the input index, the element, the analytic and
    the numeric value (or returns False when ``raise_exception=False``).
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: inputs[{i}] must be a Tensor, got {type(x).__name__}")
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    if any(inputs[i].dtype != np.float64 for i in checked):
        warnings.warn("gradcheck: inputs are not float64; finite differences will be imprecise",
                      stacklevel=2)

    rng = np.random.default_rng(seed)
    upstream, analytic = reverse_gradients(fn, inputs, checked, rng)

    for slot, (i, numeric) in enumerate(zip(checked, numeric_gradients(fn, inputs, checked, upstream, eps))):
        got = analytic[slot]
        bad = np.flatnonzero(~(np.abs(got - numeric) <= atol + rtol * np.abs(numeric)))
        if bad.size:
            k = int(bad[0])
            element = tuple(int(e) for e in np.unravel_index(k, numeric.shape)) if numeric.ndim else ()
            message = (f"gradcheck: input {i}, element {element}: analytic "
                       f"{float(got.reshape(-1)[k])!r} vs numeric {float(numeric.reshape(-1)[k])!r}")
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def reverse_gradients(fn: Callable[..., Any], inputs: Sequence[Tensor], checked: Sequence[int],
                      upstream: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Reverse mode: ``∂(Σₖ uₖ·yₖ)/∂inputs[i]`` for every ``i`` in ``checked``, where ``y = fn(*inputs)``.

    ``upstream`` is a list of arrays ``uₖ`` (one per output) or a NumPy ``Generator`` to draw
    standard-normal ones from. Returns ``(upstream, gradients)``; the inputs' ``.grad`` are
    restored afterwards.
    """
    saved_grads = [x.grad for x in inputs]
    try:
        outs = _outputs(fn(*inputs))
        if isinstance(upstream, np.random.Generator):
            upstream = [upstream.standard_normal(o.shape).astype(o.dtype) for o in outs]
        elif len(upstream) != len(outs):
            raise ValueError(f"gradcheck: {len(upstream)} upstream gradients for {len(outs)} outputs")
        for x in inputs:
            x.grad = None
        live = [(o, u) for o, u in zip(outs, upstream) if o.requires_grad]
        if live:
            run_backward([o for o, _ in live], [u for _, u in live], retain_graph=False)
        grads = [inputs[i].grad if inputs[i].grad is not None else np.zeros_like(inputs[i].data)
                 for i in checked]
    finally:
        for x, g in zip(inputs, saved_grads):
            x.grad = g
    return list(upstream), grads


def numeric_gradients(fn: Callable[..., Any], inputs: Sequence[Tensor], checked: Sequence[int],
                      upstream: Sequence[np.ndarray], eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of ``Σₖ uₖ·fn(*inputs)ₖ`` for every element of each ``inputs[i]``,
    ``i`` in ``checked`` (computed in float64)."""
    def objective() -> float:
        outs = _outputs(fn(*inputs))
        return float(sum(np.sum(o.data.astype(np.float64) * u) for o, u in zip(outs, upstream)))
    return [numeric_gradient(objective, inputs[i], eps) for i in checked]


def numeric_gradient(objective: Callable[[], float], x: Tensor, eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + εeₖ) - f(x - εeₖ)) / 2ε of a scalar ``objective()`` for every
    element k of ``x``; ``x.data`` is perturbed on a private copy and restored afterwards."""
    original = x.data
    work = np.array(original, copy=True)
    x.data = work
    flat = work.reshape(-1)
    numeric = np.empty(flat.size, dtype=np.float64)
    try:
        with no_grad():
            for k in range(flat.size):
                old = flat[k]
                flat[k] = old + eps
                plus = objective()
                flat[k] = old - eps
                minus = objective()
                flat[k] = old
                numeric[k] = (plus - minus) / (2 * eps)
    finally:
        x.data = original
    return numeric.reshape(original.shape)
