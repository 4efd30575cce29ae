"""Module/Parameter bookkeeping and the feed-forward layers Linear, Embedding, Dropout, Sequential.

Expected values are computed here independently with NumPy (never taken from the code under test).
"""
import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn.nn import Dropout, Embedding, Linear, Module, ModuleList, Parameter, Sequential


class Inner(Module):
    def __init__(self):
        super().__init__()
        self.w = Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
        self.b = Parameter(np.zeros(3, dtype=np.float32))


class Outer(Module):
    """Submodule registered before the own parameter: PyTorch still lists own parameters first."""

    def __init__(self):
        super().__init__()
        self.inner = Inner()
        self.a = Parameter(np.ones(4, dtype=np.float32))
        self.tied = self.a  # the same Parameter under a second name
        self.blocks = ModuleList([Linear(3, 2), Linear(2, 2, bias=False)])
        self.head = Sequential(Linear(2, 5), Dropout(0.5), Linear(5, 1))
        self.head_again = self.head  # a shared submodule


EXPECTED_NAMES = [
    "a",
    "inner.w", "inner.b",
    "blocks.0.weight", "blocks.0.bias",
    "blocks.1.weight",
    "head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias",
]


def _tweaked_state(module: Module, offset: float) -> dict:
    return {name: p.data.astype(np.float64) + offset for name, p in module.named_parameters()}


# ----- parameters and names ------------------------------------------------------------------------
def test_named_parameters_nested_modulelist_sequential_and_shared():
    m = Outer()
    names = [n for n, _ in m.named_parameters()]
    assert names == EXPECTED_NAMES
    assert len(set(id(p) for _, p in m.named_parameters())) == len(EXPECTED_NAMES)
    assert list(m.state_dict()) == EXPECTED_NAMES


def test_parameters_are_the_registered_objects():
    m = Outer()
    params = m.parameters()
    assert [id(p) for p in params] == [id(p) for _, p in m.named_parameters()]
    assert params[0] is m.a and params[1] is m.inner.w and params[3] is m.blocks[0].weight
    assert all(isinstance(p, Parameter) and p.requires_grad for p in params)
    assert m.num_parameters() == 4 + 6 + 3 + (6 + 2) + 4 + (10 + 5) + (5 + 1)


def test_reassigning_an_attribute_replaces_or_unregisters():
    m = Inner()
    m.b = Parameter(np.ones(5, dtype=np.float32))
    assert dict(m.named_parameters())["b"].shape == (5,)
    m.w = np.zeros(3)  # a plain array is not a parameter
    assert [n for n, _ in m.named_parameters()] == ["b"]


def test_state_dict_returns_copies():
    m = Outer()
    state = m.state_dict()
    before = m.inner.w.data.copy()
    state["inner.w"] += 100.0
    np.testing.assert_array_equal(m.inner.w.data, before)
    assert state["inner.w"].dtype == np.float32


# ----- load_state_dict -----------------------------------------------------------------------------
def test_load_state_dict_accepts_lists_arrays_and_tensors_and_casts():
    m = Inner()
    w = [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]]          # nested Python lists
    b = np.array([7, 8, 9], dtype=np.int64)           # integer array
    missing, unexpected = m.load_state_dict({"w": w, "b": b})
    assert missing == [] and unexpected == []
    np.testing.assert_array_equal(m.w.data, np.array(w, dtype=np.float32))
    np.testing.assert_array_equal(m.b.data, np.array([7.0, 8.0, 9.0], dtype=np.float32))
    assert m.w.dtype == np.float32 and m.b.dtype == np.float32
    source = np.full((2, 3), 0.25)
    m.load_state_dict({"w": Tensor(source), "b": (1.0, 2.0, 3.0)})
    source[:] = -1.0  # the module must hold its own copy
    np.testing.assert_array_equal(m.w.data, np.full((2, 3), 0.25, dtype=np.float32))
    np.testing.assert_array_equal(m.b.data, np.array([1.0, 2.0, 3.0], dtype=np.float32))


