"""Re-export of :mod:`tinygrad_rnn.autograd.ops.reduce`, where this code now lives.

``tinygrad_rnn.ops.reduce`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.ops.reduce``; nothing is copied."""
from ..autograd.ops.reduce import (  # noqa: F401  (re-exported)
    argmax, argmin, log_softmax, logsumexp, max, mean, softmax, sum,
)

__all__ = [
    "sum", "mean", "max", "argmax", "argmin", "logsumexp", "softmax", "log_softmax",
]
