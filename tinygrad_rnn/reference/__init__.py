"""Reference implementations the engine must match, written without it.

- :mod:`.analytic`: handwritten NumPy forward and BPTT for RNN, LSTM and GRU layers

This package imports nothing from the rest of ``tinygrad_rnn``, so a bug in the engine cannot hide
in its own yardstick. The checks that compare the two live above both: :mod:`tinygrad_rnn.testing`
and :mod:`tinygrad_rnn.crosscheck`.
"""
from . import analytic

__all__ = ["analytic"]
