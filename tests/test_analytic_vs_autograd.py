"""The layers built from engine ops against the handwritten NumPy BPTT in ``tinygrad_rnn.analytic``.

The two share no code: a single-layer, unidirectional ``nn.RNN/LSTM/GRU`` in float64 has its
weights copied into ``analytic.*_forward``; outputs, final states and every gradient (input,
initial states, each weight and bias) must agree to ~1e-9 relative. Losses put random,
non-uniform upstream gradients on the output, on the final states, or on all of them.
"""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, analytic, nn

TOL = dict(rtol=1e-9, atol=1e-12)
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
I, H = 3, 4


def _make_layer(kind: str, bias: bool = True, seed: int = 0):
    tg.manual_seed(seed)
    if kind.startswith("rnn"):
        layer = nn.RNN(I, H, nonlinearity=kind[4:], bias=bias)
    elif kind == "lstm":
        layer = nn.LSTM(I, H, bias=bias)
    else:
        layer = nn.GRU(I, H, bias=bias)
    return layer.double()


def _analytic_forward(kind, layer, x, h0, c0):
    w = {name[:-3]: p.data for name, p in layer.named_parameters()}  # strip "_l0"
    args = (w["weight_ih"], w["weight_hh"], w.get("bias_ih"), w.get("bias_hh"))
    if kind == "lstm":
        out, h_n, c_n, cache = analytic.lstm_forward(x, h0, c0, *args)
        return out, h_n, c_n, cache
    if kind == "gru":
        out, h_n, cache = analytic.gru_forward(x, h0, *args)
    else:
        out, h_n, cache = analytic.rnn_forward(x, h0, *args, nonlinearity=kind[4:])
    return out, h_n, None, cache


def _analytic_backward(kind, d_out, d_h, d_c, cache):
    if kind == "lstm":
        return analytic.lstm_backward(d_out, d_h, d_c, cache)
    if kind == "gru":
        return analytic.gru_backward(d_out, d_h, cache)
    return analytic.rnn_backward(d_out, d_h, cache)


def _compare(kind, T, N, with_state, loss_on, bias=True, seed=0):
    rng = np.random.default_rng(seed + 1000 * T + 10 * N)
    layer = _make_layer(kind, bias=bias, seed=seed)
    lstm = kind == "lstm"
    x_np = rng.standard_normal((T, N, I))
    h0_np = rng.standard_normal((N, H)) if with_state else None
    c0_np = rng.standard_normal((N, H)) if with_state and lstm else None

    x = Tensor(x_np, requires_grad=True)
    h0 = Tensor(h0_np[None], requires_grad=True) if with_state else None
    c0 = Tensor(c0_np[None], requires_grad=True) if c0_np is not None else None
    if lstm:
        output, (h_n, c_n) = layer(x, (h0, c0) if with_state else None)
    else:
        output, h_n = layer(x, h0)
        c_n = None

    # Random upstream gradients; a result left out of the loss gets None (zero) analytically.
    g_out = rng.standard_normal((T, N, H)) if loss_on in ("output", "all") else None
    g_h = rng.standard_normal((N, H)) if loss_on in ("states", "all") else None
    g_c = rng.standard_normal((N, H)) if lstm and loss_on in ("states", "all", "c_n") else None
    terms = []
    if g_out is not None:
        terms.append((output * Tensor(g_out)).sum())
    if g_h is not None:
        terms.append((h_n * Tensor(g_h[None])).sum())
    if g_c is not None:
        terms.append((c_n * Tensor(g_c[None])).sum())
    loss = terms[0]
    for term in terms[1:]:
        loss = loss + term
    loss.backward()

    out_a, h_a, c_a, cache = _analytic_forward(kind, layer, x_np, h0_np, c0_np)
    np.testing.assert_allclose(output.data, out_a, **TOL, err_msg="output")
    np.testing.assert_allclose(h_n.data[0], h_a, **TOL, err_msg="h_n")
    if lstm:
        np.testing.assert_allclose(c_n.data[0], c_a, **TOL, err_msg="c_n")

    grads = _analytic_backward(kind, g_out, g_h, g_c, cache)
    np.testing.assert_allclose(x.grad, grads["x"], **TOL, err_msg="dL/dx")
    if with_state:
        np.testing.assert_allclose(h0.grad[0], grads["h0"], **TOL, err_msg="dL/dh0")
    if c0 is not None:
        np.testing.assert_allclose(c0.grad[0], grads["c0"], **TOL, err_msg="dL/dc0")
    names = [n for n, _ in layer.named_parameters()]
    assert names == (["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if bias else []))
    for name, p in layer.named_parameters():
        expected = grads[name[:-3]]
        assert expected is not None, name
        np.testing.assert_allclose(p.grad, expected, **TOL, err_msg=f"dL/d{name}")
    # The analytic gradients are not trivially zero, so agreement means something.
    assert np.abs(grads["x"]).max() > 1e-3


@pytest.mark.parametrize("loss_on", ["output", "states", "all"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "nostate"])
@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("T", [1, 2, 7, 50])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_matches_analytic_bptt(kind, T, N, with_state, loss_on):
    _compare(kind, T, N, with_state, loss_on)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_without_bias_matches_analytic_bptt(kind):
    _compare(kind, 7, 3, True, "all", bias=False)


@pytest.mark.parametrize("T", [1, 7])
def test_lstm_loss_on_cell_state_only(T):
    # Only c_n feeds the loss: the output and h_n receive no gradient at all.
    _compare("lstm", T, 2, True, "c_n")


def test_mismatch_is_detected():
    # The comparison is sharp: a 1e-7 change of one weight after the forward breaks it.
    layer = _make_layer("gru")
    x_np = np.random.default_rng(0).standard_normal((5, 2, I))
    output, _ = layer(Tensor(x_np))
    layer.weight_hh_l0.data = layer.weight_hh_l0.data.copy()
    layer.weight_hh_l0.data[0, 0] += 1e-7
    out_a, _, _, _ = _analytic_forward("gru", layer, x_np, None, None)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(output.data, out_a, **TOL)
