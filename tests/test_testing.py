"""``tinygrad_rnn.testing``: each check passes on right input and fails, saying where, on wrong."""
import re

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, ops
from tinygrad_rnn.crosscheck import KINDS, analytic_pair
from tinygrad_rnn.engine import op
from tinygrad_rnn.testing import (
    CellCheckError, GradcheckError, assert_close, check_gradients, crosscheck_cell, default_tolerances,
)


# ----- assert_close ------------------------------------------------------------------------------
def test_assert_close_passes_within_the_dtype_tolerances():
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    assert_close(x, x + 5e-8)                                   # float64: rtol 1e-7, atol 1e-7
    assert_close(Tensor(x.astype(np.float32)), x.astype(np.float32) + 5e-6)   # float32: atol 1e-5
    assert_close(np.arange(4), np.arange(4))
    assert_close(2.0, 2.0)
    assert default_tolerances(np.float32, np.float64) == (1.3e-6, 1e-5)  # the less precise wins
    assert default_tolerances(np.int64) == (0.0, 0.0)


def test_assert_close_names_the_worst_element_both_values_and_the_difference():
    expected = np.zeros((3, 4))
    actual = expected.copy()
    actual[0, 1] = 1e-3
    actual[2, 3] = -0.5
    with pytest.raises(AssertionError) as failure:
        assert_close(Tensor(actual), expected, msg="hidden state")
    message = str(failure.value)
    assert message.startswith("hidden state: 2 of 12 elements differ")
    assert "worst at index (2, 3): actual -0.5, expected 0.0, difference -0.5" in message


def test_assert_close_float64_defaults_are_tighter_than_float32():
    with pytest.raises(AssertionError, match=r"index \(1,\)"):
        assert_close(np.array([1.0, 1.0 + 1e-5]), np.ones(2))
    assert_close(np.array([1.0, 1.0 + 1e-6], dtype=np.float32), np.ones(2, dtype=np.float32))


def test_assert_close_integers_are_exact_and_explicit_tolerances_apply():
    with pytest.raises(AssertionError, match=r"index \(2,\): actual 4.0, expected 3.0, difference 1"):
        assert_close(np.array([1, 2, 4]), np.array([1, 2, 3]))
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.1]), rtol=0.0, atol=0.2)
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.1]), rtol=0.0, atol=0.05)


def test_assert_close_nan_and_inf():
    with pytest.raises(AssertionError, match=r"index \(1,\): actual nan"):
        assert_close(np.array([1.0, np.nan]), np.array([1.0, np.nan]))
    assert_close(np.array([1.0, np.nan]), np.array([1.0, np.nan]), equal_nan=True)
    assert_close(np.array([np.inf]), np.array([np.inf]))
    with pytest.raises(AssertionError):
        assert_close(np.array([np.inf]), np.array([-np.inf]))


def test_assert_close_argument_errors():
    with pytest.raises(AssertionError, match=r"shapes differ: actual \(2,\), expected \(3,\)"):
        assert_close(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="both rtol and atol"):
        assert_close(1.0, 1.0, rtol=1e-3)
    with pytest.raises(ValueError, match="must be >= 0"):
        assert_close(1.0, 1.0, rtol=-1.0, atol=0.0)
    with pytest.raises(TypeError, match="expected must be a Tensor"):
        assert_close(1.0, "1.0")


# ----- check_gradients ---------------------------------------------------------------------------
def test_check_gradients_returns_correct_gradients_and_leaves_inputs_alone():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    index = np.array([1, 0, 1])
    grads = check_gradients(lambda a, w, idx: (a @ w).tanh()[idx], [a, w, index])
    assert grads[2] is None and grads[0].dtype == np.float64
    assert a.dtype == np.float32 and w.grad is None
    # with the upstream gradient check_gradients drew, recompute by hand
    u = np.random.default_rng(0).standard_normal((3, 4))
    y = np.tanh(a.astype(np.float64) @ w.data)
    dy = np.zeros_like(y)
    np.add.at(dy, index, u)
    dz = dy * (1 - y ** 2)
    np.testing.assert_allclose(grads[0], dz @ w.data.T, rtol=1e-12)
    np.testing.assert_allclose(grads[1], a.astype(np.float64).T @ dz, rtol=1e-12)


