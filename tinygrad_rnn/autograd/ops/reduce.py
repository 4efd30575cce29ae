"""Reductions and the numerics along an axis: sum, mean, max, argmax/argmin, logsumexp, softmax,
log_softmax."""
from __future__ import annotations

import builtins

import numpy as np

from ..engine import op
from .common import normalize_axes, normalize_axis

__all__ = ["sum", "mean", "max", "argmax", "argmin", "logsumexp", "softmax", "log_softmax"]


def _expand(g: np.ndarray, axes: tuple | None, keepdims: bool, ndim: int) -> np.ndarray:
    """Reinsert the reduced axes into g so that it broadcasts against the input."""
    if keepdims:
        return g
    if axes is None:
        return np.reshape(g, (1,) * ndim)
    return np.expand_dims(g, axes)


@op()
def sum(x, axis=None, keepdims=False):  # noqa: A001
    """y = Σ x over ``axis`` (all axes if None);  dL/dx = g broadcast back over the reduced axes."""
    axes = normalize_axes(axis, x.ndim, "sum")
    y = x.sum(axis=axes, keepdims=keepdims)
    return y, lambda g: (np.broadcast_to(_expand(g, axes, keepdims, x.ndim), x.shape),)


@op()
def mean(x, axis=None, keepdims=False):
    """y = Σ x / n over ``axis``;  dL/dx = g / n broadcast back."""
    axes = normalize_axes(axis, x.ndim, "mean")
    y = np.asarray(x.mean(axis=axes, keepdims=keepdims))
    n = x.size // builtins.max(y.size, 1) if x.size else 1
    scale = x.dtype.type(1.0 / n) if n else x.dtype.type(0)
    return y, lambda g: (np.broadcast_to(_expand(g * scale, axes, keepdims, x.ndim), x.shape),)


@op()
def max(x, axis=None, keepdims=False):  # noqa: A001
    """y = max x over ``axis``;  the gradient is split evenly between all tied maxima of a slice."""
    axes = normalize_axes(axis, x.ndim, "max")
    if x.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
    y_keep = x.max(axis=axes, keepdims=True)
    y = y_keep if keepdims else y_keep.reshape(
        [n for i, n in enumerate(x.shape) if axes is not None and i not in axes])

    def backward(g):
        mask = x == y_keep
        share = (mask / mask.sum(axis=axes, keepdims=True)).astype(g.dtype, copy=False)
        return (_expand(g, axes, keepdims, x.ndim) * share,)
    return y, backward


@op(differentiable=False)
def argmax(x, axis=None, keepdims=False):
    """Index of the largest element (of the flattened tensor if ``axis`` is None), int64; the
    first one on ties, as NumPy and PyTorch do. No gradient."""
    if x.size == 0:
        raise ValueError(f"argmax: cannot reduce an empty tensor of shape {x.shape}")
    ax = None if axis is None else normalize_axis(axis, x.ndim, "argmax")
    return np.argmax(x, axis=ax, keepdims=keepdims).astype(np.int64), None


@op(differentiable=False)
def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element (of the flattened tensor if ``axis`` is None), int64; the
    first one on ties. No gradient."""
    if x.size == 0:
        raise ValueError(f"argmin: cannot reduce an empty tensor of shape {x.shape}")
    ax = None if axis is None else normalize_axis(axis, x.ndim, "argmin")
    return np.argmin(x, axis=ax, keepdims=keepdims).astype(np.int64), None


@op()
def logsumexp(x, axis=-1, keepdims=False):
    """y = m + ln Σ exp(x - m) with m = max x (stable);  dL/dx = g · softmax(x)."""
    ax = normalize_axis(axis, x.ndim, "logsumexp")
    m = x.max(axis=ax, keepdims=True)
    with np.errstate(under="ignore"):  # exp(-large) -> 0 is exact enough; not an error
        shifted = np.exp(x - m)
    total = shifted.sum(axis=ax, keepdims=True)
    y_keep = m + np.log(total)
    y = y_keep if keepdims else np.squeeze(y_keep, axis=ax)

    def backward(g):
        g = g if keepdims else np.expand_dims(g, ax)
        return (g * (shifted / total),)
    return y, backward


@op()
def softmax(x, axis=-1):
    """s = exp(x - max) / Σ exp(x - max);  dL/dx = s · (g - Σ g s)."""
    ax = normalize_axis(axis, x.ndim, "softmax")
    with np.errstate(under="ignore"):  # exp(-large) -> 0 is exact enough; not an error
        e = np.exp(x - x.max(axis=ax, keepdims=True))
        s = e / e.sum(axis=ax, keepdims=True)

    def backward(g):
        with np.errstate(under="ignore"):
            return (s * (g - (g * s).sum(axis=ax, keepdims=True)),)
    return s, backward


@op()
def log_softmax(x, axis=-1):
    """y = x - logsumexp(x) (stable);  dL/dx = g - softmax(x) · Σ g."""
    ax = normalize_axis(axis, x.ndim, "log_softmax")
    shifted = x - x.max(axis=ax, keepdims=True)
    with np.errstate(under="ignore"):  # exp(-large) -> 0 is exact enough; not an error
        y = shifted - np.log(np.exp(shifted).sum(axis=ax, keepdims=True))

    def backward(g):
        with np.errstate(under="ignore"):
            return (g - np.exp(y) * g.sum(axis=ax, keepdims=True),)
    return y, backward
