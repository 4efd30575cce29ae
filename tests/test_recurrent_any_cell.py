"""nn.Recurrent with cells written by a user: the same numbers as nn.LSTM/nn.GRU/nn.RNN with the
same weights (float64, 1e-12) in every configuration, padding on either side, masks, errors."""
import itertools

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, ops
from tinygrad_rnn.tensor import run_backward


class UserLSTMCell(nn.Module):
    """An LSTM cell as a user writes it: one Linear over cat([x, h])."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    state_size = property(lambda self: (self.hidden_size, self.hidden_size))
    output_size = property(lambda self: self.hidden_size)

    def initial_state(self, batch, dtype):
        return (tg.zeros(batch, self.hidden_size, dtype=dtype), tg.zeros(batch, self.hidden_size, dtype=dtype))

    def step(self, x, state):
        h, c = state
        i, f, g, o = ops.chunk(self.gates(ops.cat([x, h], axis=-1)), 4, axis=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        return h, (h, c)


class UserSigmoidRNNCell(nn.Module):
    """A vanilla RNN cell with a sigmoid: h' = σ(Linear(cat([x, h])))."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.linear = nn.Linear(input_size + hidden_size, hidden_size)

    state_size = property(lambda self: (self.hidden_size,))
    output_size = property(lambda self: self.hidden_size)

    def initial_state(self, batch, dtype):
        return (tg.zeros(batch, self.hidden_size, dtype=dtype),)

    def step(self, x, state):
        h = self.linear(ops.cat([x, state[0]], axis=-1)).sigmoid()
        return h, (h,)


def _user_lstm_like(layer, cell_cls=UserLSTMCell, mode="LSTM"):
    """A Recurrent of user cells holding exactly the weights of an nn.LSTM/nn.RNN ``layer``."""
    D = 2 if layer.bidirectional else 1
    rec = nn.Recurrent(lambda n: cell_cls(n, layer.hidden_size), num_layers=layer.num_layers,
                       bidirectional=layer.bidirectional, batch_first=layer.batch_first,
                       input_size=layer.input_size).double()
    for k, d in itertools.product(range(layer.num_layers), range(D)):
        sfx = "_reverse" if d else ""
        lin = getattr(rec, f"cell_l{k}{sfx}")
        lin = lin.gates if mode == "LSTM" else lin.linear
        get = lambda n: getattr(layer, f"{n}_l{k}{sfx}").data  # noqa: E731
        lin.weight.data = np.concatenate([get("weight_ih"), get("weight_hh")], axis=1)
        lin.bias.data = get("bias_ih") + get("bias_hh")
    return rec


def _weight_grads(rec, layer, mode="LSTM"):
    """The user cells' Linear gradients, split back into PyTorch's names."""
    grads = {}
    for k, d in itertools.product(range(layer.num_layers), range(layer.num_directions)):
        sfx = "_reverse" if d else ""
        cell = getattr(rec, f"cell_l{k}{sfx}")
        lin = cell.gates if mode == "LSTM" else cell.linear
        n_in = getattr(layer, f"weight_ih_l{k}{sfx}").shape[1]
        grads[f"weight_ih_l{k}{sfx}"] = lin.weight.grad[:, :n_in]
        grads[f"weight_hh_l{k}{sfx}"] = lin.weight.grad[:, n_in:]
        grads[f"bias_hh_l{k}{sfx}"] = lin.bias.grad
    return grads


def _left_pad(x_right, lengths, time_axis):
    """Move each sequence's valid steps to the end (padding in front), keeping the padding values."""
    out = np.zeros_like(x_right)
    steps = x_right.shape[time_axis]
    for b, n in enumerate(lengths):
        src = np.take(np.take(x_right, b, axis=1 - time_axis), np.arange(steps), axis=0)
        order = np.r_[np.arange(n, steps), np.arange(n)]   # padding first, then the data
        if time_axis == 0:
            out[:, b] = src[order]
        else:
            out[b] = src[order]
    return out


CONFIGS = list(itertools.product([1, 2], [False, True], [False, True],
                                 ["none", "lengths", "mask", "left_lengths", "left_mask"]))


