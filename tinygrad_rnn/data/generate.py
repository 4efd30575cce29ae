"""Sampling text from a trained language model one token at a time."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..random import rng as library_rng
from ..autograd.tensor import Tensor, no_grad

__all__ = ["generate", "sample_index", "end_token"]


def sample_index(logits: np.ndarray, temperature: float, top_k: int | None,
                 generator: np.random.Generator) -> int:
    """Draw from softmax(logits / temperature), restricted to the ``top_k`` largest logits;
    ``temperature == 0`` is greedy (argmax).

    Exactly ``top_k`` candidates are kept: logits tied at the cut are kept lowest index first
    (so ``top_k=1`` is the argmax whatever the temperature).
    """
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(logits))
    # Shift before dividing: the largest becomes 0, so a tiny temperature sends the others to
    # -inf (probability 0) instead of overflowing everything to inf and giving inf - inf = NaN.
    with np.errstate(over="ignore"):
        scaled = (logits - logits.max()) / temperature
    if top_k is not None and top_k < scaled.size:
        keep = np.argsort(-scaled, kind="stable")[:top_k]  # stable: equal logits by index
        masked = np.full_like(scaled, -np.inf)
        masked[keep] = scaled[keep]
        scaled = masked
    probs = np.exp(scaled)
    probs /= probs.sum()
    return int(generator.choice(probs.size, p=probs))


def end_token(tokenizer: Any) -> int | None:
    """The tokenizer's end-of-sequence id, or None when it has none."""
    try:
        return tokenizer.eos_id
    except (AttributeError, ValueError):
        return None


def generate(model: Any, tokenizer: Any, prime: str = "", max_len: int = 100,
             temperature: float = 1.0, top_k: int | None = None, seed: int | None = None,
             use_end_token: bool = True) -> str:
    """Continue ``prime`` with up to ``max_len`` sampled tokens and return the continuation.

    The model sees its start token first when the tokenizer has an end-of-sequence id (the same
    token marks starts and ends, as in training on names); sampling stops when it produces that
    token. ``use_end_token=False`` is for models trained on running text, which never saw that id:
    the context is ``prime`` alone (it must then be non-empty), the end token is never drawn, and
    exactly ``max_len`` tokens are. ``seed`` makes the draw reproducible without touching the
    library generator.
    """
    if not isinstance(max_len, (int, np.integer)) or max_len < 0:
        raise ValueError(f"generate: max_len must be a non-negative int, got {max_len!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f"generate: temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"generate: top_k must be a positive int or None, got {top_k!r}")
    if not isinstance(use_end_token, bool):
        raise TypeError(f"generate: use_end_token must be a bool, got {use_end_token!r}")
    eos = end_token(tokenizer) if use_end_token else None
    banned = None if use_end_token else end_token(tokenizer)
    if eos is None and not prime:
        raise ValueError("generate: prime must be non-empty without an end token to start from "
                         "(the tokenizer has none, or use_end_token=False)")
    generator = np.random.default_rng(seed) if seed is not None else library_rng()
    context = list(tokenizer.encode(prime)) if prime else []
    if eos is not None:
        context = [eos] + context
    was_training = getattr(model, "training", False)
    model.eval()
    produced: list[int] = []
    try:
        with no_grad():
            logits, state = model(Tensor(np.asarray([context], dtype=np.int64)), None)
            for _ in range(max_len):
                row = logits.data[0, -1]
                if banned is not None:
                    row = row.copy()
                    row[banned] = -np.inf
                token = sample_index(row, temperature, top_k, generator)
                if eos is not None and token == eos:
                    break
                produced.append(token)
                logits, state = model(Tensor(np.asarray([[token]], dtype=np.int64)), state)
    finally:
        model.train(was_training)
    return tokenizer.decode(produced)
