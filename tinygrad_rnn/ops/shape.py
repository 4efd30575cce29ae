"""Re-export of :mod:`tinygrad_rnn.autograd.ops.shape`, where this code now lives.

``tinygrad_rnn.ops.shape`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.ops.shape``; nothing is copied."""
from ..autograd.ops.shape import (  # noqa: F401  (re-exported)
    astype, cat, chunk, concatenate, detach, embedding, flatten, getitem, permute, reshape, split,
    squeeze, stack, T, transpose, unbind, unsqueeze,
)

__all__ = [
    "reshape", "permute", "transpose", "T", "flatten", "squeeze", "unsqueeze", "getitem",
    "embedding", "split", "chunk", "unbind", "cat", "concatenate", "stack", "astype", "detach",
]
