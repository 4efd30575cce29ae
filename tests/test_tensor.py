"""The Tensor object: construction and dtype rules, float32 preservation through every op, error
messages, conversions, factories, the library random generator, scopes and numerically stable
activations at ±1e4."""
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, manual_seed, scope
from tinygrad_rnn import functional as F


def f32(shape, seed, requires_grad=True, low=None):
    rng = np.random.default_rng(seed)
    data = rng.uniform(low, 2.0, shape) if low is not None else rng.standard_normal(shape)
    return Tensor(data.astype(np.float32), requires_grad=requires_grad)


# ----- construction ----------------------------------------------------------------------------
def test_python_numbers_default_to_float32_and_numpy_arrays_keep_their_dtype():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor([[1, 2]]).dtype == np.int64
    assert Tensor(np.float64(2.0)).dtype == np.float64
    array = np.arange(3.0)
    t = Tensor(array)
    assert t.dtype == np.float64 and t.data is array  # wrapped, not copied
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(t).data is array
    assert t.shape == (3,) and t.ndim == 1 and t.size == 3 and len(t) == 3
    assert [float(v.item()) for v in t] == [0.0, 1.0, 2.0]


def test_only_floating_tensors_can_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, got dtype int64"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        Tensor(np.array([True]), requires_grad=True)
    with pytest.raises(TypeError, match="int32"):
        Tensor(np.array([1], dtype=np.int32)).requires_grad_()
    assert Tensor([1.0]).requires_grad_().requires_grad


def test_non_numeric_data_is_a_type_error():
    for bad in ("abc", None, {"a": 1}, object(), 1j):
        with pytest.raises(TypeError, match="Tensor: cannot make a numeric array"):
            Tensor(bad)


def test_requires_grad_only_changes_on_leaves():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2.0).requires_grad_(False)


# ----- float32 stays float32 -------------------------------------------------------------------
FLOAT32_OPS = {
    "add_py": lambda a, b: a + 2.0, "radd_py": lambda a, b: 2.0 + a,
    "sub_np64": lambda a, b: a - np.float64(1.5), "rsub_np64": lambda a, b: np.float64(1.5) - a,
    "mul_np64": lambda a, b: np.float64(2.0) * a, "rmul_int": lambda a, b: 3 * a,
    "div_array64": lambda a, b: a / np.full(4, 2.0), "rdiv_array64": lambda a, b: np.full(4, 2.0) / b,
    "tensors": lambda a, b: (a + b) * (a - b) / b,
    "neg": lambda a, b: -a, "pow": lambda a, b: b ** 1.5, "pow_np": lambda a, b: a ** np.float64(2.0),
    "matmul": lambda a, b: a @ b.T, "rmatmul_np64": lambda a, b: np.ones((2, 3)) @ a,
    "exp": lambda a, b: F.exp(a), "log": lambda a, b: F.log(b), "tanh": lambda a, b: F.tanh(a),
    "sigmoid": lambda a, b: F.sigmoid(a), "relu": lambda a, b: F.relu(a), "abs": lambda a, b: F.abs(a),
    "clip": lambda a, b: F.clip(a, -0.5, 0.5), "maximum": lambda a, b: F.maximum(a, 0.1),
    "minimum": lambda a, b: F.minimum(np.float64(0.1), a),
    "where": lambda a, b: F.where(a.data > 0, a, np.float64(0.0)),
    "sum": lambda a, b: a.sum(axis=0), "mean": lambda a, b: a.mean(), "max": lambda a, b: a.max(1),
    "reshape": lambda a, b: a.reshape(4, 3), "permute": lambda a, b: a.permute(1, 0),
    "transpose": lambda a, b: a.transpose(), "T": lambda a, b: a.T, "flatten": lambda a, b: a.flatten(),
    "squeeze": lambda a, b: a.unsqueeze(0).squeeze(0), "getitem": lambda a, b: a[[0, 0], 1:],
    "mask": lambda a, b: a[a.data > 0], "cat": lambda a, b: F.cat([a, b], axis=1),
    "stack": lambda a, b: F.stack([a, b]), "split": lambda a, b: a.split(2, axis=1)[1],
    "chunk": lambda a, b: a.chunk(2)[0], "logsumexp": lambda a, b: a.logsumexp(),
    "softmax": lambda a, b: a.softmax(0), "log_softmax": lambda a, b: a.log_softmax(),
    "dropout": lambda a, b: F.dropout(a, 0.25), "embedding": lambda a, b: F.embedding(a, np.array([2, 0, 2])),
    "astype": lambda a, b: a.astype(np.float64).astype(np.float32),
}