@pytest.mark.parametrize("layers, bidirectional, batch_first, padding", CONFIGS)
def test_user_lstm_cell_equals_nn_lstm(layers, bidirectional, batch_first, padding):
    tg.manual_seed(layers * 10 + bidirectional * 2 + batch_first)
    I, H, L = 3, 4, 6
    lengths = np.array([6, 2, 4])
    N = len(lengths)
    lstm = nn.LSTM(I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first).double()
    rec = _user_lstm_like(lstm)
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal((N, L, I) if batch_first else (L, N, I))
    D = 2 if bidirectional else 1
    h0 = rng.standard_normal((D * layers, N, H)) * 0.5
    c0 = rng.standard_normal((D * layers, N, H)) * 0.5
    time_axis = 1 if batch_first else 0
    steps = np.arange(L)[:, None]
    right_mask = steps < lengths[None, :]                       # (L, N)
    left_mask = steps >= (L - lengths)[None, :]

    g = np.random.default_rng(9)
    out_shape = x_np.shape[:-1] + (D * H,)
    gs = [g.standard_normal(out_shape), g.standard_normal(h0.shape), g.standard_normal(c0.shape)]

    def run(module, x_arr, left=False, **kwargs):
        x = Tensor(x_arr, requires_grad=True)
        h, c = Tensor(h0, requires_grad=True), Tensor(c0, requires_grad=True)
        out, (h_n, c_n) = module(x, (h, c), **kwargs)
        # the upstream gradient follows its step when the data move to the end
        gs_here = [_left_pad(gs[0], lengths, time_axis) if left else gs[0]] + gs[1:]
        run_backward([out, h_n, c_n], gs_here, retain_graph=False)
        return out.data, h_n.data, c_n.data, x.grad, h.grad, c.grad

    # the reference: nn.LSTM (checked against PyTorch's fixtures) with right padding and lengths
    ref_kwargs = {} if padding == "none" else {"lengths": lengths}
    ref = run(lstm, x_np, **ref_kwargs)
    ref_grads = {n: p.grad.copy() for n, p in lstm.named_parameters()}
    for p in lstm.parameters():
        p.grad = None

    as_layout = (lambda m: m.T) if batch_first else (lambda m: m)
    identity = lambda a, axis: a  # noqa: E731

    def unshift_left(a, axis):  # left-padded per-step arrays back to right padding
        back = np.zeros_like(a)
        for b, n in enumerate(lengths):
            order = np.r_[np.arange(L - n, L), np.arange(L - n)]
            if axis == 0:
                back[:, b] = a[order, b]
            else:
                back[b] = a[b, order]
        return back

    if padding in ("none", "lengths"):
        x_in, kwargs, unshift = x_np, ref_kwargs, identity
    elif padding == "mask":   # a mask with the right-padding pattern: the same as lengths
        x_in, kwargs, unshift = x_np, {"mask": as_layout(right_mask)}, identity
    else:
        x_in, unshift = _left_pad(x_np, lengths, time_axis), unshift_left
        kwargs = ({"lengths": lengths, "padding_side": "left"} if padding == "left_lengths"
                  else {"mask": as_layout(left_mask)})
    left = padding.startswith("left")
    got = run(rec, x_in, left, **kwargs)
    builtin = run(lstm, x_in, left, **kwargs)

    for name, r, a, b in zip(["output", "h_n", "c_n", "dx", "dh0", "dc0"], ref, got, builtin):
        if name in ("output", "dx"):
            a, b = unshift(a, time_axis), unshift(b, time_axis)
        if name == "dx" and padding != "none":   # padding receives no gradient
            r = r * as_layout(right_mask)[..., None] if not batch_first else r * right_mask.T[..., None]
        np.testing.assert_allclose(a, r, rtol=0, atol=1e-12, err_msg=f"user cell: {name}")
        np.testing.assert_allclose(b, r, rtol=0, atol=1e-12, err_msg=f"nn.LSTM: {name}")
    for name, g in _weight_grads(rec, lstm).items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=0, atol=1e-12, err_msg=name)


