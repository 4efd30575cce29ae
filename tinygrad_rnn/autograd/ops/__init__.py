"""Differentiable ops. Each is one small function over NumPy arrays that returns its result and
its ``backward`` side by side, the equation in its docstring (see :func:`tinygrad_rnn.autograd.engine.op`):

- :mod:`.elementwise`: arithmetic, activations, comparisons, ``where``, ``clip``, ``dropout``
- :mod:`.reduce`: ``sum``, ``mean``, ``max``, ``argmax``, ``logsumexp``, ``softmax``, ...
- :mod:`.shape`: ``reshape``, ``transpose``, indexing, ``embedding``, ``split``/``chunk``/``unbind``,
  ``cat``, ``stack``, ``astype``
- :mod:`.linalg`: ``matmul``, ``addmm``
"""
from .elementwise import (
    abs, add, clip, div, dropout, eq, exp, ge, gt, le, log, lt, maximum, minimum, mul, ne, neg, pow,
    relu, sigmoid, sub, tanh, where,
)
from .linalg import addmm, matmul
from .reduce import argmax, argmin, log_softmax, logsumexp, max, mean, softmax, sum
from .shape import (
    T, astype, cat, chunk, concatenate, detach, embedding, flatten, getitem, permute, reshape, split,
    squeeze, stack, transpose, unbind, unsqueeze,
)

__all__ = [
    "abs", "add", "clip", "div", "dropout", "eq", "exp", "ge", "gt", "le", "log", "lt", "maximum",
    "minimum", "mul", "ne", "neg", "pow", "relu", "sigmoid", "sub", "tanh", "where", "addmm",
    "matmul", "argmax", "argmin", "log_softmax", "logsumexp", "max", "mean", "softmax", "sum", "T",
    "astype", "cat", "chunk", "concatenate", "detach", "embedding", "flatten", "getitem", "permute",
    "reshape", "split", "squeeze", "stack", "transpose", "unbind", "unsqueeze",
]
