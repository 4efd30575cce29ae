"""Re-export of :mod:`tinygrad_rnn.autograd.gradcheck`, where this code now lives.

``tinygrad_rnn.gradcheck`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.gradcheck``; nothing is copied."""
from .autograd.gradcheck import (  # noqa: F401  (re-exported)
    gradcheck, GradcheckError, numeric_gradient, numeric_gradients, reverse_gradients,
)

__all__ = [
    "GradcheckError", "gradcheck", "numeric_gradient", "reverse_gradients", "numeric_gradients",
]