def test_load_state_dict_round_trip_between_modules():
    a, b = Outer(), Outer()
    b.load_state_dict(_tweaked_state(a, 0.5))
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(pb.data, pa.data + 0.5, rtol=1e-6, err_msg=name)


def test_load_state_dict_strict_missing_key_names_it():
    m = Outer()
    state = m.state_dict()
    del state["head.2.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['head.2.bias'\]"):
        m.load_state_dict(state)


def test_load_state_dict_strict_unexpected_key_names_it():
    m = Outer()
    state = m.state_dict()
    state["head.3.weight"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \['head.3.weight'\]"):
        m.load_state_dict(state)


def test_load_state_dict_non_strict_reports_and_loads_the_rest():
    m = Inner()
    missing, unexpected = m.load_state_dict({"w": np.full((2, 3), 3.0), "extra": [1.0]}, strict=False)
    assert missing == ["b"] and unexpected == ["extra"]
    np.testing.assert_array_equal(m.w.data, np.full((2, 3), 3.0, dtype=np.float32))
    np.testing.assert_array_equal(m.b.data, np.zeros(3, dtype=np.float32))


def test_load_state_dict_shape_mismatch_names_key_and_shapes():
    m = Outer()
    state = m.state_dict()
    state["blocks.0.weight"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"'blocks\.0\.weight'.*expected \(2, 3\), got \(3, 2\)"):
        m.load_state_dict(state)


@pytest.mark.parametrize("bad", ["shape", "missing", "unexpected", "dtype"])
def test_failing_load_leaves_module_untouched(bad):
    m = Outer()
    before = m.state_dict()
    state = _tweaked_state(m, 1.0)  # every earlier key would change the module if assigned
    last = EXPECTED_NAMES[-1]
    if bad == "shape":
        state[last] = np.zeros(7)
    elif bad == "missing":
        del state[last]
    elif bad == "unexpected":
        state["zzz"] = np.zeros(1)
    else:
        state[last] = np.array(["text"])
    with pytest.raises((ValueError, TypeError)):
        m.load_state_dict(state)
    after = m.state_dict()
    for name in EXPECTED_NAMES:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_load_state_dict_rejects_non_mapping():
    with pytest.raises(TypeError, match="mapping.*list"):
        Inner().load_state_dict([("w", np.zeros((2, 3)))])


# ----- modes, grads, dtype -------------------------------------------------------------------------
def test_train_eval_recursive():
    m = Outer()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    assert not m.head[1].training and not m.blocks[1].training
    m.train()
    assert all(mod.training for mod in m.modules())
    m.train(False)
    assert not m.inner.training


def test_eval_makes_nested_dropout_the_identity():
    m = Outer().double()
    x = Tensor(np.random.default_rng(0).standard_normal((50, 2)))
    m.eval()
    np.testing.assert_array_equal(m.head(x).data, m.head(x).data)
    m.train()
    assert not np.array_equal(m.head(x).data, m.head(x).data)


def test_zero_grad_clears_every_parameter():
    m = Outer().double()
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)))
    y = m.head(m.blocks[1](m.blocks[0](x)))
    (y.sum() + (m.a * m.a).sum() + (m.inner.w.sum() + m.inner.b.sum())).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_to_double_and_back():
    m = Outer()
    original = m.state_dict()
    m.inner.w.grad = np.ones((2, 3), dtype=np.float32)
    assert m.to(np.float64) is m
    for name, p in m.named_parameters():
        assert p.dtype == np.float64, name
        np.testing.assert_array_equal(p.data, original[name].astype(np.float64))
    assert m.inner.w.grad is None
    assert m.tied is m.a  # sharing survives the conversion
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert m.double() is m and all(p.dtype == np.float64 for p in m.parameters())
    out = m.blocks[0](Tensor(np.ones((1, 3))))
    assert out.dtype == np.float64


def test_to_rejects_non_float_dtype():
    with pytest.raises(TypeError, match="int32"):
        Inner().to(np.int32)


def test_setattr_before_init_is_a_clear_error():
    class Forgetful(Module):
        def __init__(self):
            self.w = Parameter(np.zeros(1))

    with pytest.raises(RuntimeError, match="Module.__init__"):
        Forgetful()