@pytest.mark.parametrize("name", list(FLOAT32_OPS))
def test_float32_stays_float32_in_outputs_and_gradients(name):
    a, b = f32((3, 4), 0), f32((3, 4), 1, low=0.5)
    y = FLOAT32_OPS[name](a, b)
    assert y.dtype == np.float32, f"{name} produced {y.dtype}"
    y.backward(np.ones(y.shape, dtype=np.float32) if y.shape else None)
    for t in (a, b):
        if t.grad is not None:
            assert t.grad.dtype == np.float32 and t.grad.shape == t.shape
    assert a.grad is not None or b.grad is not None


def test_float32_with_float64_tensor_is_a_type_error():
    a = f32((3,), 0)
    b = Tensor(np.ones(3))
    for op in (F.add, F.sub, F.mul, F.div, F.maximum, F.minimum, F.matmul):
        with pytest.raises(TypeError, match="dtype mismatch between tensors, float32 and float64"):
            op(a, b)
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.where(np.array([True, False, True]), a, b)
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.cat([a, b])
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.stack([a, b])


def test_integer_tensors_combine_with_float_tensors_as_the_float_dtype():
    a, i = f32((3,), 0), Tensor([1, 2, 3])
    y = a * i
    assert y.dtype == np.float32
    y.backward(np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(a.grad, [1.0, 2.0, 3.0])


# ----- errors ----------------------------------------------------------------------------------
SHAPE_ERRORS = [
    ("add", lambda: F.add(Tensor(np.ones(3)), Tensor(np.ones(4))), ["(3,)", "(4,)"]),
    ("sub", lambda: Tensor(np.ones((2, 3))) - np.ones((3, 2)), ["(2, 3)", "(3, 2)"]),
    ("mul", lambda: Tensor(np.ones(3)) * Tensor(np.ones(4)), ["(3,)", "(4,)"]),
    ("div", lambda: np.ones(4) / Tensor(np.ones(3)), ["(4,)", "(3,)"]),
    ("maximum", lambda: F.maximum(Tensor(np.ones(3)), Tensor(np.ones(4))), ["(3,)", "(4,)"]),
    ("matmul", lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5))), ["(2, 3)", "(4, 5)"]),
    ("matmul", lambda: Tensor(np.ones((2, 2, 3))) @ Tensor(np.ones((3, 3, 1))), ["(2, 2, 3)", "(3, 3, 1)"]),
    ("cat", lambda: F.cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))]), ["(2, 3)", "(2, 4)"]),
    ("stack", lambda: F.stack([Tensor(np.ones(2)), Tensor(np.ones(3))]), ["(2,)", "(3,)"]),
    ("reshape", lambda: Tensor(np.ones(6)).reshape(4), ["(6,)", "(4,)"]),
    ("where", lambda: F.where(np.ones(2, bool), Tensor(np.ones(3)), 0.0), ["(2,)", "(3,)"]),
]


@pytest.mark.parametrize("op,call,shapes", SHAPE_ERRORS, ids=[e[0] for e in SHAPE_ERRORS])
def test_shape_mismatches_raise_value_errors_naming_the_op_and_shapes(op, call, shapes):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(op + ":")
    for shape in shapes:
        assert shape in message


TYPE_ERRORS = [
    lambda x: x + "a", lambda x: x * None, lambda x: x.pow("2"), lambda x: x.sum(axis=0.5),
    lambda x: x.reshape(2.0), lambda x: x[0.5], lambda x: F.cat(x), lambda x: F.where(x.data, x, x),
    lambda x: F.embedding(x, [0.5]), lambda x: F.add(1.0, 2.0), lambda x: F.stack([x, "a"]),
    lambda x: x.transpose(0.0, 1),
]


@pytest.mark.parametrize("call", TYPE_ERRORS)
def test_wrong_types_raise_type_errors(call):
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(TypeError):
        call(x)


FAILING_OPS = [
    lambda a, b: a + b[:, :2], lambda a, b: a @ b, lambda a, b: F.cat([a, b.T]), lambda a, b: a.reshape(5),
    lambda a, b: a.sum(axis=3), lambda a, b: a + b.astype(np.float32), lambda a, b: a.pow(b.reshape(3, 2)),
    lambda a, b: F.embedding(a, [7]), lambda a, b: F.dropout(a, 2.0), lambda a, b: a.split([1, 2]),
]


