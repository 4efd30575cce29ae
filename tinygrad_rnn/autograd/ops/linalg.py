"""Matrix products: ``matmul`` and ``addmm`` (c + a @ b as one op, PyTorch's ``addmm``)."""
from __future__ import annotations

import numpy as np

from ..engine import op

__all__ = ["matmul", "addmm"]


@op(inputs=2)
def matmul(a, b, needs):
    """y = a @ b (1-D, 2-D and batched with broadcast batch dims);
    dL/da = g @ bᵀ, dL/db = aᵀ @ g (with the 1-D cases as outer products)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    try:
        y = a @ b
    except ValueError:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned (inner dimensions "
            f"{a.shape[-1]} and {b.shape[-2] if b.ndim > 1 else b.shape[0]} differ, or batch "
            f"dimensions do not broadcast)"
        ) from None

    def backward(g):
        ga = gb = None
        if a.ndim == 1 and b.ndim == 1:          # inner product
            ga = g * b if needs[0] else None
            gb = g * a if needs[1] else None
        elif b.ndim == 1:                         # (..., n, k) @ (k,) -> (..., n)
            if needs[0]:
                ga = g[..., None] * b
            if needs[1]:
                gb = (np.swapaxes(a, -1, -2) @ g[..., None])[..., 0]
        elif a.ndim == 1:                         # (k,) @ (..., k, m) -> (..., m)
            if needs[0]:
                ga = (b @ g[..., None])[..., 0]
            if needs[1]:
                gb = a[:, None] * g[..., None, :]
        else:
            if needs[0]:
                ga = g @ np.swapaxes(b, -1, -2)
            if needs[1]:
                gb = np.swapaxes(a, -1, -2) @ g
        return ga, gb
    return y, backward


@op(inputs=3)
def addmm(c, a, b, needs):
    """y = c + a @ b for 2-D a and b, c broadcast to the product;
    dL/dc = g (summed back by the engine), dL/da = g @ bᵀ, dL/db = aᵀ @ g.

    One op and one result array where ``c + a @ b`` makes two: the recurrent step
    ``gx + h W_hhᵀ`` and ``Linear`` use it, so the product is never kept beside the sum."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"addmm: a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"addmm: shapes {a.shape} and {b.shape} are not aligned "
                         f"(inner dimensions {a.shape[1]} and {b.shape[0]} differ)")
    y = a @ b
    try:
        if c.dtype == y.dtype or np.result_type(y, c) == y.dtype:
            np.add(y, c, out=y)  # the product is fresh: add in place
        else:  # integer operands of different widths: let NumPy promote, as c + a @ b does
            y = c + y
            if y.shape != (a.shape[0], b.shape[1]):
                raise ValueError
    except ValueError:
        raise ValueError(f"addmm: c of shape {c.shape} does not broadcast to the product's shape "
                         f"{(a.shape[0], b.shape[1])}") from None
    return y, lambda g: (g, g @ b.T if needs[1] else None, a.T @ g if needs[2] else None)