# ----- Linear --------------------------------------------------------------------------------------
def test_linear_shapes_and_values():
    lin = Linear(4, 3).double()
    rng = np.random.default_rng(2)
    for shape in [(4,), (5, 4), (2, 6, 4)]:
        x = rng.standard_normal(shape)
        y = lin(Tensor(x))
        assert y.shape == shape[:-1] + (3,)
        np.testing.assert_allclose(y.data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-12)
    no_bias = Linear(4, 3, bias=False).double()
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    x = rng.standard_normal((5, 4))
    np.testing.assert_allclose(no_bias(x).data, x @ no_bias.weight.data.T, rtol=1e-12)


def test_linear_gradients():
    lin = Linear(3, 2).double()
    x = Tensor(np.random.default_rng(3).standard_normal((4, 3)), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: lin(x), (x, lin.weight, lin.bias))


def test_linear_init_range():
    tg.manual_seed(0)
    lin = Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert p.dtype == np.float32
        assert np.all(np.abs(p.data) <= bound)
        assert p.data.max() > 0.95 * bound and p.data.min() < -0.95 * bound
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(lin.weight.data.mean()) < 0.01 * bound


@pytest.mark.parametrize("args, exc, pattern", [
    ((0, 3), ValueError, "in_features must be >= 1, got 0"),
    ((3, -2), ValueError, "out_features must be >= 1, got -2"),
    ((2.5, 3), TypeError, "in_features must be an int, got float"),
])
def test_linear_bad_sizes(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Linear(*args)


def test_linear_bad_input():
    lin = Linear(4, 3)
    with pytest.raises(ValueError, match=r"in_features=4, got shape \(2, 5\)"):
        lin(Tensor(np.zeros((2, 5), dtype=np.float32)))
    with pytest.raises(TypeError, match="float64.*float32"):
        lin(Tensor(np.zeros((2, 4))))


# ----- Embedding -----------------------------------------------------------------------------------
def test_embedding_lookup_and_init_statistics():
    tg.manual_seed(1)
    emb = Embedding(1000, 64)
    w = emb.weight.data
    assert w.shape == (1000, 64) and w.dtype == np.float32
    assert abs(w.mean()) < 0.02           # the mean of 64,000 N(0, 1) draws has std 0.004
    assert abs(w.std() - 1.0) < 0.03
    assert abs(np.mean(w ** 4) - 3.0) < 0.15  # kurtosis of a normal (a uniform gives 1.8)
    idx = np.array([[3, 999], [0, 3]])
    np.testing.assert_array_equal(emb(idx).data, w[idx])


@pytest.mark.parametrize("padding_idx, row", [(2, 2), (-1, 5)])
def test_embedding_padding_row_zero_and_never_gets_gradient(padding_idx, row):
    emb = Embedding(6, 4, padding_idx=padding_idx).double()
    assert emb.padding_idx == row
    np.testing.assert_array_equal(emb.weight.data[row], np.zeros(4))
    assert np.all(np.delete(emb.weight.data, row, axis=0) != 0)
    idx = np.array([[1, row, 4], [row, 1, 1]])  # padding indexed twice, row 1 three times
    out = emb(idx)
    np.testing.assert_array_equal(out.data[0, 1], np.zeros(4))
    u = np.random.default_rng(4).standard_normal(out.shape)
    (out * Tensor(u)).sum().backward()
    expected = np.zeros((6, 4))
    np.add.at(expected, idx, u)
    expected[row] = 0.0
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-12)
    np.testing.assert_array_equal(emb.weight.grad[row], np.zeros(4))


