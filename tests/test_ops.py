"""Every op: forward values against plain NumPy and float64 gradients against central differences
(``gradcheck`` draws a random, non-uniform upstream gradient), including broadcasting cases and
hypothesis-generated shapes. Inputs stay away from kinks (relu/abs/clip at their corners, ties in
max/maximum/minimum) except in the tests that are about those points."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_rnn import Tensor, manual_seed
from tinygrad_rnn import gradcheck as _gradcheck
from tinygrad_rnn import functional as F

FAST = settings(max_examples=25, deadline=None)


def gradcheck(fn, inputs):
    """The library gradcheck with tolerances tighter than its PyTorch-like defaults: float64
    central differences with eps = 1e-6 are accurate to ~1e-9 here, so a gradient that is off
    by 0.1 % must fail."""
    return _gradcheck(fn, inputs, atol=1e-7, rtol=1e-6)


# ----- inputs ----------------------------------------------------------------------------------
def randn(shape, seed, requires_grad=True):
    """float64 N(0, 1) leaf."""
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


def positive(shape, seed, low=0.5, high=2.0):
    return Tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


def off_zero(shape, seed, margin=0.1):
    """Magnitudes in [margin, 2] with random signs: no relu/abs kink within finite-difference reach."""
    rng = np.random.default_rng(seed)
    data = rng.uniform(margin, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return Tensor(data, requires_grad=True)


def distinct(shape, seed):
    """A random permutation of well-separated values: no ties anywhere (max is smooth)."""
    n = int(np.prod(shape))
    values = np.linspace(-2.0, 2.0, n) if n > 1 else np.array([0.3])
    return Tensor(np.random.default_rng(seed).permutation(values).reshape(shape), requires_grad=True)


# ----- binary arithmetic -------------------------------------------------------------------------
BINARY = {
    "add": (F.add, np.add), "sub": (F.sub, np.subtract), "mul": (F.mul, np.multiply),
    "div": (F.div, np.divide), "maximum": (F.maximum, np.maximum), "minimum": (F.minimum, np.minimum),
}
BROADCAST_PAIRS = [
    ((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((5, 3), (3,)), ((4,), (2, 3, 4)),
    ((2, 1, 4), (3, 1)), ((), (2, 3)), ((2, 3), ()), ((1,), (3, 2)), ((2, 1), (1,)),
]


def binary_inputs(name, shape_a, shape_b, seed):
    a = randn(shape_a, seed)
    b = positive(shape_b, seed + 1) if name == "div" else randn(shape_b, seed + 1)
    if name in ("maximum", "minimum"):
        # Keep |a - b| >= 0.1 after broadcasting so that no element sits at a tie.
        a_b, b_b = np.broadcast_arrays(a.data, b.data)
        if np.min(np.abs(a_b - b_b)) < 0.1:
            b = Tensor(b.data + 5.0, requires_grad=True)
    return a, b


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_PAIRS)
def test_binary_ops_broadcast_values_and_gradients(name, shape_a, shape_b):
    op, reference = BINARY[name]
    a, b = binary_inputs(name, shape_a, shape_b, seed=len(shape_a) * 10 + len(shape_b))
    y = op(a, b)
    np.testing.assert_array_equal(y.data, reference(a.data, b.data))
    assert gradcheck(op, (a, b))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_binary_ops_with_scalars_and_arrays_in_both_orders(name):
    op, reference = BINARY[name]
    x = positive((3, 4), 0)
    array = np.random.default_rng(1).uniform(0.5, 2.0, (4,))
    for other in (2.5, np.float64(-1.5), array):
        np.testing.assert_allclose(op(x, other).data, reference(x.data, other))
        np.testing.assert_allclose(op(other, x).data, reference(other, x.data))
        assert gradcheck(lambda t: op(t, other), x)
        assert gradcheck(lambda t: op(other, t), x)


def test_python_operators_map_to_the_ops():
    a, b = positive((2, 3), 0), positive((2, 3), 1)
    ad, bd = a.data, b.data
    np.testing.assert_allclose((a + b).data, ad + bd)
    np.testing.assert_allclose((a - b).data, ad - bd)
    np.testing.assert_allclose((a * b).data, ad * bd)
    np.testing.assert_allclose((a / b).data, ad / bd)
    np.testing.assert_allclose((-a).data, -ad)
    np.testing.assert_allclose((a ** 3).data, ad ** 3)
    np.testing.assert_allclose((2.0 - a).data, 2.0 - ad)
    np.testing.assert_allclose((2.0 / a).data, 2.0 / ad)
    np.testing.assert_allclose((a @ b.T).data, ad @ bd.T)
    np.testing.assert_allclose((ad @ b.T).data, ad @ bd.T)
    assert gradcheck(lambda x, y: (2.0 - x) * (3.0 / y) + x @ y.T @ x - (-y) ** 2, (a, b))


def test_neg_gradient():
    x = randn((3, 2), 0)
    np.testing.assert_array_equal(F.neg(x).data, -x.data)
    assert gradcheck(F.neg, x)


@pytest.mark.parametrize("p", [2, 3, -1, 0.5, 1.5, -2.5, np.float64(2.0)])
def test_pow_scalar_exponent(p):
    x = positive((3, 4), 2)
    np.testing.assert_allclose(F.pow(x, p).data, x.data ** float(p))
    assert gradcheck(lambda t: t ** p, x)


def test_pow_zero_exponent_has_zero_gradient_even_at_zero():
    x = Tensor(np.array([0.0, -1.5, 2.0]), requires_grad=True)
    y = x ** 0
    np.testing.assert_array_equal(y.data, np.ones(3))
    with np.errstate(all="raise"):
        y.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, np.zeros(3))


def test_pow_integer_exponent_of_negative_base():
    x = off_zero((5,), 3)
    np.testing.assert_allclose((x ** 3).data, x.data ** 3)
    assert gradcheck(lambda t: t ** 3, x)


# ----- matmul ------------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((4,), (4,)),              # inner product
    ((4,), (4, 3)),            # vector @ matrix
    ((3, 4), (4,)),            # matrix @ vector
    ((3, 4), (4, 2)),
    ((2, 3, 4), (2, 4, 5)),    # batched
    ((2, 1, 3, 4), (5, 4, 2)),  # broadcast batch dims
    ((3, 4), (2, 4, 5)),       # matrix against a batch
    ((2, 3, 4), (4, 5)),
    ((4,), (2, 4, 3)),         # vector against a batch
    ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_SHAPES)
def test_matmul_shapes_values_and_gradients(shape_a, shape_b):
    a, b = randn(shape_a, 0), randn(shape_b, 1)
    y = F.matmul(a, b)
    np.testing.assert_allclose(y.data, np.matmul(a.data, b.data))
    assert gradcheck(F.matmul, (a, b))


def test_matmul_gradient_matches_hand_formula():
    """dL/dA = G Bᵀ and dL/dB = Aᵀ G for L = Σ G ⊙ (A B)."""
    a, b = randn((3, 4), 0), randn((4, 2), 1)
    g = np.random.default_rng(2).standard_normal((3, 2))
    (a @ b).backward(g)
    np.testing.assert_allclose(a.grad, g @ b.data.T)
    np.testing.assert_allclose(b.grad, a.data.T @ g)


def test_shared_weight_in_many_matmuls_like_a_recurrence():
    """One weight used at every step (and elsewhere): every piece of its gradient is summed."""
    xs, w, h0 = randn((4, 2, 3), 0), randn((3, 3), 1), randn((2, 3), 2)

    def unroll(xs, w, h):
        for t in range(xs.shape[0]):
            h = F.tanh(xs[t] @ w + h @ w)
        return h + w.sum() + w[0]          # dense and sliced gradients reach w too
    assert gradcheck(unroll, (xs, w, h0))


@pytest.mark.parametrize("extra", ["none", "dense_first", "dense_last"])
def test_recurrent_weight_pieces_sum_in_any_arrival_order(extra):
    """W gets one aᵀg piece per step; a dense gradient may reach it before or after them."""
    xs, w, h0 = randn((5, 2, 3), 0), randn((3, 3), 1), randn((2, 3), 2)

    def unroll(xs, w, h):
        if extra == "dense_last":
            h = h * F.tanh(w).sum()       # created first, so reached last in backward
        for t in range(xs.shape[0]):
            h = F.tanh(xs[t] @ w + h @ w)
        return h + w.mean() if extra == "dense_first" else h
    assert gradcheck(unroll, (xs, w, h0))


def test_matmul_through_a_transposed_non_leaf_weight():
    x, w = randn((3, 4), 0), randn((5, 4), 1)
    assert gradcheck(lambda x, w: F.tanh(x @ w.T) @ (w * 2.0), (x, w))


@pytest.mark.parametrize("shape_c", [(3, 2), (2,), (1, 2), (3, 1), ()])
def test_addmm_values_and_gradients_with_broadcast_c(shape_c):
    c, a, b = randn(shape_c, 0), randn((3, 4), 1), randn((4, 2), 2)
    y = F.addmm(c, a, b)
    np.testing.assert_allclose(y.data, c.data + a.data @ b.data)
    assert y.op == "addmm" and y.dtype == np.float64
    assert gradcheck(F.addmm, (c, a, b))


def test_addmm_shared_weight_over_steps_and_constant_operands():
    """The recurrent use: one weight in every step's addmm; also c or a that need no grad."""
    xs, w, h0 = randn((4, 2, 3), 0), randn((3, 3), 1), randn((2, 3), 2)

    def unroll(xs, w, h):
        for t in range(xs.shape[0]):
            h = F.tanh(F.addmm(xs[t], h, w))
        return h
    assert gradcheck(unroll, (xs, w, h0))
    fixed = randn((2, 3), 3, requires_grad=False)
    assert gradcheck(lambda a, b: F.addmm(fixed, a, b), (randn((2, 4), 4), randn((4, 3), 5)))
    assert gradcheck(lambda c, b: F.addmm(c, fixed, b), (randn((4,), 6), randn((3, 4), 7)))


