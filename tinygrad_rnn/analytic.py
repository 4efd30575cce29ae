"""Re-export of :mod:`tinygrad_rnn.reference.analytic`, where this code now lives.

``tinygrad_rnn.analytic`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.reference.analytic``; nothing is copied."""
from .reference.analytic import (  # noqa: F401  (re-exported)
    gru_backward, gru_forward, lstm_backward, lstm_forward, rnn_backward, rnn_forward,
)

__all__ = [
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
]