@pytest.mark.parametrize("args, kwargs, exc, pattern", [
    ((0, 4), {}, ValueError, "num_embeddings must be >= 1, got 0"),
    ((5, 0), {}, ValueError, "embedding_dim must be >= 1, got 0"),
    ((5, 4), {"padding_idx": 5}, ValueError, r"padding_idx.*\[-5, 5\), got 5"),
    ((5, 4), {"padding_idx": -6}, ValueError, r"padding_idx.*got -6"),
])
def test_embedding_bad_arguments(args, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Embedding(*args, **kwargs)


def test_embedding_bad_indices():
    emb = Embedding(5, 2)
    with pytest.raises(ValueError, match="index 5 is out of range for 5"):
        emb(np.array([0, 5]))
    with pytest.raises(TypeError, match="integers.*float64"):
        emb(np.array([0.0, 1.0]))


# ----- Dropout -------------------------------------------------------------------------------------
def test_dropout_eval_is_identity():
    drop = Dropout(0.7).eval()
    x = Tensor(np.random.default_rng(5).standard_normal((30, 30)))
    np.testing.assert_array_equal(drop(x).data, x.data)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_train_zero_fraction_and_scaling(p):
    tg.manual_seed(2)
    drop = Dropout(p)
    assert drop.training
    x = Tensor(np.random.default_rng(6).uniform(1.0, 2.0, size=(200, 500)), requires_grad=True)
    y = drop(x)
    dropped = y.data == 0
    assert abs(dropped.mean() - p) < 0.01  # std of the fraction is below 0.0012
    np.testing.assert_allclose(y.data[~dropped], x.data[~dropped] / (1 - p), rtol=1e-12)
    u = np.random.default_rng(7).standard_normal(y.shape)
    y.backward(u)
    np.testing.assert_allclose(x.grad, np.where(dropped, 0.0, u / (1 - p)), rtol=1e-12)


def test_dropout_edge_probabilities():
    x = Tensor(np.random.default_rng(8).uniform(1.0, 2.0, size=(10, 10)))
    np.testing.assert_array_equal(Dropout(0.0)(x).data, x.data)
    np.testing.assert_array_equal(Dropout(1.0)(x).data, np.zeros((10, 10)))


def test_dropout_masks_differ_between_calls_and_follow_the_seed():
    x = Tensor(np.ones((20, 20)))
    drop = Dropout(0.5)
    tg.manual_seed(3)
    first, second = drop(x).data, drop(x).data
    assert not np.array_equal(first, second)
    tg.manual_seed(3)
    np.testing.assert_array_equal(drop(x).data, first)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got " + repr(p).replace(".", r"\.")):
        Dropout(p)


# ----- Sequential ----------------------------------------------------------------------------------
def test_sequential_names_order_and_forward():
    seq = Sequential(Linear(3, 4), Dropout(0.5), Linear(4, 2)).double()
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(seq) == 3 and isinstance(seq[1], Dropout) and seq[-1] is seq[2]
    seq.eval()
    x = np.random.default_rng(9).standard_normal((5, 3))
    w0, b0, w2, b2 = (p.data for p in seq.parameters())
    np.testing.assert_allclose(seq(Tensor(x)).data, (x @ w0.T + b0) @ w2.T + b2, rtol=1e-12)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1 must be a Module, got function"):
        Sequential(Linear(2, 2), lambda x: x)


def test_modulelist_rejects_non_modules_and_indexes():
    ml = ModuleList([Linear(2, 2)])
    ml.append(Linear(2, 3))
    assert len(ml) == 2 and ml[1].out_features == 3
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(TypeError, match="expected a Module, got int"):
        ml.append(3)


@pytest.mark.parametrize("p", [np.float32(0.25), np.int64(0), np.float64(1.0)])
def test_dropout_accepts_numpy_scalars(p):
    drop = Dropout(p)
    assert drop.p == float(p) and type(drop.p) is float


@pytest.mark.parametrize("training", [True, False])
def test_dropout_accepts_arrays_like_linear(training):
    drop = Dropout(0.5).train(training)
    x = np.random.default_rng(10).uniform(1.0, 2.0, size=(8, 8))
    y = drop(x)
    assert isinstance(y, Tensor)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x[kept] * (2.0 if training else 1.0), rtol=1e-12)
    with pytest.raises(TypeError, match="Dropout: input must be a Tensor or np.ndarray, got list"):
        drop([1.0, 2.0])
