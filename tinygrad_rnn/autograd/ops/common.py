"""Argument checks shared by the op modules (axes, shapes, broadcast errors)."""
from __future__ import annotations

import builtins
from typing import Any

__all__ = ["normalize_axes", "normalize_axis", "shape_args", "broadcast_error", "Scalar"]

Scalar = (int, float, bool)


def normalize_axes(axis: Any, ndim: int, op: str) -> tuple | None:
    """An int/tuple/None axis argument as a sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in items:
        if not isinstance(ax, int) or isinstance(ax, bool):
            if not hasattr(ax, "__index__") or isinstance(ax, bool):
                raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(int(ax) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def normalize_axis(axis: Any, ndim: int, op: str) -> int:
    """One axis (negative counts from the end) as a non-negative int."""
    if isinstance(axis, bool) or not hasattr(axis, "__index__"):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % ndim


def shape_args(shape: tuple, op: str) -> tuple:
    """``reshape(2, 3)`` and ``reshape((2, 3))`` alike, as a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{op}: shape entries must be ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def broadcast_error(op: str, *shapes: tuple) -> ValueError:
    """The ValueError for shapes that cannot be broadcast together, naming the op and every shape."""
    joined = " and ".join(str(s) for s in shapes)
    return ValueError(f"{op}: shapes {joined} cannot be broadcast together")
