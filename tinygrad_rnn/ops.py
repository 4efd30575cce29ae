"""Differentiable primitives. Each op computes its forward result with NumPy and, only when some
input requires grad, records a node whose ``backward(g)`` closure sits right below the forward
code and returns one gradient per input (``None`` where no gradient is needed).

Conventions every op follows:
- gradients of broadcast inputs are returned at the broadcast shape; the engine
  (:func:`tinygrad_rnn.tensor.unbroadcast`) sums them back, in that one place;
- slicing ops return a :class:`~tinygrad_rnn.tensor.SliceGrad` instead of a zero-filled array;
- closures capture arrays, never the output tensor, so no reference cycles keep graphs alive.

The ops are installed as ``Tensor`` methods and operators by the table at the bottom (``METHODS``).
"""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from .random import rng
from .tensor import OuterGrad, SliceGrad, Tensor, constant, needs_grad, record

Scalar = (int, float, bool, np.number, np.bool_)


# ----- operand handling ------------------------------------------------------------------------
def _lift(x: Any, like: Tensor, op: str) -> Tensor:
    """Turn a scalar or array operand into a constant tensor that never upcasts ``like``."""
    kind = type(x)
    if (kind is float or kind is int) and like.data.dtype.kind == "f":  # the common `x * 0.5`
        try:
            return constant(np.array(x, dtype=like.data.dtype))
        except OverflowError:  # an int beyond every float: 10**400
            raise ValueError(f"{op}: the operand {kind.__name__} is too large for "
                             f"{like.data.dtype}") from None
    if isinstance(x, Scalar) or isinstance(x, (np.ndarray, list, tuple)):
        array = np.asarray(x)
        if array.dtype == object:
            raise TypeError(f"{op}: cannot use {type(x).__name__} as a numeric operand")
        if like.data.dtype.kind == "f" and array.dtype.kind in "biuf":
            array = array.astype(like.data.dtype, copy=False)
        return constant(array)
    raise TypeError(f"{op}: unsupported operand type {type(x).__name__}")


def _operands(a: Any, b: Any, op: str) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            return a, _lift(b, a, op)
        da, db = a.data.dtype, b.data.dtype
        if da != db:
            if da.kind == "f" and db.kind == "f":
                raise TypeError(
                    f"{op}: dtype mismatch between tensors, {da} and {db}; convert one with .astype()"
                )
            if da.kind == "f":
                b = constant(b.data.astype(da))
            elif db.kind == "f":
                a = constant(a.data.astype(db))
        return a, b
    if isinstance(b, Tensor):
        return _lift(a, b, op), b
    raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")


def _as_tensor(x: Any, op: str, name: str = "input") -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, Scalar) or isinstance(x, np.ndarray):
        return constant(np.asarray(x))
    raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")


def _broadcast_error(op: str, a: Tensor, b: Tensor) -> ValueError:
    return ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together")


