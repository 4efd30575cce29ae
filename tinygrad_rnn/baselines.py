"""Count-based baselines that a trained recurrent model must beat."""
from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["bigram_nll"]


def bigram_nll(train: Iterable[np.ndarray], held_out: Iterable[np.ndarray], vocab_size: int,
               alpha: float = 1.0) -> float:
    """Held-out negative log-likelihood (nats per predicted token) of an add-``alpha`` bigram model.

    ``P(b | a) = (count(a, b) + alpha) / (count(a) + alpha * V)`` with counts over consecutive
    pairs of every training sequence; the loss averages ``-ln P(b | a)`` over every consecutive
    pair of the held-out sequences, i.e. over the same predictions a language model makes.
    """
    if vocab_size < 1 or not alpha > 0:  # `not >` also rejects NaN
        raise ValueError(f"bigram_nll: need vocab_size >= 1 and alpha > 0, got {vocab_size}, {alpha}")
    counts = np.zeros((vocab_size, vocab_size), dtype=np.float64)
    for seq in train:
        seq = _ids(seq, vocab_size)
        np.add.at(counts, (seq[:-1], seq[1:]), 1.0)
    log_probs = np.log(counts + alpha) - np.log(counts.sum(axis=1, keepdims=True) + alpha * vocab_size)
    total, n = 0.0, 0
    for seq in held_out:
        seq = _ids(seq, vocab_size)
        total -= log_probs[seq[:-1], seq[1:]].sum()
        n += max(len(seq) - 1, 0)  # an empty sequence has no pairs (not -1 of them)
    if n == 0:
        raise ValueError("bigram_nll: held-out sequences contain no pairs")
    return total / n


def _ids(seq: np.ndarray, vocab_size: int) -> np.ndarray:
    """A 1-D integer id array inside the vocabulary; negative ids (e.g. -100 padding) would
    otherwise index from the end of the count table without any error."""
    seq = np.asarray(seq)
    if seq.size == 0:
        return seq.astype(np.int64).reshape(0)
    if seq.ndim != 1 or seq.dtype.kind not in "iu":
        raise ValueError(f"bigram_nll: sequences must be 1-D integer ids, got dtype {seq.dtype} shape {seq.shape}")
    if seq.min() < 0 or seq.max() >= vocab_size:
        raise ValueError(f"bigram_nll: ids must be in [0, vocab_size={vocab_size}), "
                         f"got ids from {seq.min()} to {seq.max()}")
    return seq