def test_addmm_keeps_float32_and_lifts_a_python_scalar_c():
    a = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones((3, 4), dtype=np.float32))
    y = F.addmm(0.5, a, b)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, np.full((2, 4), 3.5))


@pytest.mark.parametrize("shapes, words", [
    (((3,), (3, 4), (4, 2)), "does not broadcast to the product.s shape"),
    (((5, 2), (3, 4), (4, 2)), r"c of shape \(5, 2\)"),
    (((2,), (3, 4), (5, 2)), "inner dimensions 4 and 5 differ"),
    (((2,), (2, 3, 4), (4, 2)), "must be 2-D"),
])
def test_addmm_rejects_bad_shapes(shapes, words):
    c, a, b = (randn(s, i) for i, s in enumerate(shapes))
    with pytest.raises(ValueError, match=words):
        F.addmm(c, a, b)


def test_addmm_follows_the_dtype_rules_of_c_plus_a_matmul_b():
    """Integer a, b take a float c's dtype; integers of different widths promote, never wrap."""
    ints = Tensor(np.ones((1, 1), dtype=np.int32))
    big = Tensor(np.array([2**40]))
    assert F.addmm(big, ints, ints).data.tolist() == (big + ints @ ints).data.tolist() == [[2**40 + 1]]
    c = Tensor(np.ones(1, dtype=np.float32), requires_grad=True)
    y = F.addmm(c, ints, ints)
    assert y.dtype == (c + ints @ ints).dtype == np.float32
    y.sum().backward()
    assert c.grad.dtype == np.float32 and c.grad.tolist() == [1.0]


