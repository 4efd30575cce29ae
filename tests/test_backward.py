"""The backward pass itself: deep graphs without recursion, accumulation, reuse, grad modes,
detach, retain_graph/retain_grad, anomaly detection, unused outputs and gradient shapes/dtypes."""
import sys
import time
import warnings

import numpy as np
import pytest

from tinygrad_rnn import (
    Tensor, detect_anomaly, enable_grad, gradcheck, is_grad_enabled, no_grad,
)
from tinygrad_rnn import functional as F
from tinygrad_rnn.engine import op

DEFAULT_RECURSION_LIMIT = 1000  # CPython's documented default


def leaf(values, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----- deep graphs -----------------------------------------------------------------------------
def test_100k_op_chain_backpropagates_at_the_default_recursion_limit():
    """y_{k+1} = y_k * a + 0 for 100,000 steps: dy/dx = a^100000, with 200,000 nodes on one path."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        a, steps = 1.0000001, 100_000
        x = leaf(0.5)
        start = time.perf_counter()
        y = x
        for _ in range(steps):
            y = y * a + 0.0
        y.backward()
        elapsed = time.perf_counter() - start
        assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT  # the engine did not raise it
    finally:
        sys.setrecursionlimit(previous)
    np.testing.assert_allclose(x.grad, a ** steps, rtol=1e-9)
    np.testing.assert_allclose(y.data, 0.5 * a ** steps, rtol=1e-9)
    assert elapsed < 30.0, f"100k-op chain took {elapsed:.1f}s"


def test_long_tanh_chain_with_a_retained_graph_is_freed_without_recursion():
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        x = leaf(0.3)
        y, ys = x, []
        for _ in range(5000):
            y = F.tanh(y * 1.01)
            ys.append(float(y.data))
        y.backward(retain_graph=True)
        del y  # tearing down a 10,000-node graph must not recurse either
    finally:
        sys.setrecursionlimit(previous)
    # d y_{k+1} / d y_k = 1.01 (1 - y_{k+1}²), multiplied along the chain.
    expected = np.prod([1.01 * (1.0 - v * v) for v in ys])
    np.testing.assert_allclose(x.grad, expected, rtol=1e-9)


# ----- accumulation and reuse ------------------------------------------------------------------
def test_two_backward_calls_accumulate_into_leaves():
    x = leaf([1.0, -2.0, 3.0])
    for _ in range(2):
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * x.data))


def test_x_times_x_gradient_is_2x():
    x = leaf([1.5, -0.5, 2.0])
    (x * x).backward(np.ones(3))
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_a_node_reused_along_two_paths():
    """z = y*y + y with y = tanh(x): dz/dx = (2y + 1)(1 - y²)."""
    x = leaf([0.3, -1.2, 0.8])
    y = F.tanh(x)
    z = y * y + y
    g = np.array([0.5, -2.0, 1.5])
    z.backward(g)
    yd = np.tanh(x.data)
    np.testing.assert_allclose(x.grad, g * (2 * yd + 1) * (1 - yd ** 2))
    assert gradcheck(lambda x: (lambda y: y * y + y)(F.tanh(x)), leaf(np.array([0.3, -1.2])))


def test_diamond_graph_with_many_paths():
    x = leaf(np.random.default_rng(0).standard_normal((2, 3)))

    def f(x):
        a = F.exp(x * 0.3)
        b = a * x + F.sigmoid(a)
        c = b @ a.T
        return c + a.sum() * b.sum(axis=1, keepdims=True)
    assert gradcheck(f, x)


# ----- grad modes ------------------------------------------------------------------------------
def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0 + 1.0
    assert is_grad_enabled()
    assert not y.requires_grad and y.parents == () and y.op == ""
    np.testing.assert_array_equal(y.data, [3.0, 5.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_decorator_also_under_recursion_and_exceptions():
    x = leaf([1.0])

    @no_grad()
    def f(depth):
        if depth:
            return f(depth - 1)
        return x * 3.0
    y = f(3)
    assert not y.requires_grad and y.parents == ()
    assert is_grad_enabled()  # restored after the recursive calls
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()
    assert (x * 3.0).requires_grad


def test_nested_no_grad_blocks_restore_the_mode_of_their_own_entry():
    x = leaf([1.0])
    outer = no_grad()
    with outer:
        with outer:  # the same object entered twice, as a decorator does on recursion
            pass
        assert not is_grad_enabled() and not (x * 2.0).requires_grad
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with no_grad():
        with enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and y.parents[0] is x and not z.requires_grad and z.parents == ()


def test_detach_stops_the_gradient():
    x = leaf([2.0, -1.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.data is x.data  # shares storage
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad, x.data)  # not 2x: the detached factor is a constant


# ----- retain_graph / retain_grad --------------------------------------------------------------
def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (F.exp(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, np.exp(x.data) * (1 + x.data))


def test_second_backward_without_retain_graph_is_a_clear_error():
    x = leaf([1.0, 2.0])
    y = (F.tanh(x) * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_grad_on_intermediates():
    x = leaf([1.0, -2.0])
    h = x * 3.0
    h.retain_grad()
    u = F.tanh(h)  # not retained
    loss = (u * h).sum()
    loss.backward()
    hd = h.data
    np.testing.assert_allclose(h.grad, np.tanh(hd) + hd * (1 - np.tanh(hd) ** 2))
    np.testing.assert_allclose(x.grad, 3.0 * h.grad)
    assert u.grad is None


def test_retained_intermediate_gradient_accumulates_and_is_not_shared():
    x = leaf([0.5, -1.0])
    h = F.exp(x)
    h.retain_grad()
    loss = (h * h).sum()
    loss.backward(retain_graph=True)
    first = h.grad.copy()
    np.testing.assert_allclose(first, 2 * h.data)
    loss.backward()
    np.testing.assert_allclose(h.grad, 2 * first)
    np.testing.assert_allclose(x.grad, 2 * first * h.data)
    h.grad[:] = 0.0  # the retained array is its own, not an alias of a buffer still in use
    np.testing.assert_allclose(x.grad, 2 * first * h.data)


# ----- anomaly detection -----------------------------------------------------------------------
def test_detect_anomaly_names_the_forward_op():
    x = leaf([1.0, -1.0])
    with np.errstate(invalid="ignore"), detect_anomaly():
        with pytest.raises(FloatingPointError, match="'log'.*forward"):
            F.log(x)
    with np.errstate(invalid="ignore"):
        y = F.log(x)  # without anomaly mode the NaN passes through silently
    assert np.isnan(y.data[1])


def test_detect_anomaly_names_the_backward_op():
    # d/dx x^0.5 = 0.5 x^-0.5 is inf at 0; with a zero upstream gradient it becomes 0 * inf = NaN.
    for scale in (1.0, 0.0):
        x = leaf([0.0, 4.0])
        loss = (x ** 0.5 * scale).sum()
        with np.errstate(divide="ignore", invalid="ignore"), detect_anomaly():
            with pytest.raises(FloatingPointError, match="'pow'.*backward"):
                loss.backward()
    x = leaf([0.0, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        (x ** 0.5 * 0.0).sum().backward()
    assert np.isnan(x.grad[0])


def test_detect_anomaly_is_restored_after_an_error():
    x = leaf([-1.0])
    with np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError):
            with detect_anomaly():
                F.log(x)
        F.log(x)  # no longer raises


# ----- outputs without gradient ----------------------------------------------------------------
def test_unused_branches_and_split_pieces_get_no_gradient_and_do_not_crash():
    x = leaf(np.arange(6.0).reshape(2, 3) / 10)
    unused = F.exp(x) * 2.0  # a whole branch the loss never sees
    a, _b, c = x.split(1, axis=1)
    (a * c).sum().backward()
    np.testing.assert_allclose(x.grad, np.stack([x.data[:, 2], np.zeros(2), x.data[:, 0]], axis=1))
    assert unused.grad is None


def test_an_op_returning_none_for_an_input_is_accepted():
    """Like an LSTM's final cell state that no loss uses: the gradient arrives as None."""
    x = leaf([1.0, 2.0])
    @op()
    def stop(xd):
        return xd * 2.0, lambda g: (None,)
    blocked = stop(x)
    (blocked * 3.0 + x).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_multiple_outputs_where_one_gets_no_upstream_gradient():
    x = leaf(np.random.default_rng(1).standard_normal((2, 4)))

    def two_states(x):
        h, c = x.chunk(2, axis=1)
        return F.tanh(h), Tensor(np.zeros(2))  # the second output does not require grad
    assert gradcheck(two_states, x)


# ----- gradient shapes and dtypes --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape_a,shape_b", [((5, 3), (3,)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)),
                                             ((2, 3), ()), ((), (2, 3)), ((1,), (2, 1))])
