"""Property-based tests of the ops (hypothesis): random shapes with broadcasting, random axes and
keepdims, basic slicing and fancy indexing, in float32 and float64. Values must equal NumPy's in
the same dtype; gradients (float64) must equal central differences with random upstream
gradients (``tinygrad_rnn.testing.check_gradients``).

Run count: the "default" hypothesis profile (tests/conftest.py) tries a fixed, small set of
examples; ``TINYGRAD_RNN_HYPOTHESIS_PROFILE=nightly`` tries hundreds of random ones.
"""
import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_rnn import Tensor
from tinygrad_rnn import functional as F
from tinygrad_rnn.testing import assert_close, check_gradients

DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2**16)


def values(shape, seed, low=-2.0, high=2.0, away_from_zero=False):
    v = np.random.default_rng(seed).uniform(low, high, size=shape)
    if away_from_zero:  # kinks (abs, relu) and poles (div) stay out of the finite differences
        v = np.where(np.abs(v) < 0.2, np.sign(v + 1e-12) * 0.2 + v, v)
    return v


def same_dtype(result, dtype):
    assert result.dtype == np.dtype(dtype), (result.dtype, dtype)


# ----- binary elementwise ops with broadcasting ---------------------------------------------------
BINARY = {
    "add": (F.add, np.add), "sub": (F.sub, np.subtract), "mul": (F.mul, np.multiply),
    "div": (F.div, np.divide), "maximum": (F.maximum, np.maximum), "minimum": (F.minimum, np.minimum),
}


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       name=st.sampled_from(sorted(BINARY)), dtype=DTYPES, seed=SEEDS)
def test_binary_ops_broadcast_like_numpy(shapes, name, dtype, seed):
    ours, theirs = BINARY[name]
    shape_a, shape_b = shapes.input_shapes
    a = values(shape_a, seed).astype(dtype)
    b = values(shape_b, seed + 1, away_from_zero=name == "div").astype(dtype)
    y = ours(Tensor(a), Tensor(b))
    same_dtype(y, dtype)
    assert y.shape == shapes.result_shape
    assert_close(y, theirs(a, b).astype(dtype))
    # gradients in float64; ties of maximum/minimum (a kink) have probability 0 here
    check_gradients(ours, [a.astype(np.float64), b.astype(np.float64)], seed=seed)


# ----- unary elementwise ops ---------------------------------------------------------------------
UNARY = {
    "tanh": (F.tanh, np.tanh, {}), "sigmoid": (F.sigmoid, lambda v: 1 / (1 + np.exp(-v)), {}),
    "exp": (F.exp, np.exp, {}), "log": (F.log, np.log, {"low": 0.1, "high": 3.0}),
    "relu": (F.relu, lambda v: np.maximum(v, 0), {"away_from_zero": True}),
    "abs": (F.abs, np.abs, {"away_from_zero": True}), "neg": (F.neg, np.negative, {}),
}


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), name=st.sampled_from(sorted(UNARY)),
       dtype=DTYPES, seed=SEEDS)
def test_unary_ops_like_numpy(shape, name, dtype, seed):
    ours, theirs, domain = UNARY[name]
    x = values(shape, seed, **domain).astype(dtype)
    y = ours(Tensor(x))
    same_dtype(y, dtype)
    assert_close(y, theirs(x.astype(np.float64)).astype(dtype))
    check_gradients(ours, [x.astype(np.float64)], seed=seed)


