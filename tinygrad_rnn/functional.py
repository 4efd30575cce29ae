"""Functional twins of every op (``F.tanh(x)`` is ``x.tanh()``), the losses, and the metrics."""
from __future__ import annotations

from typing import Any

import numpy as np

from .autograd import ops
from .autograd.tensor import Tensor
from .train.losses import (  # noqa: F401  (re-exported)
    binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss,
)
from .metrics import accuracy, bits_per_token, perplexity  # noqa: F401
from .autograd.ops import (  # noqa: F401
    abs, add, addmm, argmax, argmin, astype, cat, chunk, clip, concatenate, div, dropout, embedding,
    eq, exp, flatten, ge, getitem, gt, le, log, log_softmax, logsumexp, lt, matmul, max, maximum,
    mean, minimum, mul, ne, neg, permute, pow, relu, reshape, sigmoid, softmax, split, squeeze,
    stack, sub, sum, tanh, transpose, unbind, unsqueeze, where,
)

__all__ = [
    "binary_cross_entropy_with_logits", "cross_entropy", "l1_loss", "mse_loss", "nll_loss", "accuracy",
    "bits_per_token", "perplexity", "abs", "add", "addmm", "argmax", "argmin", "astype", "cat", "chunk",
    "clip", "concatenate", "div", "dropout", "embedding", "eq", "exp", "flatten", "ge", "getitem", "gt",
    "le", "log", "log_softmax", "logsumexp", "lt", "matmul", "max", "maximum", "mean", "minimum", "mul",
    "ne", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "softmax", "split", "squeeze", "stack",
    "sub", "sum", "tanh", "transpose", "unbind", "unsqueeze", "where", "one_hot",
]


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """int64 one-hot rows on a new last axis: ``y[..., c] = (tensor[...] == c)``, PyTorch's
    ``F.one_hot``. ``num_classes=-1`` means ``max + 1``, read from the values, so code that is
    compiled (``fit``) must pass ``num_classes``; then it is one comparison op."""
    if isinstance(tensor, np.ndarray):
        tensor = Tensor(tensor)
    if not isinstance(tensor, Tensor):
        raise TypeError(f"one_hot: tensor must be a Tensor or np.ndarray of ints, got {type(tensor).__name__}")
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: tensor must hold integer class indices, got dtype {tensor.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    if num_classes == -1:
        num_classes = int(tensor.data.max()) + 1 if tensor.size else 0
    elif num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be -1 or >= 1, got {num_classes}")
    if tensor.size and (tensor.data.min() < 0 or tensor.data.max() >= num_classes):  # validation only
        raise ValueError(f"one_hot: class values must lie in [0, {num_classes}), got "
                         f"[{tensor.data.min()}, {tensor.data.max()}]")
    classes = Tensor(np.arange(num_classes, dtype=np.int64))
    return ops.astype(ops.eq(ops.unsqueeze(tensor, -1), classes), np.int64)
