"""Functional twins of every op (``F.tanh(x)`` is ``x.tanh()``), the losses, and the metrics."""
from __future__ import annotations

from .losses import (  # noqa: F401  (re-exported)
    binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss,
)
from .metrics import accuracy, bits_per_token, perplexity  # noqa: F401
from .ops import (  # noqa: F401
    abs, add, addmm, argmax, argmin, astype, cat, chunk, clip, concatenate, div, dropout, embedding,
    eq, exp, flatten, ge, getitem, gt, le, log, log_softmax, logsumexp, lt, matmul, max, maximum,
    mean, minimum, mul, ne, neg, permute, pow, relu, reshape, sigmoid, softmax, split, squeeze,
    stack, sub, sum, tanh, transpose, unbind, unsqueeze, where,
)