def bad_mean(x):
    """mean over the last axis whose backward moves g from element 1 to element 0 of each row
    (the row sums of the gradient stay right)."""
    @op()
    def mean_last(xd):
        n = xd.shape[-1]
        return xd.mean(axis=-1), lambda g: (np.broadcast_to(g[..., None] / n, xd.shape) + _skew(xd.shape, g),)
    return mean_last(x)


def _skew(shape, g):
    """+g at element 0, -g at element 1 of each row: sums to zero per row."""
    s = np.zeros(shape)
    s[..., 0] = g
    s[..., 1] = -g
    return s


def test_check_gradients_names_the_input_and_worst_element_of_a_wrong_rule():
    x = np.random.default_rng(1).standard_normal((2, 3))
    with pytest.raises(GradcheckError) as failure:
        check_gradients(bad_mean, [x], names=["x"])
    message = str(failure.value)
    assert message.startswith("check_gradients: input 0 ('x'), autograd vs central differences:")
    assert re.search(r"worst at index \(\d, [01]\): autograd \S+, numeric \S+, difference", message)


def test_check_gradients_against_a_reference_vjp():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3,))

    def fn(x, w):
        return (x * w).sigmoid().sum(axis=1)

    def right(u, x, w):
        s = 1 / (1 + np.exp(-(x * w)))
        d = u[:, None] * s * (1 - s)
        return d * w, (d * x).sum(axis=0)

    def wrong(u, x, w):  # forgets the sigmoid's derivative for w
        dx, _ = right(u, x, w)
        return dx, (u[:, None] * x).sum(axis=0)

    check_gradients(fn, [x, w], reference=right)
    with pytest.raises(GradcheckError, match=r"input 1, autograd vs reference: 3 of 3 elements differ"):
        check_gradients(fn, [x, w], reference=wrong)
    with pytest.raises(ValueError, match="reference returned 1 gradients for 2 inputs"):
        check_gradients(fn, [x, w], reference=lambda u, x, w: (x,))


def test_check_gradients_argument_errors():
    with pytest.raises(ValueError, match="no input to check"):
        check_gradients(lambda i: i * 2, [np.arange(3)])
    with pytest.raises(ValueError, match="2 names for 1 inputs"):
        check_gradients(lambda x: x, [np.ones(2)], names=["a", "b"])
    with pytest.raises(TypeError, match="must be a list or tuple"):
        check_gradients(lambda x: x, {"x": np.ones(2)})


# ----- crosscheck_cell ---------------------------------------------------------------------------
def builtin(kind, input_size=3, hidden=4):
    tg.manual_seed(0)
    if kind.startswith("rnn"):
        return nn.RNNCell(input_size, hidden, nonlinearity=kind[4:])
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](input_size, hidden)


@pytest.mark.parametrize("kind", KINDS)
def test_builtin_cells_agree_with_the_analytic_module(kind):
    result = crosscheck_cell(builtin(kind), *analytic_pair(kind), steps=4, batch=3, seed=5)
    assert result.passed
    assert result.max_abs_analytic < 1e-12 and result.max_abs_numeric < 1e-6


def test_a_wrong_forward_is_blamed_on_the_outputs_at_step_0():
    forward, backward = analytic_pair("gru")

    def shifted(x, state0, params):
        out, final, cache = forward(x, state0, params)
        out = out.copy()
        out[0, 1, 2] += 1e-3
        return out, final, cache

    result = crosscheck_cell(builtin("gru"), shifted, backward, raise_exception=False)
    assert not result.passed
    [line] = [f for f in result.failures if f.startswith("outputs:")]
    assert "first disagrees at time step 0:" in line
    assert "1 of 40 elements differ" in line and "worst at index (0, 1, 2)" in line


