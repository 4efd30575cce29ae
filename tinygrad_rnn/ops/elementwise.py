"""Re-export of :mod:`tinygrad_rnn.autograd.ops.elementwise`, where this code now lives.

``tinygrad_rnn.ops.elementwise`` keeps working (package layout of issue 19): every name below is the
same object as in ``tinygrad_rnn.autograd.ops.elementwise``; nothing is copied."""
from ..autograd.ops.elementwise import (  # noqa: F401  (re-exported)
    abs, add, clip, div, dropout, eq, exp, ge, gt, le, log, lt, maximum, minimum, mul, ne, neg, pow,
    relu, sigmoid, sub, tanh, where,
)

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "tanh", "sigmoid", "relu", "abs",
    "clip", "maximum", "minimum", "where", "dropout", "eq", "ne", "lt", "le", "gt", "ge",
]
