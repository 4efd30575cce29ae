"""Re-export of :mod:`tinygrad_rnn.data.datasets`, where this code now lives.

``tinygrad_rnn.datasets`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.data.datasets``; nothing is copied."""
from .data.datasets import (  # noqa: F401  (re-exported)
    adding_problem, copy_task, copy_task_baseline, embedded_reber, is_embedded_reber, load_text,
    names, python_source, reber_next_symbols, sunspots, surnames,
)

__all__ = [
    "names", "surnames", "sunspots", "python_source", "load_text", "adding_problem", "copy_task",
    "copy_task_baseline", "embedded_reber", "reber_next_symbols", "is_embedded_reber",
]