def test_a_wrong_recurrent_gradient_is_dated_to_the_step_it_first_matters():
    forward, backward = analytic_pair("rnn_tanh")

    def no_recurrent_weight_grad_before_last_step(d_out, d_state, cache):
        d = backward(d_out, d_state, cache)
        # pretend the steps before the last do not feed weight_hh: right only for one step
        one = backward(np.concatenate([np.zeros_like(d_out[:-1]), d_out[-1:]]), d_state, cache)
        return dict(d, weight_hh=one["weight_hh"])

    with pytest.raises(CellCheckError) as failure:
        crosscheck_cell(builtin("rnn_tanh"), forward, no_recurrent_weight_grad_before_last_step, steps=4)
    message = str(failure.value)
    assert message.startswith("crosscheck_cell(RNNCell): 1 disagreement(s) over 4 steps, batch 2")
    assert re.search(r"gradient of 'weight_hh': autograd vs analytic first disagrees at time step 1 "
                     r"\(unrolled over step 0 they agree\): .* worst at index \(\d, \d\)", message)


def test_the_engine_itself_is_checked_against_central_differences(monkeypatch):
    """A cell built on an op with a wrong backward: the numeric comparison blames the engine side."""
    @op()
    def tanh_bad(x):
        y = np.tanh(x)
        return y, lambda g: (g * (1 - y),)   # should be 1 - y²

    import tinygrad_rnn.nn.cells as cells
    monkeypatch.setattr(cells.Tensor, "tanh", lambda self: tanh_bad(self))
    result = crosscheck_cell(builtin("rnn_tanh"), *analytic_pair("rnn_tanh"), raise_exception=False)
    assert any("autograd vs central differences" in f for f in result.failures)
    assert any("autograd vs analytic" in f for f in result.failures)
    assert result.max_abs_numeric > 1e-3


def test_user_function_contract_errors():
    forward, backward = analytic_pair("lstm")
    cell = builtin("lstm")
    with pytest.raises(ValueError, match=r"backward's dict lacks \['bias_hh'\]"):
        crosscheck_cell(cell, forward, lambda *a: {k: v for k, v in backward(*a).items() if k != "bias_hh"})
    with pytest.raises(ValueError, match=r"forward's outputs has shape \(4, 2, 4\), expected \(5, 2, 4\)"):
        crosscheck_cell(cell, lambda x, s, p: (lambda o, f, c: (o[1:], f, c))(*forward(x, s, p)), backward)
    with pytest.raises(TypeError, match=r"must return \(outputs, final_state, cache\)"):
        crosscheck_cell(cell, lambda x, s, p: forward(x, s, p)[:2], backward)
    with pytest.raises(TypeError, match="final_state must be a tuple of 2 arrays"):
        crosscheck_cell(cell, lambda x, s, p: (lambda o, f, c: (o, f[0], c))(*forward(x, s, p)), backward)
    with pytest.raises(TypeError, match="lacks 'step' of the cell protocol"):
        crosscheck_cell(nn.Linear(3, 4), forward, backward)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        crosscheck_cell(cell, forward, backward, steps=0)
    with pytest.raises(TypeError, match="backward must be callable"):
        crosscheck_cell(cell, forward, None)


def test_cells_without_input_size_need_it_given():
    forward, backward = analytic_pair("gru")
    cell = builtin("gru")

    class Wrapped(nn.Module):  # the protocol, but no input_size attribute
        def __init__(self):
            super().__init__()
            self.inner = cell
            self.state_size, self.output_size = cell.state_size, cell.output_size

        def step(self, x, state):
            return self.inner.step(x, state)

    def fwd(x, s, p):
        return forward(x, s, {k.split(".")[1]: v for k, v in p.items()})

    def bwd(*args):
        d = backward(*args)
        return {"x": d["x"], "state0": d["state0"], **{f"inner.{k}": d[k] for k in d if k not in ("x", "state0")}}

    with pytest.raises(ValueError, match="pass input_size="):
        crosscheck_cell(Wrapped(), fwd, bwd)
    assert crosscheck_cell(Wrapped(), fwd, bwd, input_size=3).passed


# ----- the example and the docs ----------------------------------------------------------------
def test_the_peephole_example_script_and_the_docs_show_the_same_failure():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "examples" / "peephole_lstm.py")], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("right derivation: PASS")
    assert "derivation with a bug: FAIL, as it should:" in done.stdout
    page = (root / "docs" / "tutorial" / "07-checking-your-cell.md").read_text(encoding="utf-8")
    block = page.split("One of its lines:\n\n```\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 2
    for line in lines:
        assert line in done.stdout.splitlines(), line