def _axes(axis: Any, ndim: int, op: str) -> tuple | None:
    """Normalise an int/tuple/None axis argument to a sorted tuple of non-negative axes."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in items:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(int(ax) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _axis(axis: Any, ndim: int, op: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % ndim


# ----- arithmetic ------------------------------------------------------------------------------
def add(a: Any, b: Any) -> Tensor:
    """y = a + b;  dy/da = 1, dy/db = 1 (broadcast undone by the engine)."""
    a, b = _operands(a, b, "add")
    try:
        y = a.data + b.data
    except ValueError:
        raise _broadcast_error("add", a, b) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        return g, g
    return record(y, "add", (a, b), backward)


def sub(a: Any, b: Any) -> Tensor:
    """y = a - b;  dy/da = 1, dy/db = -1."""
    a, b = _operands(a, b, "sub")
    try:
        y = a.data - b.data
    except ValueError:
        raise _broadcast_error("sub", a, b) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        return g, (-g if b.requires_grad else None)
    return record(y, "sub", (a, b), backward)


def mul(a: Any, b: Any) -> Tensor:
    """y = a * b;  dy/da = b, dy/db = a."""
    a, b = _operands(a, b, "mul")
    ad, bd = a.data, b.data
    try:
        y = ad * bd
    except ValueError:
        raise _broadcast_error("mul", a, b) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        return (g * bd if a.requires_grad else None), (g * ad if b.requires_grad else None)
    return record(y, "mul", (a, b), backward)


def div(a: Any, b: Any) -> Tensor:
    """y = a / b;  dy/da = 1/b, dy/db = -a/b² = -y/b."""
    a, b = _operands(a, b, "div")
    bd = b.data
    try:
        y = a.data / bd
    except ValueError:
        raise _broadcast_error("div", a, b) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        ga = g / bd if a.requires_grad else None
        gb = -g * y / bd if b.requires_grad else None
        return ga, gb
    return record(y, "div", (a, b), backward)


def neg(x: Tensor) -> Tensor:
    """y = -x;  dy/dx = -1."""
    y = -x.data
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (-g,)
    return record(y, "neg", (x,), backward)


def pow(x: Tensor, exponent: float) -> Tensor:  # noqa: A001 - the op's natural name
    """y = x ** p for a scalar p;  dy/dx = p x^(p-1)."""
    if isinstance(exponent, Tensor) or not isinstance(exponent, Scalar):
        raise TypeError(f"pow: exponent must be a Python or NumPy scalar, got {type(exponent).__name__}")
    p = float(exponent)
    xd = x.data
    y = xd ** (int(p) if p.is_integer() else p)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        if p == 2.0:
            return (g * (2.0 * xd),)
        if p == 0.0:  # constant: 0 · x⁻¹ would be NaN at x = 0
            return (np.zeros_like(g),)
        return (g * (p * xd ** (p - 1.0)),)
    return record(y, "pow", (x,), backward)


def matmul(a: Any, b: Any) -> Tensor:
    """y = a @ b (1-D, 2-D and batched with broadcast batch dims);
    dL/da = g @ bᵀ, dL/db = aᵀ @ g (with the 1-D cases as outer products)."""
    a, b = _operands(a, b, "matmul")
    ad, bd = a.data, b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(f"matmul: operands need at least 1 dimension, got shapes {ad.shape} and {bd.shape}")
    try:
        y = ad @ bd
    except ValueError:
        raise ValueError(
            f"matmul: shapes {ad.shape} and {bd.shape} are not aligned (inner dimensions "
            f"{ad.shape[-1]} and {bd.shape[-2] if bd.ndim > 1 else bd.shape[0]} differ, or batch "
            f"dimensions do not broadcast)"
        ) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        ga = gb = None
        if ad.ndim == 1 and bd.ndim == 1:          # inner product
            ga = g * bd if a.requires_grad else None
            gb = g * ad if b.requires_grad else None
        elif bd.ndim == 1:                          # (..., n, k) @ (k,) -> (..., n)
            if a.requires_grad:
                ga = g[..., None] * bd
            if b.requires_grad:
                gb = (np.swapaxes(ad, -1, -2) @ g[..., None])[..., 0]
        elif ad.ndim == 1:                          # (k,) @ (..., k, m) -> (..., m)
            if a.requires_grad:
                ga = (bd @ g[..., None])[..., 0]
            if b.requires_grad:
                gb = ad[:, None] * g[..., None, :]
        elif ad.ndim == 2 and bd.ndim == 2:
            if a.requires_grad:
                ga = g @ bd.T
            if b.requires_grad:
                gb = OuterGrad(ad, g)  # aᵀ g, summed over all uses of b by one matmul
        else:
            if a.requires_grad:
                ga = g @ np.swapaxes(bd, -1, -2)
            if b.requires_grad:
                gb = np.swapaxes(ad, -1, -2) @ g
        return ga, gb
    return record(y, "matmul", (a, b), backward)


def addmm(c: Any, a: Any, b: Any) -> Tensor:
    """y = c + a @ b for 2-D a and b, c broadcast to the product (PyTorch's ``addmm``);
    dL/dc = g (broadcast undone by the engine), dL/da = g @ bᵀ, dL/db = aᵀ @ g.

    One node and one output array where ``c + a @ b`` makes two: the recurrent step
    ``gx + h W_hhᵀ`` and ``Linear`` use it, so the product is never kept beside the sum."""
    a, b = _operands(a, b, "addmm")
    c, a = _operands(c, a, "addmm")  # an integer a or b takes c's float dtype, as in c + a @ b
    c, b = _operands(c, b, "addmm")
    ad, bd, cd = a.data, b.data, c.data
    if ad.ndim != 2 or bd.ndim != 2:
        raise ValueError(f"addmm: a and b must be 2-D, got shapes {ad.shape} and {bd.shape}")
    if ad.shape[1] != bd.shape[0]:
        raise ValueError(f"addmm: shapes {ad.shape} and {bd.shape} are not aligned "
                         f"(inner dimensions {ad.shape[1]} and {bd.shape[0]} differ)")
    y = ad @ bd
    try:
        if cd.dtype == y.dtype or np.result_type(y, cd) == y.dtype:
            np.add(y, cd, out=y)  # the product is fresh: add in place
        else:  # integer operands of different widths: let NumPy promote, as c + a @ b does
            y = cd + y
            if y.shape != (ad.shape[0], bd.shape[1]):
                raise ValueError
    except ValueError:
        raise ValueError(f"addmm: c of shape {cd.shape} does not broadcast to the product's shape "
                         f"{y.shape}") from None
    if not needs_grad(a, b, c):
        return constant(y)

    def backward(g):
        return (g,
                g @ bd.T if a.requires_grad else None,
                OuterGrad(ad, g) if b.requires_grad else None)  # aᵀ g, summed over all uses of b
    return record(y, "addmm", (c, a, b), backward)


# ----- elementwise -----------------------------------------------------------------------------
def exp(x: Tensor) -> Tensor:
    """y = eˣ;  dy/dx = y."""
    y = np.exp(x.data)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (g * y,)
    return record(y, "exp", (x,), backward)


def log(x: Tensor) -> Tensor:
    """y = ln x;  dy/dx = 1/x."""
    xd = x.data
    y = np.log(xd)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (g / xd,)
    return record(y, "log", (x,), backward)


def tanh(x: Tensor) -> Tensor:
    """y = tanh x;  dy/dx = 1 - y²."""
    y = np.tanh(x.data)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        d = 1.0 - y * y  # then in place: three NumPy calls in all, which is what small arrays cost
        d *= g
        return (d,)
    return record(y, "tanh", (x,), backward)


def sigmoid(x: Tensor) -> Tensor:
    """y = 1 / (1 + e⁻ˣ), computed as ½(1 + tanh(x/2)) so it never overflows;  dy/dx = y(1 - y)."""
    y = np.asarray(np.multiply(x.data, 0.5))  # 0-d input: NumPy returns a scalar, out= needs an array
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        d = 1.0 - y  # one fresh array, then in place (a 0-d y gives a scalar: *= rebinds it)
        d *= y
        d *= g
        return (d,)
    return record(y, "sigmoid", (x,), backward)


def relu(x: Tensor) -> Tensor:
    """y = max(x, 0);  dy/dx = 1 where x > 0 else 0."""
    xd = x.data
    y = np.maximum(xd, 0)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (g * (xd > 0),)
    return record(y, "relu", (x,), backward)


def abs(x: Tensor) -> Tensor:  # noqa: A001
    """y = |x|;  dy/dx = sign(x) (0 at 0, like PyTorch)."""
    xd = x.data
    y = np.abs(xd)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (g * np.sign(xd),)
    return record(y, "abs", (x,), backward)


def clip(x: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    """y = min(max(x, lo), hi);  dy/dx = 1 where lo <= x <= hi (inclusive, like torch.clamp)."""
    if lo is None and hi is None:
        raise ValueError("clip: at least one of lo and hi must be given")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip: lo must be <= hi, got lo={lo}, hi={hi}")
    xd = x.data
    y = np.clip(xd, lo, hi).astype(xd.dtype, copy=False)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        inside = np.ones(xd.shape, dtype=bool)
        if lo is not None:
            inside &= xd >= lo
        if hi is not None:
            inside &= xd <= hi
        return (g * inside,)
    return record(y, "clip", (x,), backward)


def maximum(a: Any, b: Any) -> Tensor:
    """y = max(a, b) elementwise; the gradient goes to the larger input, split ½/½ on ties."""
    a, b = _operands(a, b, "maximum")
    ad, bd = a.data, b.data
    try:
        y = np.maximum(ad, bd)
    except ValueError:
        raise _broadcast_error("maximum", a, b) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        wa = (ad > bd) + 0.5 * (ad == bd)
        return g * wa.astype(g.dtype, copy=False), g * (1.0 - wa).astype(g.dtype, copy=False)
    return record(y, "maximum", (a, b), backward)


def minimum(a: Any, b: Any) -> Tensor:
    """y = min(a, b) elementwise; the gradient goes to the smaller input, split ½/½ on ties."""
    a, b = _operands(a, b, "minimum")
    ad, bd = a.data, b.data
    try:
        y = np.minimum(ad, bd)
    except ValueError:
        raise _broadcast_error("minimum", a, b) from None
    if not needs_grad(a, b):
        return constant(y)

    def backward(g):
        wa = (ad < bd) + 0.5 * (ad == bd)
        return g * wa.astype(g.dtype, copy=False), g * (1.0 - wa).astype(g.dtype, copy=False)
    return record(y, "minimum", (a, b), backward)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """y = a where condition else b;  the gradient flows to whichever input was chosen."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    a, b = _operands(a, b, "where")
    try:
        y = np.where(cond, a.data, b.data)
    except ValueError:
        raise ValueError(
            f"where: shapes {cond.shape}, {a.shape} and {b.shape} cannot be broadcast together"
        ) from None
    if not needs_grad(a, b):
        return constant(y)
    zero = np.zeros((), dtype=y.dtype)

    def backward(g):
        ga = np.where(cond, g, zero) if a.requires_grad else None
        gb = np.where(cond, zero, g) if b.requires_grad else None
        return ga, gb
    return record(y, "where", (a, b), backward)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout: y = x * m / (1 - p) with m ~ Bernoulli(1 - p);  dy/dx = m / (1 - p)."""
    if not isinstance(p, Scalar) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    xd = x.data
    if p == 1.0:
        scale = np.zeros(xd.shape, dtype=xd.dtype)
    else:
        keep = rng().random(xd.shape) >= p
        scale = keep.astype(xd.dtype) * xd.dtype.type(1.0 / (1.0 - p))
    y = xd * scale
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (g * scale,)
    return record(y, "dropout", (x,), backward)


# ----- reductions ------------------------------------------------------------------------------
def _expand_to(g: np.ndarray, axes: tuple | None, keepdims: bool, shape: tuple) -> np.ndarray:
    """Reinsert reduced axes into g so that it broadcasts against the input shape."""
    if not keepdims:
        if axes is None:
            g = np.reshape(g, (1,) * len(shape))
        else:
            g = np.expand_dims(g, axes)
    return g


def sum(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """y = Σ x over axis;  dy/dx = 1 broadcast back over the reduced axes."""
    axes = _axes(axis, x.ndim, "sum")
    y = np.asarray(x.data.sum(axis=axes, keepdims=keepdims))
    if not needs_grad(x):
        return constant(y)
    shape = x.shape

    def backward(g):
        return (np.broadcast_to(_expand_to(g, axes, keepdims, shape), shape),)
    return record(y, "sum", (x,), backward)


def mean(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """y = Σ x / n over axis;  dy/dx = 1/n."""
    axes = _axes(axis, x.ndim, "mean")
    y = np.asarray(x.data.mean(axis=axes, keepdims=keepdims))
    if not needs_grad(x):
        return constant(y)
    shape = x.shape
    n = x.size // builtins.max(y.size, 1) if x.size else 1
    scale = x.dtype.type(1.0 / n) if n else x.dtype.type(0)

    def backward(g):
        return (np.broadcast_to(_expand_to(g * scale, axes, keepdims, shape), shape),)
    return record(y, "mean", (x,), backward)


def max(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """y = max x over axis;  the gradient is split evenly between all tied maxima of a slice."""
    axes = _axes(axis, x.ndim, "max")
    if x.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
    xd = x.data
    y_keep = xd.max(axis=axes, keepdims=True)
    y = y_keep if keepdims else np.asarray(y_keep.reshape(
        [n for i, n in enumerate(xd.shape) if axes is not None and i not in axes]))
    if not needs_grad(x):
        return constant(y)
    shape = x.shape

    def backward(g):
        mask = xd == y_keep
        share = mask / mask.sum(axis=axes, keepdims=True)
        return (_expand_to(g, axes, keepdims, shape) * share.astype(g.dtype, copy=False),)
    return record(y, "max", (x,), backward)


# ----- shape ops -------------------------------------------------------------------------------
def _shape_args(shape: tuple, op: str) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{op}: shape entries must be ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """y = x viewed with a new shape (one entry may be -1);  dL/dx = g reshaped back."""
    shape = _shape_args(shape, "reshape")
    try:
        y = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} into {shape}") from None
    if not needs_grad(x):
        return constant(y)
    in_shape = x.shape

    def backward(g):
        return (g.reshape(in_shape),)
    return record(y, "reshape", (x,), backward)


def permute(x: Tensor, *dims: Any) -> Tensor:
    """y = x with its axes reordered by ``dims``;  dL/dx = g permuted by the inverse order."""
    dims = _shape_args(dims, "permute")
    if sorted(d % builtins.max(x.ndim, 1) for d in dims) != list(range(x.ndim)) or len(dims) != x.ndim:
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} axes of {x.shape}")
    dims = tuple(d % x.ndim for d in dims)
    y = x.data.transpose(dims)
    if not needs_grad(x):
        return constant(y)
    inverse = tuple(np.argsort(dims))

    def backward(g):
        return (g.transpose(inverse),)
    return record(y, "permute", (x,), backward)


def transpose(x: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two axes (PyTorch's ``transpose(dim0, dim1)``); its own inverse in backward."""
    if x.ndim < 2:
        raise ValueError(f"transpose: needs at least 2 dimensions, got shape {x.shape}")
    d0, d1 = _axis(dim0, x.ndim, "transpose"), _axis(dim1, x.ndim, "transpose")
    y = np.swapaxes(x.data, d0, d1)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (np.swapaxes(g, d0, d1),)
    return record(y, "transpose", (x,), backward)


def T(x: Tensor) -> Tensor:
    """All axes reversed (``x.T``; for a matrix, the transpose)."""
    y = x.data.T
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        return (g.T,)
    return record(y, "T", (x,), backward)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes start_dim..end_dim into one (PyTorch semantics); a reshape."""
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _axis(start_dim, x.ndim, "flatten"), _axis(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (-1 if x.size else int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return reshape(x, shape)


def squeeze(x: Tensor, axis: Any = None) -> Tensor:
    """Drop size-1 axes (all of them, or the given ones, which must have size 1)."""
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = _axes(axis, x.ndim, "squeeze")
        for ax in axes:
            if x.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} of shape {x.shape} has size {x.shape[ax]}, not 1")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return reshape(x, shape)


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis`` (which may be ndim, appending one)."""
    ax = _axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:ax] + (1,) + x.shape[ax:])


