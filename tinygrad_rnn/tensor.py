"""Re-export of :mod:`tinygrad_rnn.autograd.tensor`, where this code now lives.

``tinygrad_rnn.tensor`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.tensor``; nothing is copied."""
from .autograd.tensor import (  # noqa: F401  (re-exported)
    arange, current_scope, DEFAULT_FLOAT, detect_anomaly, enable_grad, full, is_grad_enabled,
    no_grad, ones, ones_like, rand, randn, run_backward, scope, Tensor, unbroadcast, zeros, zeros_like,
)

__all__ = [
    "DEFAULT_FLOAT", "Tensor", "arange", "full", "ones", "ones_like", "rand", "randn", "zeros",
    "zeros_like", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "scope",
    "run_backward", "current_scope", "unbroadcast",
]