def test_an_int_operand_too_large_for_any_float_is_a_clear_error():
    x = Tensor(np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError, match="mul: the operand int is too large for float32"):
        x * 10**400
    np.testing.assert_allclose((x * 2**70).data, np.full(2, 2.0**70, dtype=np.float32))


def test_addmm_rejects_mixed_float_dtypes():
    a = Tensor(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.addmm(Tensor(np.ones(4)), a, Tensor(np.ones((3, 4), dtype=np.float32)))


@FAST
@given(
    batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2),
    n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3),
    vector=st.sampled_from(["none", "left", "right", "both"]), seed=st.integers(0, 2**16),
)
def test_matmul_hypothesis(batch, n, k, m, vector, seed):
    shape_a = (k,) if vector in ("left", "both") else batch.input_shapes[0] + (n, k)
    shape_b = (k,) if vector in ("right", "both") else batch.input_shapes[1] + (k, m)
    a, b = randn(shape_a, seed), randn(shape_b, seed + 1)
    np.testing.assert_allclose(F.matmul(a, b).data, np.matmul(a.data, b.data))
    assert gradcheck(F.matmul, (a, b))


# ----- unary elementwise -------------------------------------------------------------------------
UNARY = {
    "exp": (F.exp, np.exp, randn),
    "log": (F.log, np.log, positive),
    "tanh": (F.tanh, np.tanh, randn),
    "sigmoid": (F.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), randn),
    "relu": (F.relu, lambda x: np.where(x > 0, x, 0.0), off_zero),
    "abs": (F.abs, np.abs, off_zero),
}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 2)])
def test_unary_ops_values_and_gradients(name, shape):
    op, reference, make = UNARY[name]
    x = make(shape, 7)
    np.testing.assert_allclose(op(x).data, reference(x.data), rtol=1e-12)
    assert gradcheck(op, x)