def _index_parts(index: Any) -> tuple[Any, bool]:
    """Unwrap tensors inside an index and tell whether it uses integer/boolean arrays."""
    if type(index) is int:  # x[t], every step of a recurrent layer: nothing to unwrap
        return index, False
    parts = index if isinstance(index, tuple) else (index,)
    unwrapped, advanced = [], False
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, (list, np.ndarray)):
            part = np.asarray(part)
            if part.dtype.kind not in "biu":
                raise TypeError(f"getitem: index arrays must be integer or boolean, got dtype {part.dtype}")
            advanced = True
        elif isinstance(part, float):
            raise TypeError(f"getitem: float index {part!r}; use an int")
        unwrapped.append(part)
    return (tuple(unwrapped) if isinstance(index, tuple) else unwrapped[0]), advanced


def getitem(x: Tensor, index: Any) -> Tensor:
    """y = x[index] (ints, slices, None, ..., integer/boolean arrays);
    dL/dx = g scattered back into zeros, repeated indices accumulating (as an embedding needs)."""
    index, advanced = _index_parts(index)
    y = x.data[index]
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if not needs_grad(x):
        return constant(y)
    tile = None if advanced else _tile_of(index, x.shape)
    return record(y, "getitem", (x,), _slice_backward(index, tile, advanced))


