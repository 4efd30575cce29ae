"""Fused time-step ops: one graph node per RNN/LSTM/GRU step, whose backward is the handwritten
analytic step (the same derivatives as :mod:`tinygrad_rnn.analytic`).

Sequence layers use them with ``impl="fused"``; the default ``impl="composed"`` builds each step
from elementary ops (:mod:`tinygrad_rnn.nn.cells`), which is what a learner should read. The two
agree to rounding (tested); the fused path trades readability of the graph for speed, because
per-node Python overhead dominates small recurrent nets.

The LSTM state travels as one array ``hc = [h | c]`` of shape ``(N, 2H)``, so a step is a single
node with a single output; the layer slices ``h`` out of it for the outputs.
"""
from __future__ import annotations

import numpy as np

from ..tensor import OuterGrad, Tensor, constant, needs_grad, record


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = ½(1 + tanh(x/2)), in place on a fresh array (no overflow for large |x|)."""
    y = np.multiply(x, 0.5)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y


def lstm_cell(gx: Tensor, hc: Tensor, whh_t: Tensor) -> Tensor:
    """gates = gx + h W_hhᵀ split [i | f | g | o]; c' = σf·c + σi·tanh g; h' = σo·tanh c'.
    Returns [h' | c']."""
    hidden = hc.shape[-1] // 2
    h, c = hc.data[:, :hidden], hc.data[:, hidden:]
    gates = h @ whh_t.data
    gates += gx.data
    act = np.empty_like(gates)
    act[:, :2 * hidden] = _sigmoid(gates[:, :2 * hidden])          # i, f
    act[:, 3 * hidden:] = _sigmoid(gates[:, 3 * hidden:])          # o
    np.tanh(gates[:, 2 * hidden:3 * hidden], out=act[:, 2 * hidden:3 * hidden])  # g
    i, f, g, o = (act[:, k * hidden:(k + 1) * hidden] for k in range(4))
    out = np.empty_like(hc.data)
    c_new = out[:, hidden:]
    np.multiply(f, c, out=c_new)
    c_new += i * g
    tanh_c = np.tanh(c_new)
    np.multiply(o, tanh_c, out=out[:, :hidden])
    if not needs_grad(gx, hc, whh_t):
        return constant(out)

    def backward(grad):
        dh, dc_in = grad[:, :hidden], grad[:, hidden:]
        dc = dc_in + dh * o * (1.0 - tanh_c * tanh_c)     # c' feeds h' through tanh
        d_gates = np.empty_like(act)
        d_gates[:, :hidden] = dc * g * i * (1.0 - i)                      # dL/d(i pre)
        d_gates[:, hidden:2 * hidden] = dc * c * f * (1.0 - f)            # dL/d(f pre)
        d_gates[:, 2 * hidden:3 * hidden] = dc * i * (1.0 - g * g)        # dL/d(g pre)
        d_gates[:, 3 * hidden:] = dh * tanh_c * o * (1.0 - o)             # dL/d(o pre)
        d_hc = np.empty_like(hc.data)
        np.matmul(d_gates, whh_t.data.T, out=d_hc[:, :hidden])            # dL/dh = dgates W_hh
        np.multiply(dc, f, out=d_hc[:, hidden:])                          # dL/dc = dc' f
        return d_gates, d_hc, OuterGrad(h, d_gates)
    return record(out, "lstm_cell", (gx, hc, whh_t), backward)


def gru_cell(gx: Tensor, h: Tensor, whh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    """gh = h W_hhᵀ + b_hh; r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n);
    h' = n + z·(h - n)."""
    hidden = h.shape[-1]
    hd = h.data
    gh = hd @ whh_t.data
    if b_hh is not None:
        gh += b_hh.data
    rz = gx.data[:, :2 * hidden] + gh[:, :2 * hidden]
    rz = _sigmoid(rz)
    r, z = rz[:, :hidden], rz[:, hidden:]
    hn = gh[:, 2 * hidden:]
    n = np.tanh(gx.data[:, 2 * hidden:] + r * hn)
    out = n + z * (hd - n)
    parents = (gx, h, whh_t) if b_hh is None else (gx, h, whh_t, b_hh)
    if not needs_grad(*parents):
        return constant(out)

    def backward(grad):
        dn = grad * (1.0 - z) * (1.0 - n * n)            # through h' = (1-z) n + z h, then tanh
        d_gx = np.empty_like(gh)
        d_gx[:, :hidden] = dn * hn * r * (1.0 - r)                      # dL/d(r pre)
        d_gx[:, hidden:2 * hidden] = grad * (hd - n) * z * (1.0 - z)    # dL/d(z pre)
        d_gx[:, 2 * hidden:] = dn                                       # dL/d(n pre, input part)
        d_gh = d_gx.copy()
        d_gh[:, 2 * hidden:] = dn * r                                   # r gates the hidden part
        d_h = d_gh @ whh_t.data.T
        d_h += grad * z
        grads = (d_gx, d_h, OuterGrad(hd, d_gh))
        return grads if b_hh is None else grads + (d_gh,)
    return record(out, "gru_cell", parents, backward)


def rnn_cell(gx: Tensor, h: Tensor, whh_t: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """h' = act(gx + h W_hhᵀ), act tanh or relu."""
    hd = h.data
    pre = hd @ whh_t.data
    pre += gx.data
    out = np.tanh(pre, out=pre) if nonlinearity == "tanh" else np.maximum(pre, 0, out=pre)
    if not needs_grad(gx, h, whh_t):
        return constant(out)

    def backward(grad):
        d_pre = grad * (1.0 - out * out) if nonlinearity == "tanh" else grad * (out > 0)
        return d_pre, d_pre @ whh_t.data.T, OuterGrad(hd, d_pre)
    return record(out, "rnn_cell", (gx, h, whh_t), backward)