@pytest.mark.parametrize("call", FAILING_OPS)
def test_a_failing_op_leaves_its_inputs_unchanged(call):
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = Tensor(np.arange(6.0).reshape(2, 3) + 1, requires_grad=True)
    (a * b).sum().backward()  # give both a .grad to watch
    before = [(t.data.copy(), t.grad.copy()) for t in (a, b)]
    with pytest.raises((ValueError, TypeError)):
        call(a, b)
    for t, (data, grad) in zip((a, b), before):
        np.testing.assert_array_equal(t.data, data)
        np.testing.assert_array_equal(t.grad, grad)
        assert t.is_leaf and t.requires_grad


# ----- conversions -----------------------------------------------------------------------------
def test_repr_shows_values_dtype_and_graph_role():
    x = Tensor(np.array([1.0, 2.5]), requires_grad=True)
    assert repr(x) == "Tensor([1. , 2.5], dtype=float64, requires_grad=True)"
    assert repr(x * 2.0) == "Tensor([2., 5.], dtype=float64, op=mul)"
    assert repr(Tensor(3)) == "Tensor(3, dtype=int64)"
    assert "..." in repr(Tensor(np.zeros(1000)))  # long tensors are summarised


def test_array_protocol_item_and_numpy():
    x = Tensor(np.array([[1.0, 2.0]]), requires_grad=True)
    assert np.asarray(x) is x.data
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert np.array(x).shape == (1, 2)
    assert x.numpy() is x.data
    assert Tensor(np.array([3.5])).item() == 3.5 and isinstance(Tensor(np.array(3.5)).item(), float)
    with pytest.raises(ValueError, match=r"only one-element tensors.*\(1, 2\)"):
        x.item()
    assert bool(Tensor(1.0)) and not bool(Tensor(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x)


# ----- factories -------------------------------------------------------------------------------
def test_factories_shapes_values_and_default_dtype():
    for make, value in ((tg.zeros, 0.0), (tg.ones, 1.0)):
        for t in (make(2, 3), make((2, 3)), make([2, 3])):
            assert t.shape == (2, 3) and t.dtype == np.float32 and np.all(t.data == value)
    assert tg.zeros(3, dtype=np.float64).dtype == np.float64
    assert tg.ones(2, requires_grad=True).requires_grad
    full = tg.full((2, 2), 7.5)
    assert full.dtype == np.float32 and np.all(full.data == 7.5) and tg.full(3, 1.0).shape == (3,)
    np.testing.assert_array_equal(tg.arange(4).data, [0, 1, 2, 3])
    assert tg.arange(4).dtype == np.int64  # integer arguments give integers, like torch.arange
    r = tg.arange(0.0, 1.0, 0.25)
    assert r.dtype == np.float32 and np.array_equal(r.data, [0.0, 0.25, 0.5, 0.75])
    assert tg.arange(1, 7, 2).data.tolist() == [1, 3, 5]
    assert tg.arange(3, dtype=np.float64).dtype == np.float64
    n, u = tg.randn(200, 50), tg.rand(3, 4)
    assert n.dtype == np.float32 and n.shape == (200, 50) and abs(n.data.mean()) < 0.05
    assert 0.9 < n.data.std() < 1.1
    assert u.dtype == np.float32 and u.shape == (3, 4) and np.all((u.data >= 0) & (u.data < 1))
    base = np.ones((2, 2), dtype=np.float64)
    assert tg.zeros_like(base).dtype == np.float64 and np.all(tg.zeros_like(Tensor(base)).data == 0)
    assert tg.ones_like(Tensor(base), dtype=np.float32).dtype == np.float32
    assert tg.ones_like(base, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="zeros: shape must be non-negative ints"):
        tg.zeros(-1)
    with pytest.raises(ValueError, match="randn"):
        tg.randn(2.5)


def test_manual_seed_reproduces_and_leaves_numpy_global_state_alone():
    np.random.seed(1234)
    state = np.random.get_state()
    manual_seed(3)
    first = (tg.randn(5).data.copy(), tg.rand(2).data.copy(), F.dropout(tg.ones(8), 0.5).data.copy())
    manual_seed(3)
    second = (tg.randn(5).data, tg.rand(2).data, F.dropout(tg.ones(8), 0.5).data)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    manual_seed(4)
    assert not np.array_equal(tg.randn(5).data, first[0])
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    with pytest.raises(TypeError, match="manual_seed"):
        manual_seed(1.5)


def test_rng_state_round_trip():
    manual_seed(0)
    saved = tg.get_rng_state()
    a = tg.randn(4).data.copy()
    tg.set_rng_state(saved)
    np.testing.assert_array_equal(tg.randn(4).data, a)


# ----- scopes ----------------------------------------------------------------------------------
def test_scope_nesting_tags_tensors_and_ops():
    x = Tensor([1.0], requires_grad=True)
    assert x.scope is None
    with scope("a") as outer:
        assert outer == "a" and tg.tensor.current_scope() == "a"
        y = x * 2.0
        with scope("b") as inner:
            t = Tensor([0.0])
            z = F.tanh(y)
        w = y + 1.0
    assert inner == "a/b" and t.scope == "a/b" and z.scope == "a/b"
    assert y.scope == "a" and w.scope == "a"
    assert (x * 3.0).scope is None


def test_scope_is_restored_after_errors_and_rejects_bad_names():
    with pytest.raises(KeyError):
        with scope("a"):
            raise KeyError
    assert Tensor(1.0).scope is None
    for bad in ("", "a/b", 3):
        with pytest.raises(ValueError, match="scope: name must be"):
            with scope(bad):
                pass


# ----- numerically stable activations ----------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_are_exact_and_silent_at_plus_minus_1e4(dtype):
    x = Tensor(np.array([1e4, -1e4, 0.0], dtype=dtype), requires_grad=True)
    row = Tensor(np.array([[1e4, -1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype), requires_grad=True)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.sigmoid(x)
        np.testing.assert_array_equal(s.data, [1.0, 0.0, 0.5])
        s.backward(np.ones(3, dtype=dtype))
        np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.25])

        np.testing.assert_array_equal(F.softmax(x).data, [1.0, 0.0, 0.0])
        np.testing.assert_array_equal(F.log_softmax(x).data, [0.0, -2e4, -1e4])
        assert F.logsumexp(x).item() == 1e4
        lse = F.logsumexp(row, axis=1)
        np.testing.assert_allclose(lse.data, [1e4 + np.log(2.0), -1e4 + np.log(3.0)], rtol=1e-7)
        np.testing.assert_allclose(F.softmax(row, axis=1).data, [[0.5, 0.0, 0.5], [1 / 3] * 3], rtol=1e-6)

        for fn in (F.softmax, F.log_softmax, F.logsumexp):
            row.grad = None
            out = fn(row, axis=1)
            out.backward(np.ones(out.shape, dtype=dtype))
            assert np.all(np.isfinite(row.grad)) and row.grad.dtype == dtype
        # d logsumexp / dx = softmax(x)
        np.testing.assert_allclose(row.grad, [[0.5, 0.0, 0.5], [1 / 3] * 3], rtol=1e-6)


# ----- integer tensors in float-only ops ---------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "exp", "log"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_float_only_unary_ops_on_integer_tensors_give_the_default_float32(name, dtype):
    """As PyTorch: torch.arange(4).tanh() is float32, not float64."""
    values = np.array([1, 2, 3, 4]).astype(dtype)
    y = getattr(Tensor(values), name)()
    assert y.dtype == np.float32
    reference = {"tanh": np.tanh, "exp": np.exp, "log": np.log,
                 "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[name](values.astype(np.float64))
    np.testing.assert_allclose(y.data, reference, rtol=1e-6)
    assert getattr(F, name)(Tensor(values)).dtype == np.float32


def test_true_division_of_integers_gives_float32_and_floats_keep_their_dtype():
    i = Tensor(np.array([1, 2, 4]))
    for y in (i / 2, i / i, i / 2.5, 3 / i, i / np.array([2, 2, 2])):
        assert y.dtype == np.float32, y
    np.testing.assert_allclose((i / 2.5).data, [0.4, 0.8, 1.6], rtol=1e-6)
    assert (i / Tensor(np.ones(3))).dtype == np.float64       # a float64 tensor beside: float64
    assert (Tensor(np.ones(3, dtype=np.float32)) / i).dtype == np.float32
    assert (i * 2).dtype == np.int64 and (i + i).dtype == np.int64  # not float-only: stay integer


def test_a_compiled_function_sees_the_integer_to_float_cast():
    w = Tensor(np.ones(3, dtype=np.float32))

    @tg.compile(check=True)  # check: every replay must equal the eager run
    def step(ids):
        return (ids.tanh() * w).sum()

    for k in range(3):
        ids = Tensor(np.array([0, 1, 2]) + k)
        out = step(ids)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, np.tanh(np.array([0, 1, 2]) + k).sum(), rtol=1e-6)