def _tile_of(index: Any, shape: tuple) -> tuple | None:
    """(axis, start, stop, squeezed) when a basic index takes one block along one axis and all
    of every other axis (e.g. ``x[t]`` or ``x[:, a:b]``); None otherwise."""
    parts = index if isinstance(index, tuple) else (index,)
    axis = 0
    while axis < len(parts) - 1 and isinstance(parts[axis], slice) and parts[axis] == slice(None):
        axis += 1
    last = parts[axis] if parts else None
    if axis != len(parts) - 1 or axis >= len(shape):
        return None
    if isinstance(last, (int, np.integer)) and not isinstance(last, bool):
        t = int(last) % shape[axis]
        return axis, t, t + 1, True
    if isinstance(last, slice):
        start, stop, step = last.indices(shape[axis])
        if step == 1 and stop >= start:
            return axis, start, stop, False
    return None


def embedding(weight: Tensor, indices: Any, padding_idx: int | None = None) -> Tensor:
    """y[..., :] = weight[indices[...], :];  dL/dweight[k] = Σ of g over positions with index k,
    except row ``padding_idx``, which never receives gradient."""
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    num = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= num):
        bad = idx[(idx < 0) | (idx >= num)].flat[0]
        raise ValueError(f"embedding: index {bad} is out of range for {num} embeddings")
    y = weight.data[idx]
    if not needs_grad(weight):
        return constant(y)

    def backward(g):
        if padding_idx is not None:
            g = g * (idx != padding_idx)[..., None]
        return (SliceGrad(idx, g, True),)
    return record(y, "embedding", (weight,), backward)


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """y = the inputs joined along ``axis``;  dL/dxᵢ = the matching slice of g (a view)."""
    tensors = _tensor_list(tensors, "cat")
    first = tensors[0]
    ax = _axis(axis, first.ndim, "cat") if first.ndim else None
    if ax is None:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    for t in tensors[1:]:
        if t.ndim != first.ndim or t.shape[:ax] + t.shape[ax + 1:] != first.shape[:ax] + first.shape[ax + 1:]:
            raise ValueError(
                f"cat: shapes {first.shape} and {t.shape} differ outside axis {ax}"
            )
    y = np.concatenate([t.data for t in tensors], axis=ax)
    if not needs_grad(*tensors):
        return constant(y)
    bounds = np.cumsum([0] + [t.shape[ax] for t in tensors])
    lead = (slice(None),) * ax

    def backward(g):
        return tuple(g[lead + (slice(bounds[i], bounds[i + 1]),)] for i in range(len(bounds) - 1))
    return record(y, "cat", tuple(tensors), backward)


