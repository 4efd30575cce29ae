"""The library's own random number generator.

Everything random in tinygrad_rnn (initialisation, dropout masks, ``randn``, sampling) draws from
one ``np.random.Generator`` kept here, so ``manual_seed`` makes a whole program reproducible without
touching NumPy's global random state.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "rng", "get_rng_state", "set_rng_state"]

_rng: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reseed the library generator (the same role as ``torch.manual_seed``)."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))


def rng() -> np.random.Generator:
    """The generator every random op of the library uses."""
    return _rng


def get_rng_state() -> dict:
    """A JSON-serialisable snapshot of the generator (stored in checkpoints)."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`."""
    bit_generator = np.random.PCG64()
    bit_generator.state = state
    global _rng
    _rng = np.random.Generator(bit_generator)
