"""Evaluation metrics: plain floats computed with NumPy, never part of an autograd graph."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .autograd.tensor import Tensor

__all__ = ["accuracy", "perplexity", "bits_per_token"]


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def accuracy(logits: Any, target: Any, ignore_index: int = -100) -> float:
    """Fraction of positions whose argmax over the LAST axis equals the target.

    ``logits (..., C)`` (Tensor or array) and integer ``target (...)``; positions whose target is
    ``ignore_index`` (padding) are not counted. When every position is ignored the accuracy is
    undefined and NaN is returned (averaging per-batch values with ``np.nanmean`` skips it).
    Ties go to the lowest class index (``np.argmax``).
    """
    scores, y = _array(logits), _array(target)
    if scores.ndim == 0:
        raise ValueError("accuracy: logits need a class axis (last), got a 0-d array")
    if y.dtype.kind not in "iu":
        raise TypeError(f"accuracy: target must hold integer class indices, got dtype {y.dtype}")
    if y.shape != scores.shape[:-1]:
        raise ValueError(
            f"accuracy: target shape {y.shape} must equal logits shape {scores.shape} without its "
            f"last (class) axis, i.e. {scores.shape[:-1]}"
        )
    counted = y != ignore_index
    total = int(counted.sum())
    if total == 0:
        return math.nan
    correct = (scores.argmax(axis=-1) == y) & counted
    return int(correct.sum()) / total


def perplexity(loss: Any) -> float:
    """exp(mean cross-entropy in nats): the effective number of equally likely next tokens."""
    try:
        return math.exp(float(_array(loss)))
    except OverflowError:  # a loss above ~709.78 nats
        return math.inf


def bits_per_token(loss: Any) -> float:
    """Mean cross-entropy converted from nats to bits (bits per character for a char model)."""
    return float(_array(loss)) / math.log(2.0)
