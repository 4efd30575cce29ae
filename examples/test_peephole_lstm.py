"""How to check your own cell in pytest: the peephole LSTM of ``peephole_lstm.py`` against its
handwritten BPTT, once right and once with a deliberately wrong derivative.

    python -m pytest examples/test_peephole_lstm.py

(the project's test suite collects this file too). ``crosscheck_cell`` raises an
``AssertionError`` whose message names the quantity that disagrees, the first time step and the
worst element, e.g. for ``backward_with_a_bug``::

    gradient of 'w_cf': autograd vs analytic first disagrees at time step 1 (unrolled over step 0
    they agree): 4 of 4 elements differ (...); worst at index (0,): autograd 0.0177..., analytic
    0.0206..., difference -0.0029
"""
import re

import numpy as np
import pytest

from peephole_lstm import PeepholeLSTMCell, backward, backward_with_a_bug, forward

from tinygrad_rnn.testing import CellCheckError, crosscheck_cell


@pytest.mark.parametrize("steps, batch, seed", [(1, 1, 0), (5, 2, 0), (7, 3, 1)])
def test_my_peephole_derivation_matches_the_engine(steps, batch, seed):
    result = crosscheck_cell(PeepholeLSTMCell(3, 4), forward, backward, steps=steps, batch=batch, seed=seed)
    assert result.passed and result.max_abs_analytic < 1e-12


def test_a_wrong_derivative_is_caught_with_the_parameter_time_step_and_element():
    with pytest.raises(CellCheckError) as failure:
        crosscheck_cell(PeepholeLSTMCell(3, 4), forward, backward_with_a_bug, steps=5, batch=2, seed=0)
    message = str(failure.value)
    print(message)  # what a user sees (pytest -s shows it)
    # The missing path (c_{t-1} -> f_t) matters only once there is a step before: step 1.
    line = next(l for l in message.splitlines() if "gradient of 'w_cf'" in l)
    assert "first disagrees at time step 1" in line
    worst = re.search(r"worst at index \((\d+),\): autograd (\S+), analytic (\S+), difference", line)
    assert worst, line
    autograd, analytic = float(worst.group(2).rstrip(",")), float(worst.group(3).rstrip(","))
    assert abs(autograd - analytic) > 1e-4
    # outputs and final states come from forward, which is right: they are not blamed
    assert "outputs:" not in message and "final state" not in message


def test_the_cell_itself_is_left_as_it_was():
    cell = PeepholeLSTMCell(3, 4)
    before = {name: p.data.copy() for name, p in cell.named_parameters()}
    crosscheck_cell(cell, forward, backward)
    for name, p in cell.named_parameters():
        assert p.dtype == np.float32 and p.grad is None
        np.testing.assert_array_equal(p.data, before[name])