def test_sigmoid_rnn_user_cell_equals_nn_rnn_sigmoid_and_callable():
    tg.manual_seed(3)
    rnn = nn.RNN(3, 5, num_layers=2, nonlinearity="sigmoid", bidirectional=True).double()
    rec = _user_lstm_like(rnn, UserSigmoidRNNCell, mode="RNN")
    x = np.random.default_rng(1).standard_normal((7, 2, 3))
    out_ref, h_ref = rnn(Tensor(x), lengths=[7, 3])
    out, h = rec(Tensor(x), lengths=[7, 3])
    np.testing.assert_allclose(out.data, out_ref.data, atol=1e-12, rtol=0)
    np.testing.assert_allclose(h.data, h_ref.data, atol=1e-12, rtol=0)
    # by hand: the first step is sigmoid(x W_ihᵀ + b_ih + b_hh)
    one = nn.RNN(3, 5, nonlinearity="sigmoid").double()
    first = 1 / (1 + np.exp(-(x[0] @ one.weight_ih_l0.data.T + one.bias_ih_l0.data + one.bias_hh_l0.data)))
    np.testing.assert_allclose(one(Tensor(x))[0].data[0], first, atol=1e-12)
    # a callable nonlinearity: the same numbers as the name
    same = nn.RNN(3, 5, num_layers=2, nonlinearity=lambda t: t.sigmoid(), bidirectional=True).double()
    same.load_state_dict(rnn.state_dict())
    np.testing.assert_allclose(same(Tensor(x))[0].data, rnn(Tensor(x))[0].data, atol=1e-15)
    cell = nn.RNNCell(3, 5, nonlinearity="sigmoid").double()
    assert np.all(cell(Tensor(x[0])).data > 0)


def test_builtin_cells_run_through_recurrent_as_the_layers_do():
    tg.manual_seed(4)
    gru = nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    cells = []
    for k in range(2):
        for sfx in ("", "_reverse"):
            c = nn.GRUCell(3 if k == 0 else 8, 4).double()
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(c, n).data = getattr(gru, f"{n}_l{k}{sfx}").data.copy()
            cells.append(c)
    rec = nn.Recurrent(cells, num_layers=2, bidirectional=True)
    assert [n for n, _ in rec.named_parameters()][:2] == ["cell_l0.weight_ih", "cell_l0.weight_hh"]
    x = Tensor(np.random.default_rng(2).standard_normal((5, 3, 3)))
    for kwargs in ({}, {"lengths": [5, 1, 3]}):
        a, b = gru(x, **kwargs), rec(x, **kwargs)
        np.testing.assert_allclose(b[0].data, a[0].data, atol=1e-12, rtol=0)
        np.testing.assert_allclose(b[1].data, a[1].data, atol=1e-12, rtol=0)


def test_left_padding_with_lengths_differs_unless_padding_side_says_so():
    """The bug the issue reports: zeros in front change the state through the biases."""
    tg.manual_seed(0)
    lstm = nn.LSTM(2, 3).double()
    x = np.zeros((4, 1, 2))
    x[2:, 0] = [[1.0, -1.0], [0.5, 0.2]]
    _, (h_plain, _) = lstm(Tensor(x[2:]))
    _, (h_left, _) = lstm(Tensor(x), lengths=[2], padding_side="left")
    np.testing.assert_allclose(h_left.data, h_plain.data, atol=1e-14)
    _, (h_unmasked, _) = lstm(Tensor(x))
    assert not np.allclose(h_unmasked.data, h_plain.data)


def test_single_cell_sequence_layer_scopes_and_gradient_flow():
    tg.manual_seed(1)
    rec = nn.Recurrent(UserSigmoidRNNCell(2, 3)).double()
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 2)))
    out, h = rec(x)
    assert out.shape == (5, 2, 3) and h.shape == (1, 2, 3)
    assert out.parents[2].scope == "recurrent/l0/fwd/t2"
    flow = tg.viz.gradient_flow(rec, x)
    assert flow.shape == (5,) and flow[-1] > 0 and np.all(np.isfinite(flow))


def test_dropout_between_user_cell_layers_only_in_training():
    tg.manual_seed(2)
    rec = nn.Recurrent(lambda n: UserSigmoidRNNCell(n, 4), num_layers=2, dropout=0.5, input_size=3).double()
    x = Tensor(np.random.default_rng(0).standard_normal((4, 2, 3)))
    rec.eval()
    a, b = rec(x)[0].data, rec(x)[0].data
    np.testing.assert_array_equal(a, b)
    rec.train()
    assert not np.allclose(rec(x)[0].data, a)