def test_grad_has_the_tensor_shape_and_dtype_after_broadcasting(dtype, shape_a, shape_b):
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal(shape_a).astype(dtype), requires_grad=True)
    b = Tensor(rng.standard_normal(shape_b).astype(dtype), requires_grad=True)
    y = F.tanh(a * b + b)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(g)
    for t in (a, b):
        assert t.grad.shape == t.shape and t.grad.dtype == dtype
    # The bias-style gradient is the upstream sum over the broadcast axes.
    local = g * (1 - y.data.astype(np.float64) ** 2)
    expected_b = local * (np.broadcast_to(a.data, y.shape) + 1.0)
    extra = tuple(range(y.ndim - b.ndim))
    expected_b = expected_b.sum(axis=extra)
    expected_b = expected_b.sum(axis=tuple(i for i, n in enumerate(b.shape) if n == 1), keepdims=True)
    np.testing.assert_allclose(b.grad, expected_b.reshape(b.shape), rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_grad_is_a_fresh_array_not_an_alias_of_the_upstream_gradient():
    x = leaf([1.0, 2.0])
    g = np.array([3.0, 4.0])
    (x + 0.0).backward(g)
    x.grad += 1.0
    np.testing.assert_array_equal(g, [3.0, 4.0])
    y = leaf([1.0, 2.0])
    y.backward(g)  # a leaf root
    y.grad *= 0.0
    np.testing.assert_array_equal(g, [3.0, 4.0])


# ----- backward argument errors ----------------------------------------------------------------
def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"one-element outputs; got shape \(2,\)"):
        (x * 2.0).backward()


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(2,\), got \(3,\)"):
        (x * 2.0).backward(np.ones(3))
    assert x.grad is None


def test_backward_on_a_tensor_without_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(1)).backward()


def test_backward_runs_cleanly_under_strict_floating_point_settings():
    x = leaf(np.random.default_rng(2).standard_normal((3, 4)))
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = (F.log_softmax(x @ x.T, axis=-1) * F.sigmoid(x).sum()).mean()
        loss.backward()
    assert np.all(np.isfinite(x.grad))