# ----- reductions over random axes ---------------------------------------------------------------
def _logsumexp(v, axis, keepdims):
    m = np.max(v, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


REDUCTIONS = {
    "sum": (F.sum, np.sum), "mean": (F.mean, np.mean), "max": (F.max, np.max),
    "logsumexp": (F.logsumexp, _logsumexp),
}


@st.composite
def shape_and_axis(draw, allow_none=True):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    ndim = len(shape)
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
    options = [single, several] + ([st.none()] if allow_none else [])
    return shape, draw(st.one_of(*options))


@given(case=shape_and_axis(), name=st.sampled_from(sorted(REDUCTIONS)), keepdims=st.booleans(),
       dtype=DTYPES, seed=SEEDS)
def test_reductions_over_random_axes_and_keepdims_like_numpy(case, name, keepdims, dtype, seed):
    shape, axis = case
    ours, theirs = REDUCTIONS[name]
    if name == "logsumexp":  # one int axis (its documented signature)
        axis = axis[0] if isinstance(axis, tuple) else (-1 if axis is None else axis)
    x = values(shape, seed).astype(dtype)
    y = ours(Tensor(x), axis=axis, keepdims=keepdims)
    same_dtype(y, dtype)
    expected = np.asarray(theirs(x.astype(np.float64), axis=axis, keepdims=keepdims))
    assert y.shape == expected.shape
    assert_close(y, expected.astype(dtype))
    check_gradients(lambda t: ours(t, axis=axis, keepdims=keepdims), [x.astype(np.float64)], seed=seed)


@given(case=shape_and_axis(allow_none=False), name=st.sampled_from(["softmax", "log_softmax"]),
       dtype=DTYPES, seed=SEEDS)
def test_softmax_and_log_softmax_over_a_random_axis(case, name, dtype, seed):
    shape, axis = case
    if isinstance(axis, tuple):
        axis = axis[0]
    x = values(shape, seed, -4, 4).astype(dtype)
    y = getattr(F, name)(Tensor(x), axis=axis)
    same_dtype(y, dtype)
    log_p = x.astype(np.float64) - _logsumexp(x.astype(np.float64), axis, True)
    assert_close(y, (log_p if name == "log_softmax" else np.exp(log_p)).astype(dtype))
    check_gradients(lambda t: getattr(F, name)(t, axis=axis), [x.astype(np.float64)], seed=seed)


# ----- indexing ----------------------------------------------------------------------------------
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       dtype=DTYPES, seed=SEEDS)
def test_basic_slicing_like_numpy(data, shape, dtype, seed):
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    x = values(shape, seed).astype(dtype)
    y = Tensor(x)[index]
    same_dtype(y, dtype)
    assert_close(y, np.asarray(x[index]))
    assume(np.asarray(x[index]).size > 0)  # an empty slice has nothing to differentiate
    check_gradients(lambda t: t[index], [x.astype(np.float64)], seed=seed)


@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       dtype=DTYPES, seed=SEEDS)
def test_fancy_indexing_like_numpy_with_repeats_accumulating(data, shape, dtype, seed):
    """Integer arrays (negative and repeated entries) on one or two axes, mixed with slices."""
    ndim = len(shape)
    count = data.draw(st.integers(1, min(2, ndim)))
    axes = sorted(data.draw(st.lists(st.integers(0, ndim - 1), min_size=count, max_size=count, unique=True)))
    length = data.draw(st.integers(1, 4))
    index = []
    for axis in range(ndim):
        if axis in axes:
            entries = st.integers(-shape[axis], shape[axis] - 1)
            index.append(np.array(data.draw(st.lists(entries, min_size=length, max_size=length))))
        else:
            index.append(slice(None))
    index = tuple(index)
    x = values(shape, seed).astype(dtype)
    y = Tensor(x)[index]
    same_dtype(y, dtype)
    assert_close(y, x[index])
    check_gradients(lambda t: t[index], [x.astype(np.float64)], seed=seed)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), dtype=DTYPES, seed=SEEDS)
def test_boolean_mask_indexing_like_numpy(shape, dtype, seed):
    x = values(shape, seed).astype(dtype)
    mask = np.random.default_rng(seed + 7).random(shape) < 0.5
    y = Tensor(x)[mask]
    same_dtype(y, dtype)
    assert_close(y, x[mask])
    assume(mask.any())
    check_gradients(lambda t: t[mask], [x.astype(np.float64)], seed=seed)
