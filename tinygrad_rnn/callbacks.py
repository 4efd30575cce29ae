"""Re-export of :mod:`tinygrad_rnn.train.callbacks`, where this code now lives.

``tinygrad_rnn.callbacks`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.train.callbacks``; nothing is copied."""
from .train.callbacks import (  # noqa: F401  (re-exported)
    EarlyStopping, ModelCheckpoint,
)

__all__ = [
    "EarlyStopping", "ModelCheckpoint",
]
