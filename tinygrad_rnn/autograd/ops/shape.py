"""Shape and indexing ops: reshape, permute, transpose, getitem, embedding, split/chunk/unbind
(one op, several outputs), cat, stack, astype.

An op with several outputs (``chunk`` splitting an LSTM's gates, ``unbind`` taking the time
steps of a sequence) has ONE backward that receives every output's gradient (zeros where none
arrived) and joins them with one ``concatenate``/``stack``: no full-size zero array per piece.
"""
from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ..engine import apply, as_operands, op
from .common import normalize_axes, normalize_axis, shape_args

__all__ = [
    "reshape", "permute", "transpose", "T", "flatten", "squeeze", "unsqueeze", "getitem",
    "embedding", "split", "chunk", "unbind", "cat", "concatenate", "stack", "astype", "detach",
]


@op()
def reshape(x, *shape):
    """y = x viewed with a new shape (one entry may be -1);  dL/dx = g reshaped back."""
    shape = shape_args(shape, "reshape")
    try:
        y = x.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} into {shape}") from None
    in_shape = x.shape
    return y, lambda g: (g.reshape(in_shape),)


@op()
def permute(x, *dims):
    """y = x with its axes reordered by ``dims``;  dL/dx = g permuted by the inverse order."""
    dims = shape_args(dims, "permute")
    if len(dims) != x.ndim or sorted(d % builtins.max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} axes of {x.shape}")
    dims = tuple(d % x.ndim for d in dims)
    inverse = tuple(int(i) for i in np.argsort(dims))
    return x.transpose(dims), lambda g: (g.transpose(inverse),)


@op()
def transpose(x, dim0=-2, dim1=-1):
    """Swap two axes (PyTorch's ``transpose(dim0, dim1)``);  dL/dx = g with the axes swapped back."""
    if x.ndim < 2:
        raise ValueError(f"transpose: needs at least 2 dimensions, got shape {x.shape}")
    d0, d1 = normalize_axis(dim0, x.ndim, "transpose"), normalize_axis(dim1, x.ndim, "transpose")
    return np.swapaxes(x, d0, d1), lambda g: (np.swapaxes(g, d0, d1),)


@op()
def T(x):
    """All axes reversed (``x.T``; for a matrix, the transpose);  dL/dx = gᵀ."""
    return x.T, lambda g: (g.T,)


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    """Merge axes start_dim..end_dim into one (PyTorch semantics); a ``reshape``."""
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_axis(start_dim, x.ndim, "flatten")
    e = normalize_axis(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (-1 if x.size else int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return reshape(x, shape)


def squeeze(x: Any, axis: Any = None) -> Any:
    """Drop size-1 axes (all of them, or the given ones, which must have size 1); a ``reshape``."""
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for ax in axes:
            if x.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} of shape {x.shape} has size {x.shape[ax]}, not 1")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return reshape(x, shape)


def unsqueeze(x: Any, axis: int) -> Any:
    """Insert a size-1 axis at ``axis`` (which may be ndim, appending one); a ``reshape``."""
    ax = normalize_axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:ax] + (1,) + x.shape[ax:])