def test_compiled_training_step_matches_eager_with_user_cells_and_a_mask():
    tg.manual_seed(6)
    rec = nn.Recurrent(lambda n: UserLSTMCell(n, 3), num_layers=2, bidirectional=True, input_size=2).double()

    def step(x, mask):
        rec.zero_grad()
        out, _ = rec(x, mask=mask)
        loss = (out * out).sum()
        loss.backward()
        return loss

    compiled = tg.compile(step, check=True)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((5, 2, 2))
        mask = rng.random((5, 2)) < 0.7
        compiled(x, mask)


@pytest.mark.parametrize("bad, exc, pattern", [
    (object(), TypeError, "cell must be a cell, a factory"),
    (UserSigmoidRNNCell, TypeError, "got the class UserSigmoidRNNCell; pass e.g. cell=lambda input_size"),
    ([UserSigmoidRNNCell(2, 3)], ValueError, r"needs num_layers \* D = 2 cells"),
])
def test_bad_cells_name_the_argument(bad, exc, pattern):
    with pytest.raises(exc, match=pattern):
        nn.Recurrent(bad, num_layers=2)


def test_a_cell_without_the_protocol_is_named():
    class Half(nn.Module):
        def step(self, x, state):
            return x, state
    with pytest.raises(TypeError, match="cell must follow the cell protocol.*Half lacks state_size, output_size, "
                                        "initial_state"):
        nn.Recurrent(Half())
    with pytest.raises(TypeError, match=r"cell\[1\] must follow the cell protocol"):
        nn.Recurrent([UserSigmoidRNNCell(2, 3), Half()], bidirectional=True)
    with pytest.raises(TypeError, match=r"cell\(2\) \(layer 0, direction 0\) must follow the cell protocol"):
        nn.Recurrent(lambda n: Half(), input_size=2)
    with pytest.raises(ValueError, match="input_size is required when cell is a factory"):
        nn.Recurrent(lambda n: UserSigmoidRNNCell(n, 3))
    with pytest.raises(ValueError, match="one cell serves one layer in one direction.*factory"):
        nn.Recurrent(UserSigmoidRNNCell(2, 3), bidirectional=True)
    shared = UserSigmoidRNNCell(2, 3)
    with pytest.raises(ValueError, match="returned the same cell twice"):
        nn.Recurrent(lambda n: shared, bidirectional=True, input_size=2)


def test_mask_and_padding_errors_name_the_argument():
    lstm = nn.LSTM(2, 3, batch_first=True).double()
    x = Tensor(np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match=r"mask must have the input's leading axes \(N, L\) \(batch_first\) = "
                                         r"\(4, 5\), got \(5, 4\)"):
        lstm(x, mask=np.ones((5, 4), dtype=bool))
    with pytest.raises(TypeError, match="mask must be a Tensor or np.ndarray"):
        lstm(x, mask="all")
    with pytest.raises(ValueError, match="pass lengths or mask, not both"):
        lstm(x, lengths=[5, 5, 5, 5], mask=np.ones((4, 5), dtype=bool))
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left', got 'top'"):
        lstm(x, lengths=[5, 5, 5, 5], padding_side="top")


def test_a_cell_returning_the_wrong_state_is_named():
    class Wrong(UserSigmoidRNNCell):
        def step(self, x, state):
            h = self.linear(ops.cat([x, state[0]], axis=-1))
            return h, (h, h)
    with pytest.raises(ValueError, match="cell.step returned 2 state tensors, but state_size has 1"):
        nn.Recurrent(Wrong(2, 3)).double()(Tensor(np.zeros((3, 1, 2))))


def test_proj_size_shapes_and_errors():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    names = [n for n, _ in lstm.named_parameters()][:5]
    assert names == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert lstm.weight_hh_l0.shape == (20, 2) and lstm.weight_ih_l1.shape == (20, 4)
    out, (h, c) = lstm(Tensor(np.zeros((4, 2, 3), dtype=np.float32)))
    assert out.shape == (4, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 5)
    with pytest.raises(ValueError, match=r"proj_size has to be smaller than hidden_size \(5\), got 5"):
        nn.LSTM(3, 5, proj_size=5)
    with pytest.raises(ValueError, match="proj_size must be >= 0, got -1"):
        nn.LSTM(3, 5, proj_size=-1)
