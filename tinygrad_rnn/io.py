"""Re-export of :mod:`tinygrad_rnn.train.checkpoints`, where this code now lives.

``tinygrad_rnn.io`` keeps working (package layout of issue 19): every name below is the same object
as in ``tinygrad_rnn.train.checkpoints``; nothing is copied."""
from .train.checkpoints import (  # noqa: F401  (re-exported)
    Checkpoint, CheckpointError, FORMAT, FORMAT_VERSION, load, read, save,
)

__all__ = [
    "save", "load", "read", "Checkpoint", "CheckpointError", "FORMAT", "FORMAT_VERSION",
]
