"""Re-export of :mod:`tinygrad_rnn.autograd.ops`, where this code now lives.

``tinygrad_rnn.ops`` keeps working (package layout of issue 19): every name below is the same object
as in ``tinygrad_rnn.autograd.ops``; nothing is copied."""
from ..autograd.ops import (  # noqa: F401  (re-exported)
    abs, add, addmm, argmax, argmin, astype, cat, chunk, clip, concatenate, detach, div, dropout,
    embedding, eq, exp, flatten, ge, getitem, gt, le, log, log_softmax, logsumexp, lt, matmul, max,
    maximum, mean, minimum, mul, ne, neg, permute, pow, relu, reshape, sigmoid, softmax, split,
    squeeze, stack, sub, sum, T, tanh, transpose, unbind, unsqueeze, where,
)

__all__ = [
    "abs", "add", "clip", "div", "dropout", "eq", "exp", "ge", "gt", "le", "log", "lt", "maximum",
    "minimum", "mul", "ne", "neg", "pow", "relu", "sigmoid", "sub", "tanh", "where", "addmm",
    "matmul", "argmax", "argmin", "log_softmax", "logsumexp", "max", "mean", "softmax", "sum", "T",
    "astype", "cat", "chunk", "concatenate", "detach", "embedding", "flatten", "getitem", "permute",
    "reshape", "split", "squeeze", "stack", "transpose", "unbind", "unsqueeze",
]
