"""Re-export of :mod:`tinygrad_rnn.train.optim`, where this code now lives.

``tinygrad_rnn.optim`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.train.optim``; nothing is copied."""
from .train.optim import (  # noqa: F401  (re-exported)
    Adagrad, Adam, AdamW, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_,
    CosineAnnealingLR, get_total_norm, LinearLR, LRScheduler, Optimizer, RMSprop, SequentialLR, SGD,
    StepLR, warmup_cosine,
)

__all__ = [
    "Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "clip_grad_norm_",
    "clip_grads_with_norm_", "get_total_norm", "clip_grad_value_", "LRScheduler", "StepLR",
    "CosineAnnealingLR", "LinearLR", "SequentialLR", "warmup_cosine",
]
