"""Recurrent cells and layers: parameters and init, gradients vs finite differences, semantics
(bidirectional, lengths, batch_first, unbatched, dropout), long sequences, truncated BPTT, errors.

The values against PyTorch itself are checked in test_recurrent_torch.py; the values against the
handwritten BPTT in test_analytic_vs_autograd.py. Expected values here come from independent
constructions (running sequences one by one, transposing, explicit name lists, NumPy formulas).
"""
import math
import sys
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, analytic, nn

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def make_layer(kind: str, input_size: int, hidden_size: int, seed: int = 0, **kwargs) -> nn.Module:
    """A float64 layer of the given kind (``rnn_tanh``/``rnn_relu``/``lstm``/``gru``)."""
    tg.manual_seed(seed)
    if kind.startswith("rnn"):
        return nn.RNN(input_size, hidden_size, nonlinearity=kind[4:], **kwargs).double()
    return {"lstm": nn.LSTM, "gru": nn.GRU}[kind](input_size, hidden_size, **kwargs).double()


def make_cell(kind: str, input_size: int, hidden_size: int, seed: int = 0, bias: bool = True) -> nn.Module:
    tg.manual_seed(seed)
    if kind.startswith("rnn"):
        return nn.RNNCell(input_size, hidden_size, bias=bias, nonlinearity=kind[4:]).double()
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](input_size, hidden_size, bias=bias).double()


def random_states(kind, layer, rng, batch, requires_grad=False):
    """Initial states (Tensors) of the right shape for ``layer``; batch None means unbatched."""
    count = layer.num_layers * layer.num_directions
    shape = (count, layer.hidden_size) if batch is None else (count, batch, layer.hidden_size)
    n = 2 if kind == "lstm" else 1
    return [Tensor(rng.standard_normal(shape), requires_grad=requires_grad) for _ in range(n)]


def run(kind, layer, x, states=None, lengths=None):
    """Call the layer and return (output, [h_n] or [h_n, c_n]) uniformly for every kind."""
    if kind == "lstm":
        output, (h_n, c_n) = layer(x, tuple(states) if states else None, lengths=lengths)
        return output, [h_n, c_n]
    output, h_n = layer(x, states[0] if states else None, lengths=lengths)
    return output, [h_n]


def expected_layer_names(num_layers: int, bidirectional: bool, bias: bool) -> list[str]:
    names = []
    for k in range(num_layers):
        for sfx in ("", "_reverse") if bidirectional else ("",):
            names += [f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}"]
            if bias:
                names += [f"bias_ih_l{k}{sfx}", f"bias_hh_l{k}{sfx}"]
    return names


# =====================================================================================================
# 3. Parameters: names, shapes, order, bias=False, initialisation, seeding
# =====================================================================================================
def test_lstm_two_layer_bidirectional_names_literally():
    names = [n for n, _ in nn.LSTM(3, 5, num_layers=2, bidirectional=True).named_parameters()]
    assert names == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
    ]