def test_unary_ops_are_methods_too():
    x = positive((2, 3), 0)
    for name in UNARY:
        np.testing.assert_array_equal(getattr(x, name)().data, UNARY[name][0](x).data)


def test_relu_and_abs_gradient_at_zero_is_zero():
    """The subgradient convention (like PyTorch): 0 at the kink."""
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])
    x.grad = None
    F.abs(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


def test_clip_values_gradients_and_boundaries():
    x = Tensor(np.array([-2.0, -0.7, 0.2, 0.9, 1.7]), requires_grad=True)
    for lo, hi in [(-1.0, 1.0), (None, 0.5), (0.0, None)]:
        np.testing.assert_array_equal(F.clip(x, lo, hi).data, np.clip(x.data, lo, hi))
        assert gradcheck(lambda t: F.clip(t, lo, hi), x)
    # The documented boundary rule: the gradient passes where lo <= x <= hi, inclusive.
    edge = Tensor(np.array([-1.0, 0.0, 1.0, 1.5]), requires_grad=True)
    F.clip(edge, -1.0, 1.0).backward(np.ones(4))
    np.testing.assert_array_equal(edge.grad, [1.0, 1.0, 1.0, 0.0])


def test_clip_rejects_bad_bounds():
    x = randn((3,), 0)
    with pytest.raises(ValueError, match="clip"):
        F.clip(x)
    with pytest.raises(ValueError, match="lo=2.0, hi=1.0"):
        F.clip(x, 2.0, 1.0)


def test_maximum_minimum_split_the_gradient_evenly_on_ties():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 2.0, 1.0]), requires_grad=True)
    F.maximum(a, b).backward(np.array([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(a.grad, [0.0, 10.0, 30.0])
    np.testing.assert_array_equal(b.grad, [10.0, 10.0, 0.0])
    a.grad = b.grad = None
    F.minimum(a, b).backward(np.array([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(a.grad, [10.0, 10.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 10.0, 30.0])


def test_maximum_with_a_scalar_is_a_leaky_clamp():
    x = off_zero((4, 3), 1)
    np.testing.assert_array_equal(F.maximum(x, 0.0).data, np.maximum(x.data, 0.0))
    assert gradcheck(lambda t: F.maximum(0.0, t), x)


def test_where_values_gradients_and_broadcasting():
    rng = np.random.default_rng(0)
    cond = rng.random((3, 4)) > 0.5
    a, b = randn((3, 4), 1), randn((4,), 2)
    np.testing.assert_array_equal(F.where(cond, a, b).data, np.where(cond, a.data, b.data))
    assert gradcheck(lambda a, b: F.where(cond, a, b), (a, b))
    assert gradcheck(lambda a: F.where(Tensor(cond), a, 0.0), a)
    g = rng.standard_normal((3, 4))
    F.where(cond, a, b).backward(g)
    np.testing.assert_array_equal(a.grad, np.where(cond, g, 0.0))
    np.testing.assert_allclose(b.grad, np.where(cond, 0.0, g).sum(axis=0))


@FAST
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    name=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16),
)
def test_binary_elementwise_hypothesis(shapes, name, seed):
    op, reference = BINARY[name]
    a, b = binary_inputs(name, *shapes.input_shapes, seed)
    y = op(a, b)
    assert y.shape == shapes.result_shape
    np.testing.assert_array_equal(y.data, reference(a.data, b.data))
    assert gradcheck(op, (a, b))
    assert a.grad is None and b.grad is None  # gradcheck leaves .grad as it found it


@FAST
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), name=st.sampled_from(sorted(UNARY)),
       seed=st.integers(0, 2**16))
def test_unary_elementwise_hypothesis(shape, name, seed):
    op, reference, make = UNARY[name]
    x = make(shape, seed)
    np.testing.assert_allclose(op(x).data, reference(x.data), rtol=1e-12)
    assert gradcheck(op, x)


# ----- reductions --------------------------------------------------------------------------------
REDUCTIONS = {"sum": (F.sum, np.sum), "mean": (F.mean, np.mean), "max": (F.max, np.max)}
AXES = [None, 0, 1, -1, (0, 2), (2, 0), (0, 1, 2), ()]


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_values_and_gradients(name, axis, keepdims):
    op, reference = REDUCTIONS[name]
    x = distinct((2, 3, 4), 3)
    y = op(x, axis=axis, keepdims=keepdims)
    expected = reference(x.data, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected)
    assert gradcheck(lambda t: op(t, axis=axis, keepdims=keepdims), x)


def test_reductions_as_methods_and_of_scalars():
    x = distinct((3, 2), 0)
    assert x.sum().shape == () and x.mean(axis=0).shape == (2,) and x.max(1, True).shape == (3, 1)
    s = Tensor(np.array(1.5), requires_grad=True)
    for name in REDUCTIONS:
        assert gradcheck(lambda t: getattr(t, name)(), s)


def test_max_gradient_is_split_evenly_between_ties():
    """Documented rule: each of the k tied maxima of a slice gets g / k."""
    x = Tensor(np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0], [5.0, 1.0, 0.0, 4.0]]),
               requires_grad=True)
    g = np.array([6.0, 9.0, 7.0])
    x.max(axis=1).backward(g)
    np.testing.assert_array_equal(x.grad, [[0, 3, 3, 0], [3, 3, 3, 0], [7, 0, 0, 0]])
    x.grad = None
    x.max().backward()  # the single global maximum
    np.testing.assert_array_equal(x.grad, np.where(x.data == 5.0, 1.0, 0.0))
    y = Tensor(np.full((2, 2), 4.0), requires_grad=True)
    y.max().backward()
    np.testing.assert_array_equal(y.grad, np.full((2, 2), 0.25))


