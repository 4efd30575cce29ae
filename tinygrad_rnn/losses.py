"""Re-export of :mod:`tinygrad_rnn.train.losses`, where this code now lives.

``tinygrad_rnn.losses`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.train.losses``; nothing is copied."""
from .train.losses import (  # noqa: F401  (re-exported)
    bce_with_logits_forward, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_forward,
    l1_loss, l1_loss_forward, mse_loss, mse_loss_forward, nll_loss, nll_loss_forward, REDUCTIONS,
)

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
    "cross_entropy_forward", "nll_loss_forward", "mse_loss_forward", "l1_loss_forward",
    "bce_with_logits_forward", "REDUCTIONS",
]
