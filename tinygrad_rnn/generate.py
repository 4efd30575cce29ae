"""Re-export of :mod:`tinygrad_rnn.data.generate`, where this code now lives.

``tinygrad_rnn.generate`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.data.generate``; nothing is copied."""
from .data.generate import (  # noqa: F401  (re-exported)
    end_token, generate, sample_index,
)

__all__ = [
    "generate", "sample_index", "end_token",
]