@FAST
@given(data=st.data(), name=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans(),
       seed=st.integers(0, 2**16))
def test_reductions_hypothesis(data, name, keepdims, seed):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               hnp.valid_tuple_axes(len(shape))))
    op, reference = REDUCTIONS[name]
    x = distinct(shape, seed)
    np.testing.assert_allclose(op(x, axis=axis, keepdims=keepdims).data,
                               reference(x.data, axis=axis, keepdims=keepdims))
    assert gradcheck(lambda t: op(t, axis=axis, keepdims=keepdims), x)


def test_reduction_axis_errors():
    x = randn((2, 3), 0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="repeated axis"):
        x.mean(axis=(1, -1))
    with pytest.raises(TypeError, match="axis"):
        x.max(axis=1.0)
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty tensor of shape \(0, 3\)"):
        Tensor(np.zeros((0, 3))).max()


# ----- shape ops ---------------------------------------------------------------------------------
def test_reshape_forms_and_gradient():
    x = randn((2, 3, 4), 0)
    np.testing.assert_array_equal(x.reshape(6, 4).data, x.data.reshape(6, 4))
    np.testing.assert_array_equal(x.reshape((4, -1)).data, x.data.reshape(4, -1))
    np.testing.assert_array_equal(F.reshape(x, 24).data, x.data.reshape(24))
    assert gradcheck(lambda t: t.reshape(4, 6) @ t.reshape(6, 4), x)