# ----- indexing ---------------------------------------------------------------------------------
class _IndexArray:
    """Marks where an index array (an input of the op) goes back into the index."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<index array>"


INDEX_ARRAY = _IndexArray()


def getitem(x: Any, index: Any) -> Any:
    """y = x[index] (ints, slices, None, ..., integer or boolean arrays or tensors).

    Index arrays are inputs of the op (so a compiled trace replays new values); the rest of the
    index is fixed. See :func:`getitem_forward` for the equations."""
    from ..tensor import Tensor
    if type(index) is int:  # x[t]: nothing to unwrap
        return apply(getitem_forward, (x,), (index,), {}, "getitem")
    parts = index if isinstance(index, tuple) else (index,)
    template, arrays = [], []
    for part in parts:
        if isinstance(part, (Tensor, list, np.ndarray)):
            array = part.data if isinstance(part, Tensor) else np.asarray(part)
            if array.dtype.kind not in "biu":
                raise TypeError(f"getitem: index arrays must be integer or boolean, got dtype {array.dtype}")
            arrays.append(part if isinstance(part, Tensor) else array)
            template.append(INDEX_ARRAY)
        elif isinstance(part, float):
            raise TypeError(f"getitem: float index {part!r}; use an int")
        else:
            template.append(part)
    template = tuple(template) if isinstance(index, tuple) else template[0]
    inputs = (x,) + as_operands(arrays, "getitem")
    return apply(getitem_forward, inputs, (template,), {}, "getitem")


def getitem_forward(x, *rest):
    """y = x[index];  dL/dx = zeros with g added at ``index`` (repeated indices accumulate)."""
    *arrays, template = rest
    if arrays:
        fill = iter(arrays)
        if isinstance(template, tuple):
            index = tuple(next(fill) if p is INDEX_ARRAY else p for p in template)
        else:
            index = next(fill)
    else:
        index = template
    try:
        y = x[index]
    except IndexError as e:
        raise IndexError(f"getitem: {e} (tensor shape {x.shape})") from None
    shape, advanced = x.shape, bool(arrays)

    def backward(g):
        gx = np.zeros(shape, dtype=g.dtype)
        if advanced:
            np.add.at(gx, index, g)
        else:
            gx[index] = g
        return (gx,) + (None,) * len(arrays)
    return y, backward


getitem.forward = getitem_forward  # type: ignore[attr-defined]


@op(inputs=2, promote=False)
def embedding(weight, indices, padding_idx=None):
    """y[..., :] = weight[indices[...], :];  dL/dweight[k] = Σ of g over the positions holding
    index k, except row ``padding_idx``, which never receives gradient."""
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    num = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= num):
        bad = indices[(indices < 0) | (indices >= num)].flat[0]
        raise ValueError(f"embedding: index {bad} is out of range for {num} embeddings")
    shape, dtype = weight.shape, weight.dtype

    def backward(g):
        if padding_idx is not None:
            g = g * (indices != padding_idx)[..., None]
        gw = np.zeros(shape, dtype=dtype)
        np.add.at(gw, indices, g)
        return gw, None
    return weight[indices], backward


# ----- one op, several outputs --------------------------------------------------------------------
def _split_sizes(n: int, split_size_or_sections: Any, op_name: str, ax: int, shape: tuple) -> list[int]:
    if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"{op_name}: split_size must be positive, got {size}")
        return [size] * (n // size) + ([n % size] if n % size else [])
    sizes = [int(s) for s in split_size_or_sections]
    if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
        raise ValueError(f"{op_name}: sections {sizes} must be non-negative and sum to {n} "
                         f"(axis {ax} of {shape})")
    return sizes


def _pieces(x: np.ndarray, sizes: list[int], ax: int) -> tuple:
    lead = (slice(None),) * ax
    bounds = np.cumsum([0] + sizes).tolist()
    return tuple(x[lead + (slice(bounds[i], bounds[i + 1]),)] for i in range(len(sizes)))


@op()
def split(x, split_size_or_sections, axis=0):
    """Views of consecutive pieces along ``axis`` (PyTorch's ``split``: an int gives pieces of
    that size, the last may be smaller; a list gives the sizes);
    dL/dx = the pieces' gradients joined by one concatenate."""
    ax = normalize_axis(axis, x.ndim, "split")
    sizes = _split_sizes(x.shape[ax], split_size_or_sections, "split", ax, x.shape)
    return _pieces(x, sizes, ax), lambda *gs: (np.concatenate(gs, axis=ax),)


@op()
def chunk(x, chunks, axis=0):
    """``chunks`` nearly equal views along ``axis`` (each ceil(n / chunks), like PyTorch), e.g. the
    gate blocks [i | f | g | o] of an LSTM;  dL/dx = their gradients joined by one concatenate."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    ax = normalize_axis(axis, x.ndim, "chunk")
    n = x.shape[ax]
    sizes = _split_sizes(n, builtins.max(-(-n // int(chunks)), 1), "chunk", ax, x.shape)
    return _pieces(x, sizes, ax), lambda *gs: (np.concatenate(gs, axis=ax),)


@op()
def unbind(x, axis=0):
    """The slices ``x[i]`` along ``axis``, one output each (a sequence's time steps);
    dL/dx = their gradients joined by one stack."""
    ax = normalize_axis(axis, x.ndim, "unbind")
    lead = (slice(None),) * ax
    pieces = tuple(x[lead + (i,)] for i in range(x.shape[ax]))
    return pieces, lambda *gs: (np.stack(gs, axis=ax),)


# ----- joining ------------------------------------------------------------------------------------
@op(inputs="list")
def cat(*xs, axis=0):
    """y = the inputs joined along ``axis``;  dL/dxᵢ = the matching slice of g (a view)."""
    first = xs[0]
    if first.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    ax = normalize_axis(axis, first.ndim, "cat")
    for x in xs[1:]:
        if x.ndim != first.ndim or x.shape[:ax] + x.shape[ax + 1:] != first.shape[:ax] + first.shape[ax + 1:]:
            raise ValueError(f"cat: shapes {first.shape} and {x.shape} differ outside axis {ax}")
    bounds = np.cumsum([0] + [x.shape[ax] for x in xs]).tolist()
    lead = (slice(None),) * ax
    return np.concatenate(xs, axis=ax), lambda g: tuple(
        g[lead + (slice(bounds[i], bounds[i + 1]),)] for i in range(len(xs)))


concatenate = cat


@op(inputs="list")
def stack(*xs, axis=0):
    """y = the inputs stacked along a new ``axis``;  dL/dxᵢ = g[..., i, ...] (a view)."""
    first = xs[0]
    for x in xs[1:]:
        if x.shape != first.shape:
            raise ValueError(f"stack: all shapes must be equal, got {first.shape} and {x.shape}")
    ax = normalize_axis(axis, first.ndim + 1, "stack")
    lead = (slice(None),) * ax
    return np.stack(xs, axis=ax), lambda g: tuple(g[lead + (i,)] for i in range(len(xs)))


@op(differentiable=False)
def detach(x):
    """y = x sharing its array, cut from the graph: no gradient flows back through it. An op, so
    that a compiled trace passes the new value on every replay."""
    return x, None


@op()
def astype(x, dtype):
    """y = x converted to ``dtype``;  dL/dx = g converted back (only floating results carry a
    gradient)."""
    in_dtype = x.dtype
    return x.astype(np.dtype(dtype)), lambda g: (g.astype(in_dtype),)
