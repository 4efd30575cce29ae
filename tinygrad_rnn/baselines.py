"""Count-based baselines that a trained recurrent model must beat."""
from __future__ import annotations

from typing import Iterable

import numpy as np


def bigram_nll(train: Iterable[np.ndarray], held_out: Iterable[np.ndarray], vocab_size: int,
               alpha: float = 1.0) -> float:
    """Held-out negative log-likelihood (nats per predicted token) of an add-``alpha`` bigram model.

    ``P(b | a) = (count(a, b) + alpha) / (count(a) + alpha * V)`` with counts over consecutive
    pairs of every training sequence; the loss averages ``-ln P(b | a)`` over every consecutive
    pair of the held-out sequences, i.e. over the same predictions a language model makes.
    """
    if vocab_size < 1 or alpha <= 0:
        raise ValueError(f"bigram_nll: need vocab_size >= 1 and alpha > 0, got {vocab_size}, {alpha}")
    counts = np.zeros((vocab_size, vocab_size), dtype=np.float64)
    for seq in train:
        seq = np.asarray(seq)
        np.add.at(counts, (seq[:-1], seq[1:]), 1.0)
    log_probs = np.log(counts + alpha) - np.log(counts.sum(axis=1, keepdims=True) + alpha * vocab_size)
    total, n = 0.0, 0
    for seq in held_out:
        seq = np.asarray(seq)
        total -= log_probs[seq[:-1], seq[1:]].sum()
        n += len(seq) - 1
    if n == 0:
        raise ValueError("bigram_nll: held-out sequences contain no pairs")
    return total / n
