"""Re-export of :mod:`tinygrad_rnn.autograd.ops.linalg`, where this code now lives.

``tinygrad_rnn.ops.linalg`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.ops.linalg``; nothing is copied."""
from ..autograd.ops.linalg import (  # noqa: F401  (re-exported)
    addmm, matmul,
)

__all__ = [
    "matmul", "addmm",
]
