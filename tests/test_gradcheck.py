"""``gradcheck`` itself: it must accept correct gradients and catch wrong ones, naming where."""
import re

import numpy as np
import pytest

from tinygrad_rnn import GradcheckError, Tensor, gradcheck
from tinygrad_rnn import functional as F
from tinygrad_rnn.engine import op


def leaf(shape, seed, dtype=np.float64):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return Tensor(data, requires_grad=True)


def square_with_bad_gradient(x: Tensor, bump_at: tuple, bump: float = 0.5) -> Tensor:
    """y = x² but the backward adds ``bump`` to the correct 2x·g at one element."""
    @op()
    def bad_square(xd):
        def backward(g):
            grad = 2.0 * xd * g
            grad[bump_at] += bump
            return (grad,)
        return xd ** 2, backward
    return bad_square(x)


def scale_with_bad_gradient(a: Tensor, b: Tensor) -> Tensor:
    """y = a * b whose gradient for b forgets a factor (returns g instead of g * a)."""
    @op(inputs=2)
    def bad_scale(ad, bd):
        return ad * bd, lambda g: (g * bd, g)
    return bad_scale(a, b)


def test_returns_true_for_correct_gradients():
    a, b = leaf((2, 3), 0), leaf((3,), 1)
    assert gradcheck(lambda a, b: F.tanh(a * b).sum(axis=0) @ b, (a, b)) is True
    assert gradcheck(F.exp, a) is True  # a single tensor is accepted too


def test_names_input_element_analytic_and_numeric_for_a_wrong_op():
    x = leaf((3, 4), 2)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: square_with_bad_gradient(t, (1, 2)), x)
    message = str(info.value)
    assert "input 0" in message and "element (1, 2)" in message
    analytic, numeric = map(float, re.search(r"analytic (\S+) vs numeric (\S+)", message).groups())
    assert abs(analytic - numeric) > 0.1  # the reported numbers really disagree
    assert isinstance(info.value, AssertionError)  # so pytest shows it as a failed check


def test_points_at_the_second_input_when_only_its_gradient_is_wrong():
    a = leaf((2,), 3)
    b = Tensor(np.array([0.7, -1.3]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 1, element \(0,\)"):
        gradcheck(scale_with_bad_gradient, (a, b))
    # Checking only a (b a constant) passes: a's gradient rule is right.
    assert gradcheck(scale_with_bad_gradient, (a, Tensor(b.data)))


def test_raise_exception_false_returns_false():
    x = leaf((2, 2), 4)
    assert gradcheck(lambda t: square_with_bad_gradient(t, (0, 0)), x, raise_exception=False) is False
    assert gradcheck(lambda t: t ** 2, x, raise_exception=False) is True


def test_catches_a_wrong_rule_that_a_uniform_upstream_gradient_would_miss():
    """A column sum whose backward reverses g: with g = 1 it would be right, with random g not."""
    @op()
    def bad_column_sum(xd):
        return xd.sum(axis=0), lambda g: (np.broadcast_to(g[::-1], xd.shape),)
    x = leaf((2, 3), 5)
    ones = np.ones(3)
    bad_column_sum(x).backward(ones)
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))  # indistinguishable from the truth
    x.grad = None
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(bad_column_sum, x)


def test_warns_on_float32_inputs():
    x = leaf((3,), 6, dtype=np.float32)
    with pytest.warns(UserWarning, match="not float64"):
        gradcheck(lambda t: t * 2.0, x, eps=1e-2, atol=1e-2, rtol=1e-2)


def test_restores_inputs_and_their_gradients():
    x = leaf((2, 3), 7)
    x.grad = np.full((2, 3), 9.0)
    data = x.data
    copy = data.copy()
    gradcheck(lambda t: F.tanh(t), x)
    assert x.data is data and np.array_equal(x.data, copy)
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 9.0))


def test_multiple_outputs_and_constant_inputs():
    a, c = leaf((2, 3), 8), Tensor(np.ones((2, 3)))
    assert gradcheck(lambda a, c: (a * c, F.sigmoid(a).sum(), c * 2.0), (a, c))


def test_argument_errors():
    x = leaf((2,), 9)
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(F.exp, Tensor(np.ones(2)))
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a Tensor"):
        gradcheck(F.add, (x, np.ones(2)))
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        gradcheck(lambda t: t.data * 2, x)


def test_custom_op_built_with_the_op_decorator_passes_when_correct():
    @op()
    def cube(xd):
        return xd ** 3, lambda g: (3.0 * xd ** 2 * g,)
    assert gradcheck(cube, leaf((4,), 10))
