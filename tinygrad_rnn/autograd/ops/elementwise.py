"""Elementwise ops: arithmetic, activations, comparisons, ``where``, ``clip``, ``dropout``.

Each op takes arrays and returns ``(y, backward)``; ``backward(g)`` returns one gradient per
input, at the broadcast shape (the engine sums it back with ``unbroadcast``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import apply, constant, op, promote_operands
from ...random import rng
from .common import broadcast_error

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "tanh", "sigmoid", "relu", "abs",
    "clip", "maximum", "minimum", "where", "dropout", "eq", "ne", "lt", "le", "gt", "ge",
]


# ----- arithmetic ------------------------------------------------------------------------------
@op(inputs=2)
def add(a, b):
    """y = a + b;  dL/da = g, dL/db = g."""
    try:
        y = a + b
    except ValueError:
        raise broadcast_error("add", a.shape, b.shape) from None
    return y, lambda g: (g, g)


@op(inputs=2)
def sub(a, b, needs):
    """y = a - b;  dL/da = g, dL/db = -g."""
    try:
        y = a - b
    except ValueError:
        raise broadcast_error("sub", a.shape, b.shape) from None
    return y, lambda g: (g, -g if needs[1] else None)


@op(inputs=2)
def mul(a, b, needs):
    """y = a · b;  dL/da = g · b, dL/db = g · a."""
    try:
        y = a * b
    except ValueError:
        raise broadcast_error("mul", a.shape, b.shape) from None
    return y, lambda g: (g * b if needs[0] else None, g * a if needs[1] else None)


@op(inputs=2, floats=True)
def div(a, b, needs):
    """y = a / b;  dL/da = g / b, dL/db = -g · a / b² = -g · y / b."""
    try:
        y = a / b
    except ValueError:
        raise broadcast_error("div", a.shape, b.shape) from None
    return y, lambda g: (g / b if needs[0] else None, -g * y / b if needs[1] else None)


@op()
def neg(x):
    """y = -x;  dL/dx = -g."""
    return -x, lambda g: (-g,)


@op(inputs=2)
def pow(x, p, needs):  # noqa: A001 - the op's natural name
    """y = x ** p;  dL/dx = g · p x^(p-1), dL/dp = g · y ln x (x > 0 where p needs a gradient)."""
    try:
        y = x ** p
    except ValueError:
        raise broadcast_error("pow", x.shape, p.shape) from None

    def backward(g):
        gx = gp = None
        if needs[0]:
            if p.ndim == 0 and p == 2:
                gx = g * (2 * x)
            else:
                # p = 0 is a constant: 0 · x⁻¹ would be NaN at x = 0
                gx = g * np.where(p == 0, 0, p * x ** np.where(p == 0, 1, p - 1))
        if needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gp = g * y * np.log(x)
        return gx, gp
    return y, backward


# ----- unary math ------------------------------------------------------------------------------
@op(floats=True)
def exp(x):
    """y = eˣ;  dL/dx = g · y."""
    y = np.exp(x)
    return y, lambda g: (g * y,)


@op(floats=True)
def log(x):
    """y = ln x;  dL/dx = g / x."""
    return np.log(x), lambda g: (g / x,)


@op(floats=True)
def tanh(x):
    """y = tanh x;  dL/dx = g · (1 - y²)."""
    y = np.tanh(x)

    def backward(g):
        d = 1.0 - y * y
        d *= g  # in place on our fresh array: one call and no allocation fewer
        return (d,)
    return y, backward


@op(floats=True)
def sigmoid(x):
    """y = σ(x) = 1 / (1 + e⁻ˣ), computed as ½(1 + tanh(x/2)) so it never overflows;
    dL/dx = g · y (1 - y)."""
    y = np.asarray(np.multiply(x, 0.5))  # then in place (0-d input: NumPy returns a scalar)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5

    def backward(g):
        d = 1.0 - y
        d *= y
        d *= g
        return (d,)
    return y, backward


@op()
def relu(x):
    """y = max(x, 0);  dL/dx = g where x > 0, else 0."""
    return np.maximum(x, 0), lambda g: (g * (x > 0),)


@op()
def abs(x):  # noqa: A001
    """y = |x|;  dL/dx = g · sign(x) (0 at 0, like PyTorch)."""
    return np.abs(x), lambda g: (g * np.sign(x),)


@op()
def clip(x, lo=None, hi=None):
    """y = min(max(x, lo), hi);  dL/dx = g where lo <= x <= hi (inclusive, like torch.clamp)."""
    if lo is None and hi is None:
        raise ValueError("clip: at least one of lo and hi must be given")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip: lo must be <= hi, got lo={lo}, hi={hi}")
    y = np.clip(x, lo, hi).astype(x.dtype, copy=False)

    def backward(g):
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return (g * inside,)
    return y, backward


@op(inputs=2)
def maximum(a, b):
    """y = max(a, b) elementwise; the gradient goes to the larger input, split ½/½ on ties."""
    try:
        y = np.maximum(a, b)
    except ValueError:
        raise broadcast_error("maximum", a.shape, b.shape) from None

    def backward(g):
        wa = ((a > b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        return g * wa, g * (1 - wa)
    return y, backward


@op(inputs=2)
def minimum(a, b):
    """y = min(a, b) elementwise; the gradient goes to the smaller input, split ½/½ on ties."""
    try:
        y = np.minimum(a, b)
    except ValueError:
        raise broadcast_error("minimum", a.shape, b.shape) from None

    def backward(g):
        wa = ((a < b) + 0.5 * (a == b)).astype(g.dtype, copy=False)
        return g * wa, g * (1 - wa)
    return y, backward


def where(condition: Any, a: Any, b: Any) -> Any:
    """y = a where condition else b;  dL/da = g where condition, dL/db = g elsewhere.
    ``condition`` is a boolean tensor or array (an input of the op, so a trace replays it)."""
    from ..tensor import Tensor
    cond = condition if isinstance(condition, Tensor) else constant(np.asarray(condition))
    a, b = promote_operands((a, b), "where")
    return apply(where_forward, (cond, a, b), (), {}, "where", wants_needs=True)


def where_forward(cond, a, b, needs):
    """The array function of :func:`where`."""
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    try:
        y = np.where(cond, a, b)
    except ValueError:
        raise broadcast_error("where", cond.shape, a.shape, b.shape) from None
    zero = np.zeros((), dtype=y.dtype)
    return y, lambda g: (None, np.where(cond, g, zero) if needs[1] else None,
                         np.where(cond, zero, g) if needs[2] else None)


where.forward = where_forward  # type: ignore[attr-defined]


def dropout(x: Any, p: float, training: bool = True) -> Any:
    """Inverted dropout: y = x · m / (1 - p), m ~ Bernoulli(1 - p) drawn from the library's
    generator;  dL/dx = g · m / (1 - p). Returns ``x`` itself when not training or p = 0."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    return dropout_forward_op(x, float(p))


