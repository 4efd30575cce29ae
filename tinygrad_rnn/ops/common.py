"""Re-export of :mod:`tinygrad_rnn.autograd.ops.common`, where this code now lives.

``tinygrad_rnn.ops.common`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.ops.common``; nothing is copied."""
from ..autograd.ops.common import (  # noqa: F401  (re-exported)
    broadcast_error, normalize_axes, normalize_axis, Scalar, shape_args,
)

__all__ = [
    "normalize_axes", "normalize_axis", "shape_args", "broadcast_error", "Scalar",
]