def test_permute_transpose_and_T():
    x = randn((2, 3, 4), 0)
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, x.data.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.permute((1, -1, 0)).data, x.data.transpose(1, 2, 0))
    np.testing.assert_array_equal(x.transpose(0, 2).data, np.swapaxes(x.data, 0, 2))
    np.testing.assert_array_equal(x.transpose().data, np.swapaxes(x.data, -1, -2))
    np.testing.assert_array_equal(x.T.data, x.data.T)
    rng = np.random.default_rng(1)
    w1, w2 = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 3, 2))  # weight each layout
    assert gradcheck(lambda t: t.permute(2, 0, 1) * w1, x)
    assert gradcheck(lambda t: t.transpose(0, 2) * w2, x)
    assert gradcheck(lambda t: t.T * w2 + t.transpose(1, 2).permute(1, 2, 0) * w2, x)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0, 1)
    with pytest.raises(ValueError, match="transpose"):
        randn((3,), 0).transpose()


def test_flatten_squeeze_unsqueeze():
    x = randn((2, 1, 3, 1), 0)
    assert x.flatten().shape == (6,)
    assert x.flatten(1).shape == (2, 3)
    assert x.flatten(0, 2).shape == (6, 1)
    assert x.squeeze().shape == (2, 3)
    assert x.squeeze(1).shape == (2, 3, 1)
    assert x.squeeze((1, 3)).shape == (2, 3)
    assert x.unsqueeze(0).shape == (1, 2, 1, 3, 1)
    assert x.unsqueeze(-1).shape == (2, 1, 3, 1, 1)
    assert x.unsqueeze(4).shape == (2, 1, 3, 1, 1)
    w = np.random.default_rng(1).standard_normal((2, 3))
    assert gradcheck(lambda t: t.flatten(1).reshape(2, 3) * w + t.squeeze() + t.unsqueeze(0).squeeze(), x)
    with pytest.raises(ValueError, match=r"squeeze: axis 0 of shape \(2, 1, 3, 1\) has size 2"):
        x.squeeze(0)


# ----- indexing ----------------------------------------------------------------------------------
INDICES = [
    1, -1, (1, 2), (-1, slice(None), 0), slice(1, 3), (slice(None), slice(None, None, 2)),
    slice(None, None, -1), (None, 1), (Ellipsis, 1), (1, Ellipsis, None), (slice(2, 0), 0),
    [0, 0, 2], np.array([2, 2, 2, 0]), (slice(None), [1, 1, 0]), (np.array([0, 0]), np.array([1, 1])),
    np.array([True, False, True]), np.random.default_rng(5).random((3, 4, 2)) > 0.4,
]


@pytest.mark.parametrize("index", INDICES, ids=[repr(i)[:30] for i in INDICES])
def test_getitem_values_and_gradients(index):
    x = randn((3, 4, 2), 0)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    assert gradcheck(lambda t: t[index], x)


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 2, 0, 0, 3])].backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [8.0, 0.0, 2.0, 5.0])


def test_getitem_with_tensor_indices_and_boolean_mask_gradient():
    x = randn((3, 4), 0)
    mask = x.data > 0
    x[Tensor(mask)].backward(np.arange(1.0, mask.sum() + 1))
    expected = np.zeros((3, 4))
    expected[mask] = np.arange(1.0, mask.sum() + 1)
    np.testing.assert_array_equal(x.grad, expected)
    assert gradcheck(lambda t: t[Tensor(np.array([2, 0, 2]))], x)


