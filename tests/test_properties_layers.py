"""Property-based tests of the sequence layers (hypothesis): random cell kind, number of layers,
direction(s), batch_first, sizes, bias and per-sequence lengths, in float64, against a reference
assembled here from the handwritten single-layer BPTT of ``tinygrad_rnn.analytic``: every layer,
direction and sequence runs ``*_forward``/``*_backward`` on its own valid steps (the reverse
direction on the reversed valid prefix), and the layers are chained by hand. Outputs, final
states and the gradients of x, of the initial states and of every parameter must agree.

The "default" hypothesis profile (tests/conftest.py) tries a fixed set of examples;
``TINYGRAD_RNN_HYPOTHESIS_PROFILE=nightly`` tries many random ones.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, analytic, nn
from tinygrad_rnn.engine import run_backward
from tinygrad_rnn.testing import assert_close

TOL = dict(rtol=1e-9, atol=1e-11)


def run_direction(kind, x, h0, c0, w):
    """One direction over one sequence x (T, 1, I): (out, h_n, c_n, cache)."""
    if kind == "lstm":
        return analytic.lstm_forward(x, h0, c0, *w)
    if kind == "gru":
        out, h, cache = analytic.gru_forward(x, h0, *w)
    else:
        out, h, cache = analytic.rnn_forward(x, h0, *w, nonlinearity=kind[4:])
    return out, h, None, cache


def back_direction(kind, d_out, d_h, d_c, cache):
    if kind == "lstm":
        return analytic.lstm_backward(d_out, d_h, d_c, cache)
    if kind == "gru":
        return analytic.gru_backward(d_out, d_h, cache)
    return analytic.rnn_backward(d_out, d_h, cache)


def reference(kind, params, layers, dirs, H, x, h0, c0, lengths, g_out, g_h, g_c):
    """Forward and backward of the whole stack from analytic pieces, time-major x (T, N, I)."""
    T, N, _ = x.shape
    lstm = kind == "lstm"
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    weights = lambda l, d: tuple(params.get(f"{n}_l{l}{'_reverse' if d else ''}") for n in names)  # noqa: E731
    h_n, c_n = np.zeros((layers * dirs, N, H)), np.zeros((layers * dirs, N, H))
    caches, inputs = {}, [x]
    for l in range(layers):
        out = np.zeros((T, N, dirs * H))
        for d in range(dirs):
            k = l * dirs + d
            for b in range(N):
                seq = inputs[-1][:lengths[b], b:b + 1]
                seq = seq[::-1] if d else seq
                o, h, c, cache = run_direction(kind, np.ascontiguousarray(seq), h0[k, b:b + 1],
                                               c0[k, b:b + 1] if lstm else None, weights(l, d))
                out[:lengths[b], b, d * H:(d + 1) * H] = (o[::-1] if d else o)[:, 0]
                h_n[k, b] = h[0]
                if lstm:
                    c_n[k, b] = c[0]
                caches[l, d, b] = cache
        inputs.append(out)
    output = inputs[-1]

    grads = {name: np.zeros_like(p) for name, p in params.items()}
    d_h0, d_c0 = np.zeros_like(h0), np.zeros_like(c0)
    d_layer = g_out.copy()
    for l in reversed(range(layers)):
        d_input = np.zeros_like(inputs[l])
        for d in range(dirs):
            k = l * dirs + d
            for b in range(N):
                d_o = d_layer[:lengths[b], b:b + 1, d * H:(d + 1) * H]
                d_o = d_o[::-1] if d else d_o
                g = back_direction(kind, np.ascontiguousarray(d_o), g_h[k, b:b + 1],
                                   g_c[k, b:b + 1] if lstm else None, caches[l, d, b])
                d_x = g["x"][::-1] if d else g["x"]
                d_input[:lengths[b], b] += d_x[:, 0]
                d_h0[k, b] = g["h0"][0]
                if lstm:
                    d_c0[k, b] = g["c0"][0]
                for n in names:
                    key = f"{n}_l{l}{'_reverse' if d else ''}"
                    if key in grads:
                        grads[key] += g[n]
        d_layer = d_input
    return output, h_n, c_n, d_layer, d_h0, d_c0, grads


@st.composite
def layer_configs(draw):
    T = draw(st.integers(1, 5))
    N = draw(st.integers(1, 3))
    return dict(
        kind=draw(st.sampled_from(["rnn_tanh", "rnn_relu", "lstm", "gru"])),
        layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()), bias=draw(st.booleans()),
        input_size=draw(st.integers(1, 4)), hidden=draw(st.integers(1, 5)), T=T, N=N,
        lengths=draw(st.one_of(st.none(), st.lists(st.integers(1, T), min_size=N, max_size=N))),
        seed=draw(st.integers(0, 2**16)))


@given(config=layer_configs())
def test_random_layers_agree_with_the_analytic_reference(config):
    kind, L, T, N, H = config["kind"], config["layers"], config["T"], config["N"], config["hidden"]
    dirs = 2 if config["bidirectional"] else 1
    lstm = kind == "lstm"
    tg.manual_seed(config["seed"])
    common = dict(num_layers=L, bias=config["bias"], batch_first=config["batch_first"],
                  bidirectional=config["bidirectional"])
    if kind.startswith("rnn"):
        layer = nn.RNN(config["input_size"], H, nonlinearity=kind[4:], **common)
    else:
        layer = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](config["input_size"], H, **common)
    layer.double()

    rng = np.random.default_rng(config["seed"])
    x = rng.standard_normal((T, N, config["input_size"]))
    h0, c0 = rng.standard_normal((L * dirs, N, H)), rng.standard_normal((L * dirs, N, H))
    g_out, g_h, g_c = rng.standard_normal((T, N, dirs * H)), rng.standard_normal(h0.shape), rng.standard_normal(c0.shape)
    lengths = config["lengths"]

    # ours (batch_first: the same data, transposed)
    bf = config["batch_first"]
    xt = Tensor(x.transpose(1, 0, 2).copy() if bf else x.copy(), requires_grad=True)
    h0t, c0t = Tensor(h0.copy(), requires_grad=True), Tensor(c0.copy(), requires_grad=True)
    out, state = layer(xt, (h0t, c0t) if lstm else h0t, lengths=lengths)
    finals = list(state) if lstm else [state]
    g_out_ours = g_out.transpose(1, 0, 2).copy() if bf else g_out
    run_backward([out] + finals, [g_out_ours, g_h] + ([g_c] if lstm else []), retain_graph=False)

    params = {name: p.data for name, p in layer.named_parameters()}
    ref_out, ref_h, ref_c, ref_dx, ref_dh0, ref_dc0, ref_grads = reference(
        kind, params, L, dirs, H, x, h0, c0, lengths or [T] * N, g_out, g_h, g_c)

    assert_close(out.data.transpose(1, 0, 2) if bf else out.data, ref_out, **TOL, msg="output")
    assert_close(finals[0], ref_h, **TOL, msg="h_n")
    assert_close(xt.grad.transpose(1, 0, 2) if bf else xt.grad, ref_dx, **TOL, msg="d x")
    assert_close(h0t.grad, ref_dh0, **TOL, msg="d h_0")
    if lstm:
        assert_close(finals[1], ref_c, **TOL, msg="c_n")
        assert_close(c0t.grad, ref_dc0, **TOL, msg="d c_0")
    for name, p in layer.named_parameters():
        assert_close(p.grad, ref_grads[name], **TOL, msg=f"d {name}")