@op(name="dropout")
def dropout_forward_op(x, p):
    """The op of :func:`dropout` (training mode): a fresh mask on every call, also on replay."""
    if p == 1.0:
        scale = np.zeros(x.shape, dtype=x.dtype)
    else:
        keep = rng().random(x.shape) >= p
        scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * scale, lambda g: (g * scale,)


dropout.forward = dropout_forward_op.forward  # type: ignore[attr-defined]


# ----- comparisons (boolean results, no gradient) ------------------------------------------------
@op(inputs=2, differentiable=False)
def eq(a, b):
    """y = (a == b) elementwise: a boolean tensor, which carries no gradient."""
    try:
        return np.equal(a, b), None
    except ValueError:
        raise broadcast_error("eq", a.shape, b.shape) from None


@op(inputs=2, differentiable=False)
def ne(a, b):
    """y = (a != b) elementwise: a boolean tensor, which carries no gradient."""
    try:
        return np.not_equal(a, b), None
    except ValueError:
        raise broadcast_error("ne", a.shape, b.shape) from None


@op(inputs=2, differentiable=False)
def lt(a, b):
    """y = (a < b) elementwise: a boolean tensor, which carries no gradient."""
    try:
        return np.less(a, b), None
    except ValueError:
        raise broadcast_error("lt", a.shape, b.shape) from None


@op(inputs=2, differentiable=False)
def le(a, b):
    """y = (a <= b) elementwise: a boolean tensor, which carries no gradient."""
    try:
        return np.less_equal(a, b), None
    except ValueError:
        raise broadcast_error("le", a.shape, b.shape) from None


@op(inputs=2, differentiable=False)
def gt(a, b):
    """y = (a > b) elementwise: a boolean tensor, which carries no gradient."""
    try:
        return np.greater(a, b), None
    except ValueError:
        raise broadcast_error("gt", a.shape, b.shape) from None


@op(inputs=2, differentiable=False)
def ge(a, b):
    """y = (a >= b) elementwise: a boolean tensor, which carries no gradient."""
    try:
        return np.greater_equal(a, b), None
    except ValueError:
        raise broadcast_error("ge", a.shape, b.shape) from None