concatenate = cat


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """y = the inputs stacked along a new ``axis``;  dL/dxᵢ = g[..., i, ...] (a view)."""
    tensors = _tensor_list(tensors, "stack")
    first = tensors[0]
    for t in tensors[1:]:
        if t.shape != first.shape:
            raise ValueError(f"stack: all shapes must be equal, got {first.shape} and {t.shape}")
    ax = _axis(axis, first.ndim + 1, "stack")
    y = np.stack([t.data for t in tensors], axis=ax)
    if not needs_grad(*tensors):
        return constant(y)
    lead = (slice(None),) * ax

    def backward(g):
        return tuple(g[lead + (i,)] for i in range(len(tensors)))
    return record(y, "stack", tuple(tensors), backward)


def _tensor_list(tensors: Any, op: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    out = [_as_tensor(t, op, "each element") for t in tensors]
    kinds = {t.dtype for t in out if t.dtype.kind == "f"}
    if len(kinds) > 1:
        raise TypeError(f"{op}: dtype mismatch between tensors: {sorted(map(str, kinds))}")
    return out


def split(x: Tensor, split_size_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Views of consecutive pieces along ``axis`` (PyTorch's ``split``): an int gives pieces of
    that size (the last may be smaller), a list gives the sizes. Each piece's gradient lands in a
    slice of one shared buffer: no zero-filled full-size array per piece."""
    ax = _axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
            raise ValueError(f"split: sections {sizes} must be non-negative and sum to {n} (axis {ax} of {x.shape})")
    lead = (slice(None),) * ax
    pieces, start = [], 0
    grad = needs_grad(x)
    for size in sizes:
        index = lead + (slice(start, start + size),)
        y = x.data[index]
        if grad:
            pieces.append(record(y, "split", (x,), _slice_backward(index, (ax, start, start + size, False))))
        else:
            pieces.append(constant(y))
        start += size
    return pieces


def _slice_backward(index: Any, tile: tuple | None, advanced: bool = False):
    """The backward of taking ``x[index]``: g lands at ``index`` (see ``SliceGrad``)."""
    def backward(g):
        return (SliceGrad(index, g, advanced, tile),)
    return backward


def chunk(x: Tensor, chunks: int, axis: int = 0) -> list[Tensor]:
    """``chunks`` nearly equal pieces along ``axis`` (each ceil(n / chunks), like PyTorch)."""
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = x.shape[_axis(axis, x.ndim, "chunk")]
    return split(x, builtins.max(-(-n // int(chunks)), 1), axis)


# ----- numerics along an axis ------------------------------------------------------------------
def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """y = m + ln Σ exp(x - m) with m = max x (stable);  dy/dx = softmax(x)."""
    xd = x.data
    ax = _axis(axis, xd.ndim, "logsumexp")
    m = xd.max(axis=ax, keepdims=True)
    with np.errstate(under="ignore"):  # exp(-large) -> 0 is exact enough; not an error
        shifted = np.exp(xd - m)
    total = shifted.sum(axis=ax, keepdims=True)
    y_keep = m + np.log(total)
    y = y_keep if keepdims else np.squeeze(y_keep, axis=ax)
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        g = g if keepdims else np.expand_dims(g, ax)
        return (g * (shifted / total),)
    return record(y, "logsumexp", (x,), backward)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """s = exp(x - max) / Σ exp(x - max);  dL/dx = s (g - Σ g s)."""
    xd = x.data
    ax = _axis(axis, xd.ndim, "softmax")
    with np.errstate(under="ignore"):  # exp(-large) -> 0 is exact enough; not an error
        e = np.exp(xd - xd.max(axis=ax, keepdims=True))
        s = e / e.sum(axis=ax, keepdims=True)
    if not needs_grad(x):
        return constant(s)

    def backward(g):
        with np.errstate(under="ignore"):
            return (s * (g - (g * s).sum(axis=ax, keepdims=True)),)
    return record(s, "softmax", (x,), backward)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """y = x - logsumexp(x) (stable);  dL/dx = g - softmax(x) Σ g."""
    xd = x.data
    ax = _axis(axis, xd.ndim, "log_softmax")
    shifted = xd - xd.max(axis=ax, keepdims=True)
    with np.errstate(under="ignore"):  # exp(-large) -> 0 is exact enough; not an error
        y = shifted - np.log(np.exp(shifted).sum(axis=ax, keepdims=True))
    if not needs_grad(x):
        return constant(y)

    def backward(g):
        with np.errstate(under="ignore"):
            return (g - np.exp(y) * g.sum(axis=ax, keepdims=True),)
    return record(y, "log_softmax", (x,), backward)


# ----- dtype -----------------------------------------------------------------------------------
def astype(x: Tensor, dtype: Any) -> Tensor:
    """y = x converted to ``dtype``;  dL/dx = g converted back (floating dtypes only carry grad)."""
    dtype = np.dtype(dtype)
    y = x.data.astype(dtype)
    if dtype.kind != "f" or not needs_grad(x):
        return constant(y)
    in_dtype = x.dtype

    def backward(g):
        return (g.astype(in_dtype),)
    return record(y, "astype", (x,), backward)


# ----- installing the ops on Tensor ------------------------------------------------------------
def _rsub(a: Tensor, b: Any) -> Tensor:
    return sub(b, a)


def _rdiv(a: Tensor, b: Any) -> Tensor:
    return div(b, a)


def _rmatmul(a: Tensor, b: Any) -> Tensor:
    return matmul(b, a)


def _reshape_method(x: Tensor, *shape: Any) -> Tensor:
    return reshape(x, *shape)


METHODS = {
    "__add__": add, "__radd__": add, "__sub__": sub, "__rsub__": _rsub,
    "__mul__": mul, "__rmul__": mul, "__truediv__": div, "__rtruediv__": _rdiv,
    "__neg__": neg, "__pow__": pow, "__matmul__": matmul, "__rmatmul__": _rmatmul,
    "__getitem__": getitem,
    "add": add, "sub": sub, "mul": mul, "div": div, "neg": neg, "pow": pow, "matmul": matmul,
    "addmm": addmm,
    "exp": exp, "log": log, "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "abs": abs,
    "clip": clip, "maximum": maximum, "minimum": minimum,
    "sum": sum, "mean": mean, "max": max,
    "reshape": _reshape_method, "permute": permute, "transpose": transpose, "flatten": flatten,
    "squeeze": squeeze, "unsqueeze": unsqueeze, "split": split, "chunk": chunk,
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax, "astype": astype,
}
for _name, _fn in METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(T)