def test_many_slices_of_one_tensor_tiling_overlapping_and_repeating():
    """Pieces that tile the tensor, overlap, repeat, or leave a gap all sum correctly."""
    x = randn((4, 3), 0)
    w = np.random.default_rng(1).standard_normal(4)
    assert gradcheck(lambda t: sum(float(w[i]) * t[i] for i in range(4)), x)          # exact tiling
    assert gradcheck(lambda t: t[0:2] * t[1:3] + t[2:4], x)                            # overlapping
    assert gradcheck(lambda t: t[1] * 2.0 + t[1] * t[3] + t[:, 0].sum(), x)            # repeats, gap
    assert gradcheck(lambda t: (t[:, 0:1] * t[:, 1:3]).sum(axis=1) + t.sum(axis=1) + t[0].sum(), x)


def test_getitem_rejects_float_indices():
    x = randn((3,), 0)
    with pytest.raises(TypeError, match="getitem"):
        x[1.0]
    with pytest.raises(TypeError, match="getitem"):
        x[np.array([0.5])]


# ----- joining and splitting ---------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_and_concatenate(axis):
    shapes = [(2, 3), (2, 1), (2, 2)] if axis != 0 else [(2, 3), (1, 3), (3, 3)]
    parts = [randn(s, i) for i, s in enumerate(shapes)]
    y = F.cat(parts, axis=axis)
    np.testing.assert_array_equal(y.data, np.concatenate([p.data for p in parts], axis=axis))
    np.testing.assert_array_equal(F.concatenate(parts, axis).data, y.data)
    assert gradcheck(lambda *ps: F.cat(list(ps), axis=axis), parts)


def test_cat_with_a_constant_part():
    a, c = randn((2, 3), 0), Tensor(np.ones((2, 3)))
    assert gradcheck(lambda a: F.cat([c, a, c], axis=1), a)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis):
    parts = [randn((2, 3), i) for i in range(3)]
    y = F.stack(parts, axis=axis)
    np.testing.assert_array_equal(y.data, np.stack([p.data for p in parts], axis=axis))
    assert gradcheck(lambda *ps: F.stack(list(ps), axis=axis), parts)


def test_split_and_chunk_sizes_follow_pytorch():
    x = randn((7, 2), 0)
    assert [p.shape[0] for p in x.split(3)] == [3, 3, 1]
    assert [p.shape[0] for p in x.split([2, 0, 5])] == [2, 0, 5]
    assert [p.shape[0] for p in x.chunk(3)] == [3, 3, 1]
    assert [p.shape[0] for p in F.chunk(x, 2)] == [4, 3]
    assert [p.shape[1] for p in x.chunk(2, axis=1)] == [1, 1]
    pieces = x.split([2, 5])
    np.testing.assert_array_equal(pieces[1].data, x.data[2:])
    with pytest.raises(ValueError, match="sum to 7"):
        x.split([3, 3])
    with pytest.raises(ValueError, match="chunks"):
        x.chunk(0)


def test_split_chunk_gradients_all_and_partially_used():
    x = randn((3, 8), 0)
    w = np.random.default_rng(1).standard_normal((3, 2))
    assert gradcheck(lambda t: [p * float(i + 1) for i, p in enumerate(t.split(2, axis=1))], x)
    assert gradcheck(lambda t: t.chunk(4, axis=1)[1] * w, x)           # three pieces unused
    assert gradcheck(lambda t: F.tanh(t.split([3, 5], axis=1)[1]), x)  # one piece unused
    # LSTM-style gate split: four pieces with different nonlinearities.
    assert gradcheck(lambda t: (lambda i, f, g, o: F.sigmoid(i) * F.tanh(g) + F.sigmoid(f) * o)
                     (*t.chunk(4, axis=1)), x)
    # An unused piece simply gets zero gradient.
    x.zero_grad()
    a, _b = x.split([5, 3], axis=1)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad, np.concatenate([np.ones((3, 5)), np.zeros((3, 3))], axis=1))