@pytest.mark.parametrize("num_layers, bidirectional, bias", [
    (1, False, True), (2, False, True), (1, True, True), (3, True, True), (2, True, False), (1, False, False),
])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_parameter_names_shapes_order(kind, num_layers, bidirectional, bias):
    I, H = 3, 5
    layer = make_layer(kind, I, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    G, D = GATES[kind], 2 if bidirectional else 1
    names = [n for n, _ in layer.named_parameters()]
    assert names == expected_layer_names(num_layers, bidirectional, bias)
    assert list(layer.state_dict()) == names
    for name, p in layer.named_parameters():
        if name.startswith("weight_ih"):
            expected = (G * H, I if "_l0" in name else D * H)
        elif name.startswith("weight_hh"):
            expected = (G * H, H)
        else:
            expected = (G * H,)
        assert p.shape == expected, name
        assert getattr(layer, name) is p
    if not bias:
        assert not any("bias" in n for n in layer.state_dict())


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_cell_parameter_names_shapes_and_bias_false(kind, bias):
    cell = make_cell(kind, 3, 5, bias=bias)
    G = GATES[kind]
    expected = {"weight_ih": (G * 5, 3), "weight_hh": (G * 5, 5)}
    if bias:
        expected.update({"bias_ih": (G * 5,), "bias_hh": (G * 5,)})
    assert [(n, p.shape) for n, p in cell.named_parameters()] == list(expected.items())
    if not bias:
        assert cell.bias_ih is None and cell.bias_hh is None
        assert list(cell.state_dict()) == ["weight_ih", "weight_hh"]


def _assert_uniform(values: np.ndarray, bound: float, name: str) -> None:
    assert np.all(np.abs(values) <= bound), f"{name}: value outside U(-{bound}, {bound})"
    # Spread over the whole range, not a narrower one (e.g. 1/sqrt(input_size) for weight_ih).
    assert values.max() > 0.7 * bound and values.min() < -0.7 * bound, name


@pytest.mark.parametrize("kind", KINDS)
def test_layer_init_uniform_in_one_over_sqrt_hidden(kind):
    H = 64
    bound = 1 / math.sqrt(H)
    tg.manual_seed(11)
    cls = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    layer = cls(200, H, num_layers=2, bidirectional=True)  # input_size 200: 1/sqrt(200) < 0.7/sqrt(64)
    for name, p in layer.named_parameters():
        assert p.dtype == np.float32
        _assert_uniform(p.data, bound, name)
    pooled = np.concatenate([p.data.ravel() for p in layer.parameters()])
    assert abs(pooled.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert abs(pooled.mean()) < 0.01 * bound


@pytest.mark.parametrize("kind", KINDS)
def test_cell_init_uniform_in_one_over_sqrt_hidden(kind):
    H = 64
    bound = 1 / math.sqrt(H)
    tg.manual_seed(12)
    cell = {"rnn_tanh": nn.RNNCell, "rnn_relu": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](200, H)
    for name, p in cell.named_parameters():
        _assert_uniform(p.data, bound, name)


def test_manual_seed_makes_init_reproducible_without_touching_numpy_global_state():
    np.random.seed(123)
    expected_global = np.random.random(3)
    np.random.seed(123)
    tg.manual_seed(7)
    first = nn.LSTM(3, 4, num_layers=2).state_dict()
    tg.manual_seed(7)
    second = nn.LSTM(3, 4, num_layers=2).state_dict()
    tg.manual_seed(8)
    third = nn.LSTM(3, 4, num_layers=2).state_dict()
    np.testing.assert_array_equal(np.random.random(3), expected_global)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert not np.array_equal(first["weight_ih_l0"], third["weight_ih_l0"])
    tg.manual_seed(7)
    a = nn.GRUCell(3, 4).weight_hh.data
    tg.manual_seed(7)
    np.testing.assert_array_equal(nn.GRUCell(3, 4).weight_hh.data, a)


# =====================================================================================================
# 5. Gradients against central finite differences (float64, tiny sizes)
# =====================================================================================================
GRADCHECK_CONFIGS = {
    "base": dict(kwargs={}, states=True, lengths=None, unbatched=False),
    "nostate": dict(kwargs={}, states=False, lengths=None, unbatched=False),
    "layers2": dict(kwargs={"num_layers": 2}, states=True, lengths=None, unbatched=False),
    "bidir": dict(kwargs={"bidirectional": True}, states=True, lengths=None, unbatched=False),
    "layers2_bidir_batch_first": dict(kwargs={"num_layers": 2, "bidirectional": True, "batch_first": True},
                                      states=True, lengths=None, unbatched=False),
    "batch_first": dict(kwargs={"batch_first": True}, states=True, lengths=None, unbatched=False),
    # unsorted, one shorter than T, one of length 1
    "lengths_bidir": dict(kwargs={"bidirectional": True}, states=True, lengths=[2, 3, 1], unbatched=False),
    "lengths_layers2": dict(kwargs={"num_layers": 2}, states=False, lengths=[3, 1, 2], unbatched=False),
    "nobias": dict(kwargs={"bias": False}, states=True, lengths=None, unbatched=False),
    "unbatched_bidir": dict(kwargs={"bidirectional": True}, states=True, lengths=None, unbatched=True),
}


@pytest.mark.parametrize("config", list(GRADCHECK_CONFIGS))
@pytest.mark.parametrize("kind", KINDS)
def test_layer_gradcheck(kind, config):
    cfg = GRADCHECK_CONFIGS[config]
    I, H, T = 2, 2, 3
    N = 3 if cfg["lengths"] is not None else 2
    layer = make_layer(kind, I, H, seed=1, **cfg["kwargs"])
    rng = np.random.default_rng(2)
    if cfg["unbatched"]:
        x_shape = (T, I)
    elif layer.batch_first:
        x_shape = (N, T, I)
    else:
        x_shape = (T, N, I)
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
    states = random_states(kind, layer, rng, None if cfg["unbatched"] else N, True) if cfg["states"] else []
    n_states = len(states)

    def fn(x, *rest):
        output, finals = run(kind, layer, x, list(rest[:n_states]), cfg["lengths"])
        return (output, *finals)

    assert tg.gradcheck(fn, (x, *states, *layer.parameters()), eps=1e-6, atol=1e-7, rtol=1e-5)


CELL_CONFIGS = ["batched_state", "batched_nostate", "unbatched_state", "nobias"]


@pytest.mark.parametrize("config", CELL_CONFIGS)
@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradcheck(kind, config):
    I, H, N = 2, 3, 2
    cell = make_cell(kind, I, H, seed=3, bias=config != "nobias")
    rng = np.random.default_rng(4)
    batch_shape = () if config == "unbatched_state" else (N,)
    x = Tensor(rng.standard_normal(batch_shape + (I,)), requires_grad=True)
    n_states = 0 if config == "batched_nostate" else (2 if kind == "lstm" else 1)
    states = [Tensor(rng.standard_normal(batch_shape + (H,)), requires_grad=True) for _ in range(n_states)]

    def fn(x, *rest):
        given = rest[:n_states]
        if kind == "lstm":
            return cell(x, tuple(given) if given else None)
        return cell(x, given[0] if given else None)

    assert tg.gradcheck(fn, (x, *states, *cell.parameters()), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_with_training_dropout_between_layers():
    # The same mask on every evaluation (the seed is reset inside fn) makes dropout differentiable.
    layer = make_layer("lstm", 2, 2, seed=5, num_layers=2, dropout=0.5)
    x = Tensor(np.random.default_rng(6).standard_normal((3, 2, 2)), requires_grad=True)

    def fn(x, *params):
        tg.manual_seed(99)
        output, (h_n, c_n) = layer(x)
        return output, h_n, c_n

    assert tg.gradcheck(fn, (x, *layer.parameters()), eps=1e-6, atol=1e-7, rtol=1e-5)


# =====================================================================================================
# Cells step by step agree with the layers
# =====================================================================================================
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_cell_unrolled_equals_layer(kind, bias):
    I, H, T, N = 3, 4, 5, 2
    cell = make_cell(kind, I, H, seed=7, bias=bias)
    layer = make_layer(kind, I, H, seed=8, bias=bias)
    layer.load_state_dict({f"{n}_l0": v for n, v in cell.state_dict().items()})
    rng = np.random.default_rng(9)
    x = rng.standard_normal((T, N, I))
    states = random_states(kind, layer, rng, N)
    output, finals = run(kind, layer, Tensor(x), states)
    if kind == "lstm":
        h, c = states[0][0], states[1][0]
        for t in range(T):
            h, c = cell(Tensor(x[t]), (h, c))
            np.testing.assert_allclose(output.data[t], h.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(finals[1].data[0], c.data, rtol=1e-12, atol=1e-14)
    else:
        h = states[0][0]
        for t in range(T):
            h = cell(Tensor(x[t]), h)
            np.testing.assert_allclose(output.data[t], h.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(finals[0].data[0], h.data, rtol=1e-12, atol=1e-14)


def test_cell_unbatched_equals_batch_of_one():
    cell = make_cell("lstm", 3, 4, seed=10)
    rng = np.random.default_rng(11)
    x, h, c = rng.standard_normal(3), rng.standard_normal(4), rng.standard_normal(4)
    h1, c1 = cell(Tensor(x), (Tensor(h), Tensor(c)))
    h2, c2 = cell(Tensor(x[None]), (Tensor(h[None]), Tensor(c[None])))
    assert h1.shape == (4,) and c1.shape == (4,)
    np.testing.assert_allclose(h1.data, h2.data[0], rtol=1e-14)
    np.testing.assert_allclose(c1.data, c2.data[0], rtol=1e-14)


def test_cell_missing_state_means_zeros():
    cell = make_cell("gru", 3, 4, seed=12)
    x = Tensor(np.random.default_rng(13).standard_normal((2, 3)))
    np.testing.assert_array_equal(cell(x).data, cell(x, Tensor(np.zeros((2, 4)))).data)


# =====================================================================================================
# 6. Semantics
# =====================================================================================================
@pytest.mark.parametrize("kind", KINDS)
def test_final_states_are_output_ends(kind):
    H = 4
    rng = np.random.default_rng(14)
    x = Tensor(rng.standard_normal((6, 3, 2)))
    uni = make_layer(kind, 2, H, seed=15, num_layers=2)
    output, finals = run(kind, uni, x, random_states(kind, uni, rng, 3))
    np.testing.assert_array_equal(finals[0].data[-1], output.data[-1])
    bi = make_layer(kind, 2, H, seed=16, num_layers=2, bidirectional=True)
    output, finals = run(kind, bi, x, random_states(kind, bi, rng, 3))
    np.testing.assert_array_equal(finals[0].data[-2], output.data[-1, :, :H])
    np.testing.assert_array_equal(finals[0].data[-1], output.data[0, :, H:])
    # h_n is not simply the last output row for the reverse direction
    assert not np.allclose(finals[0].data[-1], output.data[-1, :, H:])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_lengths_equal_running_each_sequence_alone(kind, batch_first):
    T, N, I, H = 6, 4, 3, 4
    lengths = [4, 6, 1, 3]  # unsorted
    layer = make_layer(kind, I, H, seed=17, num_layers=2, bidirectional=True, batch_first=batch_first)
    rng = np.random.default_rng(18)
    x = rng.standard_normal((T, N, I))
    states = random_states(kind, layer, rng, N)
    x_in = x.transpose(1, 0, 2) if batch_first else x
    output, finals = run(kind, layer, Tensor(x_in), states, lengths)
    out = output.data.transpose(1, 0, 2) if batch_first else output.data
    for b, length in enumerate(lengths):
        alone = x[:length, b:b + 1]
        alone_states = [Tensor(s.data[:, b:b + 1]) for s in states]
        alone_in = alone.transpose(1, 0, 2) if batch_first else alone
        out_b, finals_b = run(kind, layer, Tensor(alone_in), alone_states)
        out_b = out_b.data.transpose(1, 0, 2) if batch_first else out_b.data
        np.testing.assert_allclose(out[:length, b], out_b[:, 0], rtol=1e-12, atol=1e-14, err_msg=f"seq {b}")
        assert np.all(out[length:, b] == 0.0), f"seq {b}: padded outputs must be exactly 0"
        for k, (f, f_b) in enumerate(zip(finals, finals_b)):
            np.testing.assert_allclose(f.data[:, b], f_b.data[:, 0], rtol=1e-12, atol=1e-14,
                                       err_msg=f"seq {b}, final state {k}")


@pytest.mark.parametrize("kind", KINDS)
def test_padding_values_do_not_affect_results(kind):
    T, N, I, H = 5, 3, 2, 3
    lengths = np.array([2, 5, 4])
    layer = make_layer(kind, I, H, seed=19, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(20)
    x = rng.standard_normal((T, N, I))
    padded = np.arange(T)[:, None] >= lengths[None, :]  # (T, N)
    x_other = x.copy()
    x_other[padded] = 100.0 * rng.standard_normal((int(padded.sum()), I))
    states = random_states(kind, layer, rng, N)
    xa = Tensor(x, requires_grad=True)
    out_a, fin_a = run(kind, layer, xa, states, lengths)
    out_b, fin_b = run(kind, layer, Tensor(x_other), states, lengths)
    np.testing.assert_array_equal(out_a.data, out_b.data)
    for a, b in zip(fin_a, fin_b):
        np.testing.assert_array_equal(a.data, b.data)
    # ... and padded positions receive no gradient
    loss = (out_a * Tensor(rng.standard_normal(out_a.shape))).sum()
    for f in fin_a:
        loss = loss + (f * Tensor(rng.standard_normal(f.shape))).sum()
    loss.backward()
    assert np.all(xa.grad[padded] == 0.0) and np.all(xa.grad[~padded] != 0.0)


def test_without_lengths_padding_is_processed_as_data():
    # Control for the test above: without lengths the same change does alter the results.
    layer = make_layer("gru", 2, 3, seed=21, bidirectional=True)
    rng = np.random.default_rng(22)
    x = rng.standard_normal((5, 2, 2))
    x_other = x.copy()
    x_other[4, 0] += 1.0
    out_a, _ = run("gru", layer, Tensor(x))
    out_b, _ = run("gru", layer, Tensor(x_other))
    assert not np.allclose(out_a.data[0, 0], out_b.data[0, 0])


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first_is_time_major_transposed(kind):
    T, N, I, H = 5, 3, 2, 3
    tm = make_layer(kind, I, H, seed=23, num_layers=2, bidirectional=True)
    bf = make_layer(kind, I, H, seed=24, num_layers=2, bidirectional=True, batch_first=True)
    bf.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(25)
    x = rng.standard_normal((T, N, I))
    states = random_states(kind, tm, rng, N)
    out_tm, fin_tm = run(kind, tm, Tensor(x), states)
    out_bf, fin_bf = run(kind, bf, Tensor(x.transpose(1, 0, 2).copy()), states)
    assert out_bf.shape == (N, T, 2 * H)
    np.testing.assert_allclose(out_bf.data, out_tm.data.transpose(1, 0, 2), rtol=1e-13, atol=1e-15)
    for a, b in zip(fin_tm, fin_bf):
        assert b.shape == (4, N, H)  # batch_first never applies to states
        np.testing.assert_allclose(b.data, a.data, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("lengths", [None, [3]])
@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_equals_batch_of_one(kind, lengths):
    T, I, H = 5, 2, 3
    layer = make_layer(kind, I, H, seed=26, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(27)
    x = rng.standard_normal((T, I))
    states = random_states(kind, layer, rng, None)
    out_u, fin_u = run(kind, layer, Tensor(x), states, lengths)
    out_b, fin_b = run(kind, layer, Tensor(x[:, None]), [Tensor(s.data[:, None]) for s in states], lengths)
    assert out_u.shape == (T, 2 * H)
    np.testing.assert_allclose(out_u.data, out_b.data[:, 0], rtol=1e-13, atol=1e-15)
    for a, b in zip(fin_u, fin_b):
        assert a.shape == (4, H)
        np.testing.assert_allclose(a.data, b.data[:, 0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_eval_is_deterministic_and_equals_no_dropout(kind):
    layer = make_layer(kind, 2, 3, seed=28, num_layers=3, dropout=0.5, bidirectional=True)
    plain = make_layer(kind, 2, 3, seed=29, num_layers=3, bidirectional=True)
    plain.load_state_dict(layer.state_dict())
    x = Tensor(np.random.default_rng(30).standard_normal((4, 2, 2)))
    layer.eval()
    out1, fin1 = run(kind, layer, x)
    out2, fin2 = run(kind, layer, x)
    out_p, fin_p = run(kind, plain, x)
    np.testing.assert_array_equal(out1.data, out2.data)
    np.testing.assert_array_equal(out1.data, out_p.data)
    for a, b in zip(fin1, fin_p):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_in_training_only_between_layers(kind):
    D = 2
    layer = make_layer(kind, 2, 3, seed=31, num_layers=2, dropout=0.5, bidirectional=True)
    x = Tensor(np.random.default_rng(32).standard_normal((4, 5, 2)))
    layer.eval()
    out_eval, fin_eval = run(kind, layer, x)
    layer.train()
    tg.manual_seed(33)
    out1, fin1 = run(kind, layer, x)
    out2, fin2 = run(kind, layer, x)
    assert not np.allclose(out1.data, out2.data)       # a fresh mask per call
    assert not np.allclose(out1.data, out_eval.data)
    for a, b, e in zip(fin1, fin2, fin_eval):
        # The first layer's states see no dropout (not on the input, not on the recurrence) ...
        np.testing.assert_array_equal(a.data[:D], e.data[:D])
        np.testing.assert_array_equal(b.data[:D], e.data[:D])
    # ... the last layer's states do depend on the mask applied to its input.
    assert not np.allclose(fin1[0].data[D:], fin2[0].data[D:])


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_one_zeroes_the_second_layer_input(kind):
    I, H, T, N = 2, 3, 4, 2
    layer = make_layer(kind, I, H, seed=34, num_layers=2, dropout=1.0, bidirectional=True)
    second = make_layer(kind, 2 * H, H, seed=35, bidirectional=True)  # layer 1 on its own
    second.load_state_dict({n.replace("_l1", "_l0"): v for n, v in layer.state_dict().items() if "_l1" in n})
    rng = np.random.default_rng(36)
    x = Tensor(rng.standard_normal((T, N, I)))
    states = random_states(kind, layer, rng, N)
    out, finals = run(kind, layer, x, states)                      # training mode (the default)
    out_zero, finals_zero = run(kind, second, Tensor(np.zeros((T, N, 2 * H))), [Tensor(s.data[2:]) for s in states])
    np.testing.assert_allclose(out.data, out_zero.data, rtol=1e-13, atol=1e-15)
    for f, fz in zip(finals, finals_zero):
        np.testing.assert_allclose(f.data[2:], fz.data, rtol=1e-13, atol=1e-15)
    layer.eval()
    out_eval, finals_eval = run(kind, layer, x, states)
    assert not np.allclose(out_eval.data, out.data)
    for f, fe in zip(finals, finals_eval):
        np.testing.assert_array_equal(f.data[:2], fe.data[:2])


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_has_no_effect_with_one_layer(kind):
    layer = make_layer(kind, 2, 3, seed=37, num_layers=1, dropout=0.9, bidirectional=True)
    x = Tensor(np.random.default_rng(38).standard_normal((4, 2, 2)))
    assert layer.training
    out_train, fin_train = run(kind, layer, x)
    layer.eval()
    out_eval, fin_eval = run(kind, layer, x)
    np.testing.assert_array_equal(out_train.data, out_eval.data)
    for a, b in zip(fin_train, fin_eval):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("num_layers, bidirectional, batch_first", [
    (1, False, False), (3, False, True), (2, True, False), (2, True, True),
])
@pytest.mark.parametrize("kind", KINDS)
def test_state_shapes(kind, num_layers, bidirectional, batch_first):
    T, N, I, H = 4, 3, 2, 5
    D = 2 if bidirectional else 1
    layer = make_layer(kind, I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    x = np.zeros((N, T, I) if batch_first else (T, N, I))
    for states in (None, random_states(kind, layer, np.random.default_rng(0), N)):
        output, finals = run(kind, layer, Tensor(x), states)
        assert output.shape == ((N, T, D * H) if batch_first else (T, N, D * H))
        assert [f.shape for f in finals] == [(D * num_layers, N, H)] * (2 if kind == "lstm" else 1)
        assert all(f.dtype == np.float64 for f in [output, *finals])


def test_float32_layer_stays_float32():
    tg.manual_seed(0)
    layer = nn.GRU(2, 3, num_layers=2)
    output, h_n = layer(Tensor(np.ones((3, 1, 2), dtype=np.float32)))
    assert output.dtype == np.float32 and h_n.dtype == np.float32


# =====================================================================================================
# 7. Long sequences: no recursion limit, memory linear in T
# =====================================================================================================
def test_ten_thousand_step_lstm_at_default_recursion_limit():
    T, I, H = 10_000, 2, 4
    layer = make_layer("lstm", I, H, seed=40)
    rng = np.random.default_rng(41)
    x_np = rng.standard_normal((T, 1, I))
    g_out = rng.standard_normal((T, 1, H))
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # CPython's default
    try:
        x = Tensor(x_np, requires_grad=True)
        output, (h_n, c_n) = layer(x)
        (output * Tensor(g_out)).sum().backward()
    finally:
        sys.setrecursionlimit(old_limit)
    # The gradient is right, not merely computed: compare with the handwritten BPTT.
    w = {n[:-3]: p.data for n, p in layer.named_parameters()}
    out_a, _, _, cache = analytic.lstm_forward(x_np, None, None, w["weight_ih"], w["weight_hh"],
                                               w["bias_ih"], w["bias_hh"])
    grads = analytic.lstm_backward(g_out, None, None, cache)
    np.testing.assert_allclose(output.data, out_a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(x.grad, grads["x"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.weight_hh_l0.grad, grads["weight_hh"], rtol=1e-9, atol=1e-12)


def test_memory_is_linear_in_sequence_length():
    layer = make_layer("lstm", 2, 4, seed=42)
    rng = np.random.default_rng(43)

    def peak(T):
        x = Tensor(rng.standard_normal((T, 1, 2)), requires_grad=True)
        tracemalloc.start()
        try:
            output, _ = layer(x)
            output.sum().backward()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(100)  # warm-up: first-call allocations are not part of the scaling
    small, large = peak(1000), peak(2000)
    assert large > small
    assert large / small < 2.6, f"peak memory {small} -> {large} bytes for T 1000 -> 2000"


# =====================================================================================================
# 8. Truncated BPTT
# =====================================================================================================
@pytest.mark.parametrize("kind", KINDS)
def test_truncated_bptt_chunks(kind):
    T, N, I, H = 10, 2, 3, 4
    layer = make_layer(kind, I, H, seed=44)
    rng = np.random.default_rng(45)
    x_np = rng.standard_normal((T, N, I))
    u = rng.standard_normal((5, N, H))

    # one long pass
    x_full = Tensor(x_np, requires_grad=True)
    out_full, _ = run(kind, layer, x_full)
    (out_full[5:] * Tensor(u)).sum().backward()
    full_x_grad = x_full.grad
    layer.zero_grad()

    # two chunks, the state detached at the boundary
    x1 = Tensor(x_np[:5], requires_grad=True)
    x2 = Tensor(x_np[5:], requires_grad=True)
    out1, fin1 = run(kind, layer, x1)
    boundary = [f.detach() for f in fin1]
    assert not any(b.requires_grad for b in boundary)
    out2, _ = run(kind, layer, x2, boundary)
    np.testing.assert_allclose(np.concatenate([out1.data, out2.data]), out_full.data, rtol=1e-13, atol=1e-15)
    (out2 * Tensor(u)).sum().backward()
    assert x1.grad is None                            # nothing crosses the boundary
    assert np.abs(full_x_grad[:5]).max() > 1e-6       # whereas the long pass does reach chunk 1
    np.testing.assert_allclose(x2.grad, full_x_grad[5:], rtol=1e-12, atol=1e-15)

    # the second chunk's parameter gradients are those of a run starting from a constant state
    w = {n[:-3]: p.data for n, p in layer.named_parameters()}
    args = (w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
    h0 = boundary[0].data[0]
    if kind == "lstm":
        _, _, _, cache = analytic.lstm_forward(x_np[5:], h0, boundary[1].data[0], *args)
        grads = analytic.lstm_backward(u, None, None, cache)
    elif kind == "gru":
        _, _, cache = analytic.gru_forward(x_np[5:], h0, *args)
        grads = analytic.gru_backward(u, None, cache)
    else:
        _, _, cache = analytic.rnn_forward(x_np[5:], h0, *args, nonlinearity=kind[4:])
        grads = analytic.rnn_backward(u, None, cache)
    np.testing.assert_allclose(x2.grad, grads["x"], rtol=1e-9, atol=1e-12)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name[:-3]], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_into_freed_previous_chunk_raises(kind):
    layer = make_layer(kind, 3, 4, seed=46)
    rng = np.random.default_rng(47)
    x1 = Tensor(rng.standard_normal((5, 2, 3)), requires_grad=True)
    x2 = Tensor(rng.standard_normal((5, 2, 3)), requires_grad=True)
    out1, fin1 = run(kind, layer, x1)
    out1.sum().backward()                              # frees chunk 1's graph
    out2, _ = run(kind, layer, x2, fin1)               # state NOT detached
    with pytest.raises(RuntimeError, match=r"(?s)second time.*detach"):
        out2.sum().backward()


# =====================================================================================================
# 9. Errors name the argument, the expected and the actual value
# =====================================================================================================
def _lstm_states(shape):
    return (Tensor(np.zeros(shape)), Tensor(np.zeros(shape)))


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_feature_size(kind):
    layer = make_layer(kind, 3, 4)
    with pytest.raises(ValueError, match="input_size. Expected 3, got 5"):
        run(kind, layer, Tensor(np.zeros((2, 1, 5))))


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_input_rank(kind):
    layer = make_layer(kind, 3, 4)
    with pytest.raises(ValueError, match=r"input.*2-D.*3-D.*got shape \(3,\)"):
        run(kind, layer, Tensor(np.zeros(3)))


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_hx_shape_names_expected_shape(kind):
    layer = make_layer(kind, 3, 4, num_layers=2)
    x = Tensor(np.zeros((5, 2, 3)))
    bad = (1, 2, 4)
    if kind == "lstm":
        with pytest.raises(ValueError, match=r"h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
            layer(x, _lstm_states(bad))
        with pytest.raises(ValueError, match=r"c_0 of shape \(2, 2, 4\), got \(2, 2, 3\)"):
            layer(x, (Tensor(np.zeros((2, 2, 4))), Tensor(np.zeros((2, 2, 3)))))
    else:
        with pytest.raises(ValueError, match=r"hx of shape \(2, 2, 4\), got \(1, 2, 4\)"):
            layer(x, Tensor(np.zeros(bad)))


@pytest.mark.parametrize("kind", KINDS)
def test_input_hx_batch_mismatch(kind):
    layer = make_layer(kind, 3, 4)
    x = Tensor(np.zeros((5, 2, 3)))
    states = [Tensor(np.zeros((1, 3, 4))) for _ in range(2 if kind == "lstm" else 1)]
    with pytest.raises(ValueError, match=r"of shape \(1, 2, 4\), got \(1, 3, 4\)"):
        run(kind, layer, x, states)
    # unbatched input with batched states is a mismatch too
    with pytest.raises(ValueError, match=r"of shape \(1, 4\), got \(1, 3, 4\)"):
        run(kind, layer, Tensor(np.zeros((5, 3))), states)


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_mismatch(kind):
    tg.manual_seed(0)
    layer = make_layer(kind, 3, 4).float()
    with pytest.raises(TypeError, match="input dtype float64 differs from the parameters' float32"):
        run(kind, layer, Tensor(np.zeros((2, 1, 3))))
    with pytest.raises(TypeError, match="dtype float64 differs from the parameters' float32"):
        states = [Tensor(np.zeros((1, 1, 4))) for _ in range(2 if kind == "lstm" else 1)]
        run(kind, layer, Tensor(np.zeros((2, 1, 3), dtype=np.float32)), states)


@pytest.mark.parametrize("lengths, exc, pattern", [
    ([0, 3], ValueError, r"lengths must lie in \[1, 3\].*got \[0, 3\]"),
    ([4, 2], ValueError, r"lengths must lie in \[1, 3\].*got \[4, 2\]"),
    ([3, -1], ValueError, r"lengths must lie in \[1, 3\].*got \[3, -1\]"),
    ([3, 2, 1], ValueError, r"lengths must have one entry per batch element: expected 2, got 3"),
    ([3], ValueError, r"lengths must have one entry per batch element: expected 2, got 1"),
    ([1.5, 2.0], TypeError, r"lengths must be a 1-D sequence of ints, got \[1\.5, 2\.0\]"),
    ([[1, 2]], TypeError, r"lengths must be a 1-D sequence of ints, got \[\[1, 2\]\]"),
])
def test_bad_lengths(lengths, exc, pattern):
    layer = make_layer("gru", 3, 4)
    with pytest.raises(exc, match=pattern):
        layer(Tensor(np.zeros((3, 2, 3))), lengths=lengths)


def test_unbatched_input_takes_one_length():
    layer = make_layer("rnn_tanh", 3, 4)
    with pytest.raises(ValueError, match="lengths.*expected 1, got 2"):
        layer(Tensor(np.zeros((3, 3))), lengths=[3, 2])


@pytest.mark.parametrize("cls", [nn.RNN, nn.RNNCell])
def test_unknown_nonlinearity(cls):
    with pytest.raises(ValueError, match="nonlinearity 'gelu'; expected 'tanh' or 'relu'.*'sigmoid'.*callable"):
        cls(3, 4, nonlinearity="gelu")


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell])
@pytest.mark.parametrize("args, name, value", [
    ((0, 4), "input_size", 0), ((3, 0), "hidden_size", 0), ((-2, 4), "input_size", -2),
    ((3, -1), "hidden_size", -1),
])
def test_non_positive_sizes(cls, args, name, value):
    with pytest.raises(ValueError, match=f"{name} must be >= 1, got {value}"):
        cls(*args)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_non_positive_num_layers_and_non_int_sizes(cls):
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        cls(3, 4, num_layers=0)
    with pytest.raises(TypeError, match="hidden_size must be an int, got float"):
        cls(3, 4.0)


@pytest.mark.parametrize("dropout", [-0.1, 1.5])
@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_dropout_outside_unit_interval(cls, dropout):
    with pytest.raises(ValueError, match=rf"dropout should be a number in range \[0, 1\], got {dropout}"):
        cls(3, 4, num_layers=2, dropout=dropout)


@pytest.mark.parametrize("hx, got", [
    (Tensor(np.zeros((1, 2, 4))), "Tensor"),
    ((Tensor(np.zeros((1, 2, 4))),), "tuple of length 1"),
])
def test_lstm_hx_must_be_a_pair(hx, got):
    layer = make_layer("lstm", 3, 4)
    with pytest.raises(TypeError, match=rf"hx must be a tuple \(h_0, c_0\), got {got}"):
        layer(Tensor(np.zeros((5, 2, 3))), hx)


def test_lstm_cell_state_must_be_a_pair():
    cell = make_cell("lstm", 3, 4)
    with pytest.raises(TypeError, match=r"state must be a tuple \(h, c\), got Tensor"):
        cell(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 4))))


@pytest.mark.parametrize("kind", KINDS)
def test_cell_input_errors(kind):
    cell = make_cell(kind, 3, 4)
    call = (lambda x, s: cell(x, (s, s))) if kind == "lstm" else (lambda x, s: cell(x, s))
    with pytest.raises(ValueError, match="input_size. Expected 3, got 2"):
        call(Tensor(np.zeros((2, 2))), None if kind != "lstm" else Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"of shape \(2, 4\), got \(3, 4\)"):
        call(Tensor(np.zeros((2, 3))), Tensor(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"1-D \(I,\) or 2-D \(N, I\), got shape \(1, 2, 3\)"):
        call(Tensor(np.zeros((1, 2, 3))), None if kind != "lstm" else Tensor(np.zeros((2, 4))))
    with pytest.raises(TypeError, match="input dtype float32 differs from the parameters' float64"):
        call(Tensor(np.zeros((2, 3), dtype=np.float32)), Tensor(np.zeros((2, 4))))


@pytest.mark.parametrize("dropout", [np.float32(0.25), np.int64(1)])
def test_dropout_accepts_numpy_scalars(dropout):
    layer = nn.GRU(3, 4, num_layers=2, dropout=dropout)
    assert layer.dropout == float(dropout) and type(layer.dropout) is float


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_protocol_step_equals_the_pytorch_style_call(kind):
    """step(x, state) -> (output, new_state), the protocol a sequence layer unrolls, gives what
    cell(x, state) gives."""
    cell = getattr(nn, kind)(3, 4).to(np.float64)
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3)))
    state = tuple(Tensor(rng.standard_normal((2, 4))) for _ in cell.state_size)
    assert all(s.shape == (2, 4) for s in cell.initial_state(2)) and cell.output_size == 4
    output, new_state = cell.step(x, state)
    expected = cell(x, state if kind == "LSTMCell" else state[0])
    expected = expected if isinstance(expected, tuple) else (expected,)
    np.testing.assert_array_equal(output.data, expected[0].data)
    for got, want in zip(new_state, expected):
        np.testing.assert_array_equal(got.data, want.data)
