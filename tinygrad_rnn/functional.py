"""Functional twins of every op (``F.tanh(x)`` is ``x.tanh()``), for code that prefers functions."""
from __future__ import annotations

from .ops import (  # noqa: F401  (re-exported)
    abs, add, astype, cat, chunk, clip, concatenate, div, dropout, embedding, exp, flatten, getitem,
    log, log_softmax, logsumexp, matmul, max, maximum, mean, minimum, mul, neg, permute, pow, relu,
    reshape, sigmoid, softmax, split, squeeze, stack, sub, sum, tanh, transpose, unsqueeze, where,
)