# ----- numerics along an axis --------------------------------------------------------------------
def ref_logsumexp(x, axis):
    return np.log(np.sum(np.exp(x), axis=axis))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_logsumexp_softmax_log_softmax(axis):
    x = randn((3, 4), 0)
    lse = ref_logsumexp(x.data, axis)
    np.testing.assert_allclose(F.logsumexp(x, axis=axis).data, lse)
    np.testing.assert_allclose(x.logsumexp(axis, keepdims=True).data, np.expand_dims(lse, axis))
    np.testing.assert_allclose(F.softmax(x, axis).data, np.exp(x.data) / np.exp(x.data).sum(axis, keepdims=True))
    np.testing.assert_allclose(x.log_softmax(axis).data, x.data - np.expand_dims(lse, axis))
    assert gradcheck(lambda t: F.logsumexp(t, axis=axis), x)
    assert gradcheck(lambda t: F.logsumexp(t, axis=axis, keepdims=True), x)
    assert gradcheck(lambda t: F.softmax(t, axis=axis), x)
    assert gradcheck(lambda t: F.log_softmax(t, axis=axis), x)


# ----- dropout -----------------------------------------------------------------------------------
def test_dropout_gradient_equals_mask_over_keep_probability():
    p = 0.3
    x = randn((40, 50), 0)
    manual_seed(11)
    y = F.dropout(x, p)
    kept = y.data != 0  # x is never exactly 0 here, so a zero output means a dropped unit
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.data, np.where(kept, x.data / (1 - p), 0.0))
    g = np.random.default_rng(3).standard_normal(x.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad, g * kept / (1 - p))

    def fixed_mask(t):
        manual_seed(11)  # the same mask for every finite-difference evaluation
        return F.dropout(t, p)
    assert gradcheck(fixed_mask, randn((4, 5), 1))


def test_dropout_eval_mode_and_extreme_probabilities():
    x = randn((3, 4), 0)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.data, np.zeros((3, 4)))
    y.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4)))
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="dropout: p must be a probability"):
            F.dropout(x, bad)


# ----- embedding ---------------------------------------------------------------------------------
def test_embedding_lookup_accumulation_and_padding_idx():
    weight = randn((5, 3), 0)
    idx = np.array([[1, 0, 1], [4, 1, 0]])
    y = F.embedding(weight, idx, padding_idx=0)
    np.testing.assert_array_equal(y.data, weight.data[idx])
    g = np.random.default_rng(1).standard_normal((2, 3, 3))
    y.backward(g)
    expected = np.zeros((5, 3))
    for position, row in np.ndenumerate(idx):
        if row != 0:
            expected[row] += g[position]
    np.testing.assert_allclose(weight.grad, expected)
    assert np.all(weight.grad[0] == 0) and np.all(weight.grad[2] == 0)
    assert np.abs(weight.grad[1]).sum() > 0  # index 1 appears three times and accumulates


def test_embedding_gradcheck_and_errors():
    weight = randn((6, 2), 0)
    idx = np.array([3, 3, 5, 0, 3])
    assert gradcheck(lambda w: F.embedding(w, idx), weight)
    # With padding_idx, every row but the padding row still has its true gradient.
    g = np.random.default_rng(1).standard_normal((5, 2))
    F.embedding(weight, Tensor(idx), padding_idx=3).backward(g)
    np.testing.assert_allclose(weight.grad[[0, 5]], g[[3, 2]])
    np.testing.assert_array_equal(weight.grad[[1, 2, 3, 4]], np.zeros((4, 2)))
    with pytest.raises(ValueError, match="index 6 is out of range for 6 embeddings"):
        F.embedding(weight, np.array([1, 6]))
    with pytest.raises(TypeError, match="embedding: indices must be integers"):
        F.embedding(weight, np.array([1.0]))


# ----- astype ------------------------------------------------------------------------------------
def test_astype_between_floats_keeps_gradients_in_each_dtype():
    x32 = Tensor(np.random.default_rng(0).standard_normal((3,)).astype(np.float32), requires_grad=True)
    y = x32.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x32.grad.dtype == np.float32
    np.testing.assert_allclose(x32.grad, 2 * x32.data, rtol=1e-6)
    x = randn((2, 3), 1)
    assert gradcheck(lambda t: t.astype(np.float32).astype(np.float64) * 0.0 + t.astype("float64") ** 2, x)
    as_int = x.astype(np.int64)
    assert as_int.dtype == np.int64 and not as_int.requires_grad
