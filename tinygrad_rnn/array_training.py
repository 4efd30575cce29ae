"""Re-export of :mod:`tinygrad_rnn.train.array_training`, where this code now lives.

``tinygrad_rnn.array_training`` keeps working (package layout of issue 19): every name below is the
same object as in ``tinygrad_rnn.train.array_training``; nothing is copied."""
from .train.array_training import (  # noqa: F401  (re-exported)
    as_padded, evaluate_arrays, fit_arrays, predict_arrays,
)

__all__ = [
    "fit_arrays", "evaluate_arrays", "predict_arrays", "as_padded",
]
