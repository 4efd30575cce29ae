"""Handwritten backpropagation through time (BPTT) for RNN, LSTM and GRU.

This module is the cross-check for the cells composed from ``Tensor`` ops: the
same recurrences written out by hand in plain NumPy, forward and backward, for
one layer and one direction.  It imports nothing else from the package, so a
bug in the autograd engine cannot hide in both places at once.

Conventions (those of PyTorch):

* ``x`` is time-major, shape ``(T, N, I)``; states are ``(N, H)``.
* ``weight_ih`` is ``(G*H, I)``, ``weight_hh`` is ``(G*H, H)``, ``bias_ih`` and
  ``bias_hh`` are ``(G*H,)`` or ``None`` (no bias); every product is ``x @ W.T``.
* Gate blocks, each ``H`` rows of the stacked weights: RNN ``[h]`` (G=1),
  LSTM ``[i, f, g, o]`` (G=4), GRU ``[r, z, n]`` (G=3).

Each ``*_forward`` returns the outputs plus a ``cache`` holding what the
backward needs; each ``*_backward`` walks the steps in reverse and returns a
dict of gradients keyed like the forward's arguments.  Upstream gradients
(``d_out``, ``d_h_n``, ``d_c_n``) may be ``None``, meaning zero.

Two things keep it fast enough to be the speed reference of a benchmark: the
input projection of all T steps is one matmul before the loop, and the weight
gradients are one matmul each over all steps after the loop.  Only the
recurrent product ``h @ W_hh.T`` has to stay inside the loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Cache = dict[str, Any]
Grads = dict[str, "np.ndarray | None"]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """sigmoid(a) = 1 / (1 + exp(-a)), written as 0.5 * (1 + tanh(a / 2)).

    The tanh form is the same function but never overflows, so |a| = 1e4 gives
    exactly 0 or 1 without warnings, and it keeps float32 as float32.
    """
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _shape_error(name: str, expected: str, got: tuple[int, ...]) -> ValueError:
    return ValueError(f"{name}: expected shape {expected}, got {tuple(got)}")


def _prepare(
    kind: str,
    x: np.ndarray,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None,
    bias_hh: np.ndarray | None,
    states: dict[str, np.ndarray | None],
) -> tuple[np.dtype, list[np.ndarray | None], dict[str, np.ndarray]]:
    """Check shapes, pick the common float dtype and fill missing states with zeros."""
    G = _GATES[kind]
    x = np.asarray(x)
    weight_ih = np.asarray(weight_ih)
    weight_hh = np.asarray(weight_hh)
    if x.ndim != 3:
        raise _shape_error("x", "(T, N, I) (3-D, time-major)", x.shape)
    T, N, I = x.shape
    if weight_hh.ndim != 2 or weight_hh.shape[0] != G * weight_hh.shape[1]:
        raise _shape_error("weight_hh", f"({G}*H, H) for {kind.upper()}", weight_hh.shape)
    H = weight_hh.shape[1]
    if weight_ih.shape != (G * H, I):
        raise _shape_error("weight_ih", f"({G * H}, {I}) = ({G}*H, I)", weight_ih.shape)
    biases = []
    for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if b is not None:
            b = np.asarray(b)
            if b.shape != (G * H,):
                raise _shape_error(name, f"({G * H},) = ({G}*H,)", b.shape)
        biases.append(b)

    arrays = [x, weight_ih, weight_hh] + [b for b in biases if b is not None]
    arrays += [np.asarray(s) for s in states.values() if s is not None]
    dtype = np.result_type(*arrays)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)

    filled = {}
    for name, s in states.items():
        if s is None:
            filled[name] = np.zeros((N, H), dtype=dtype)
        else:
            s = np.asarray(s, dtype=dtype)
            if s.shape != (N, H):
                raise _shape_error(name, f"({N}, {H}) = (N, H)", s.shape)
            filled[name] = s
    params = [np.asarray(p, dtype=dtype) if p is not None else None
              for p in (x, weight_ih, weight_hh, *biases)]
    return dtype, params, filled


def _upstream(name: str, g: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An upstream gradient as an array of the right shape (None means zeros)."""
    if g is None:
        return np.zeros(shape, dtype=dtype)
    g = np.asarray(g, dtype=dtype)
    if g.shape != shape:
        raise _shape_error(name, str(shape), g.shape)
    return g


def _check_cache(cache: Cache, kind: str) -> None:
    if not isinstance(cache, dict) or cache.get("kind") != kind:
        got = cache.get("kind") if isinstance(cache, dict) else type(cache).__name__
        raise ValueError(f"cache: expected the cache returned by {kind}_forward, got one from {got!r}")


def _weight_grads(cache: Cache, d_gx: np.ndarray, d_gh: np.ndarray) -> Grads:
    """Gradients that are sums over time, each as ONE matmul over all T*N rows.

    With a_x = x W_ih^T + b_ih and a_h = h_prev W_hh^T + b_hh at every step:
    dL/dW_ih = sum_t d_a_x[t]^T x[t],  dL/dW_hh = sum_t d_a_h[t]^T h_prev[t],
    dL/dx[t] = d_a_x[t] W_ih,          dL/db = sum over t and n of d_a.
    """
    x, hs = cache["x"], cache["hs"]
    T, N, I = x.shape
    GH = d_gx.shape[-1]
    H = hs.shape[-1]
    d_gx2 = d_gx.reshape(T * N, GH)
    d_gh2 = d_gh.reshape(T * N, GH)
    return {
        "x": (d_gx2 @ cache["weight_ih"]).reshape(T, N, I),
        "weight_ih": d_gx2.T @ x.reshape(T * N, I),
        "weight_hh": d_gh2.T @ hs[:-1].reshape(T * N, H),
        "bias_ih": d_gx2.sum(axis=0) if cache["has_bias_ih"] else None,
        "bias_hh": d_gh2.sum(axis=0) if cache["has_bias_hh"] else None,
    }


def _input_projection(x: np.ndarray, weight_ih: np.ndarray, *biases: np.ndarray | None) -> np.ndarray:
    """x_t W_ih^T (+ biases) for every step at once: (T, N, I) -> (T, N, G*H)."""
    T, N, I = x.shape
    gx = x.reshape(T * N, I) @ weight_ih.T
    for b in biases:
        if b is not None:
            gx += b
    return gx.reshape(T, N, -1)


# ---------------------------------------------------------------------------
# Elman RNN:  h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
# ---------------------------------------------------------------------------


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None,
    bias_hh: np.ndarray | None,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, np.ndarray, Cache]:
    """Run h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) over T steps.

    Returns ``(out, h_n, cache)`` with out ``(T, N, H)`` (every h_t) and h_n ``(N, H)``.
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    dtype, (x, W_ih, W_hh, b_ih, b_hh), states = _prepare(
        "rnn", x, weight_ih, weight_hh, bias_ih, bias_hh, {"h0": h0})
    T, N, _ = x.shape
    H = W_hh.shape[1]

    # Only the sum b_ih + b_hh matters here, so both go into the hoisted projection.
    gx = _input_projection(x, W_ih, b_ih, b_hh)
    hs = np.empty((T + 1, N, H), dtype=dtype)  # hs[0] = h0, hs[t+1] = h_t
    hs[0] = states["h0"]
    for t in range(T):
        a = gx[t] + hs[t] @ W_hh.T
        hs[t + 1] = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)

    cache = {"kind": "rnn", "nonlinearity": nonlinearity, "x": x, "hs": hs,
             "weight_ih": W_ih, "weight_hh": W_hh,
             "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None}
    out = hs[1:].copy()  # a copy, so editing `out` in place cannot corrupt the cache
    return out, hs[-1].copy(), cache


def rnn_backward(d_out: np.ndarray | None, d_h_n: np.ndarray | None, cache: Cache) -> Grads:
    """Gradients of a loss through :func:`rnn_forward`.

    ``d_out`` is dL/d out ``(T, N, H)``, ``d_h_n`` is dL/d h_n ``(N, H)``; either may be None.
    Returns a dict with keys ``x, h0, weight_ih, weight_hh, bias_ih, bias_hh``.
    """
    _check_cache(cache, "rnn")
    hs, W_hh = cache["hs"], cache["weight_hh"]
    T, N, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    d_out = _upstream("d_out", d_out, (T, N, H), hs.dtype)
    dh = _upstream("d_h_n", d_h_n, (N, H), hs.dtype)

    d_a = np.empty((T, N, H), dtype=hs.dtype)  # dL/da_t for the pre-activation a_t
    for t in reversed(range(T)):
        dh = dh + d_out[t]                      # h_t feeds both out[t] and step t+1
        h = hs[t + 1]
        if cache["nonlinearity"] == "tanh":
            d_a[t] = dh * (1 - h * h)           # dh/da = 1 - tanh(a)^2 = 1 - h^2
        else:
            d_a[t] = dh * (h > 0)               # dh/da = 1 where a > 0, else 0
        dh = d_a[t] @ W_hh                      # da/dh_{t-1} = W_hh

    grads = _weight_grads(cache, d_a, d_a)      # a is shared by the x- and h-paths
    grads["h0"] = dh
    return grads


# ---------------------------------------------------------------------------
# LSTM, gate blocks [i, f, g, o]
# ---------------------------------------------------------------------------


def lstm_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None,
    bias_hh: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Cache]:
    """Run the LSTM recurrence over T steps.

    a = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh, split into [a_i, a_f, a_g, a_o];
    i, f, o = sigmoid(a_i, a_f, a_o), g = tanh(a_g);
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t).

    Returns ``(out, h_n, c_n, cache)`` with out ``(T, N, H)``.
    """
    dtype, (x, W_ih, W_hh, b_ih, b_hh), states = _prepare(
        "lstm", x, weight_ih, weight_hh, bias_ih, bias_hh, {"h0": h0, "c0": c0})
    T, N, _ = x.shape
    H = W_hh.shape[1]

    gx = _input_projection(x, W_ih, b_ih, b_hh)
    hs = np.empty((T + 1, N, H), dtype=dtype)       # hs[0] = h0
    cs = np.empty((T + 1, N, H), dtype=dtype)       # cs[0] = c0
    gates = np.empty((T, N, 4 * H), dtype=dtype)    # activated [i, f, g, o] per step
    tanh_cs = np.empty((T, N, H), dtype=dtype)      # tanh(c_t), reused by backward
    hs[0], cs[0] = states["h0"], states["c0"]
    for t in range(T):
        a = gx[t] + hs[t] @ W_hh.T
        i = gates[t, :, 0 * H:1 * H] = _sigmoid(a[:, 0 * H:1 * H])
        f = gates[t, :, 1 * H:2 * H] = _sigmoid(a[:, 1 * H:2 * H])
        g = gates[t, :, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
        o = gates[t, :, 3 * H:4 * H] = _sigmoid(a[:, 3 * H:4 * H])
        cs[t + 1] = f * cs[t] + i * g
        tanh_cs[t] = np.tanh(cs[t + 1])
        hs[t + 1] = o * tanh_cs[t]

    cache = {"kind": "lstm", "x": x, "hs": hs, "cs": cs, "gates": gates, "tanh_cs": tanh_cs,
             "weight_ih": W_ih, "weight_hh": W_hh,
             "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None}
    out = hs[1:].copy()
    return out, hs[-1].copy(), cs[-1].copy(), cache


def lstm_backward(
    d_out: np.ndarray | None,
    d_h_n: np.ndarray | None,
    d_c_n: np.ndarray | None,
    cache: Cache,
) -> Grads:
    """Gradients of a loss through :func:`lstm_forward`.

    Returns a dict with keys ``x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh``.
    """
    _check_cache(cache, "lstm")
    hs, cs, gates, tanh_cs, W_hh = (cache[k] for k in ("hs", "cs", "gates", "tanh_cs", "weight_hh"))
    T, N, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    d_out = _upstream("d_out", d_out, (T, N, H), hs.dtype)
    dh = _upstream("d_h_n", d_h_n, (N, H), hs.dtype)
    dc = _upstream("d_c_n", d_c_n, (N, H), hs.dtype)

    d_a = np.empty((T, N, 4 * H), dtype=hs.dtype)  # dL/da_t, blocks [i, f, g, o]
    for t in reversed(range(T)):
        i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        tc = tanh_cs[t]
        dh = dh + d_out[t]                               # h_t feeds out[t] and step t+1
        # h_t = o * tanh(c_t)
        do = dh * tc                                     # dh/do = tanh(c)
        dc = dc + dh * o * (1 - tc * tc)                 # dh/dc = o * (1 - tanh(c)^2)
        # c_t = f * c_{t-1} + i * g
        di = dc * g                                      # dc/di = g
        df = dc * cs[t]                                  # dc/df = c_{t-1}
        dg = dc * i                                      # dc/dg = i
        dc = dc * f                                      # dc/dc_{t-1} = f
        # gate activations back to pre-activations
        d_a[t, :, 0 * H:1 * H] = di * i * (1 - i)        # sigmoid' = s * (1 - s)
        d_a[t, :, 1 * H:2 * H] = df * f * (1 - f)
        d_a[t, :, 2 * H:3 * H] = dg * (1 - g * g)        # tanh' = 1 - tanh^2
        d_a[t, :, 3 * H:4 * H] = do * o * (1 - o)
        dh = d_a[t] @ W_hh                               # da/dh_{t-1} = W_hh

    grads = _weight_grads(cache, d_a, d_a)
    grads["h0"] = dh
    grads["c0"] = dc
    return grads


# ---------------------------------------------------------------------------
# GRU, gate blocks [r, z, n]
# ---------------------------------------------------------------------------


def gru_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None,
    bias_hh: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, Cache]:
    """Run the GRU recurrence over T steps.

    With ax = x_t W_ih^T + b_ih and ah = h_{t-1} W_hh^T + b_hh, both split [r, z, n]:
    r = sigmoid(ax_r + ah_r), z = sigmoid(ax_z + ah_z), n = tanh(ax_n + r * ah_n),
    h_t = (1 - z) * n + z * h_{t-1}.

    Returns ``(out, h_n, cache)`` with out ``(T, N, H)``.
    """
    dtype, (x, W_ih, W_hh, b_ih, b_hh), states = _prepare(
        "gru", x, weight_ih, weight_hh, bias_ih, bias_hh, {"h0": h0})
    T, N, _ = x.shape
    H = W_hh.shape[1]

    # b_hh cannot join the hoisted projection: its n block sits inside r * (...).
    gx = _input_projection(x, W_ih, b_ih)
    hs = np.empty((T + 1, N, H), dtype=dtype)       # hs[0] = h0
    gates = np.empty((T, N, 3 * H), dtype=dtype)    # [r, z, n] per step
    hns = np.empty((T, N, H), dtype=dtype)          # ah_n = h W_hn^T + b_hn, needed for dr
    hs[0] = states["h0"]
    for t in range(T):
        ah = hs[t] @ W_hh.T
        if b_hh is not None:
            ah += b_hh
        ax = gx[t]
        r = gates[t, :, 0 * H:1 * H] = _sigmoid(ax[:, 0 * H:1 * H] + ah[:, 0 * H:1 * H])
        z = gates[t, :, 1 * H:2 * H] = _sigmoid(ax[:, 1 * H:2 * H] + ah[:, 1 * H:2 * H])
        hns[t] = ah[:, 2 * H:3 * H]
        n = gates[t, :, 2 * H:3 * H] = np.tanh(ax[:, 2 * H:3 * H] + r * hns[t])
        hs[t + 1] = (1 - z) * n + z * hs[t]

    cache = {"kind": "gru", "x": x, "hs": hs, "gates": gates, "hns": hns,
             "weight_ih": W_ih, "weight_hh": W_hh,
             "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None}
    out = hs[1:].copy()
    return out, hs[-1].copy(), cache


def gru_backward(d_out: np.ndarray | None, d_h_n: np.ndarray | None, cache: Cache) -> Grads:
    """Gradients of a loss through :func:`gru_forward`.

    Returns a dict with keys ``x, h0, weight_ih, weight_hh, bias_ih, bias_hh``.
    """
    _check_cache(cache, "gru")
    hs, gates, hns, W_hh = (cache[k] for k in ("hs", "gates", "hns", "weight_hh"))
    T, N, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    d_out = _upstream("d_out", d_out, (T, N, H), hs.dtype)
    dh = _upstream("d_h_n", d_h_n, (N, H), hs.dtype)

    # The x-path and h-path pre-activations differ only in the n block
    # (ah_n is multiplied by r), so they get separate gradient buffers.
    d_ax = np.empty((T, N, 3 * H), dtype=hs.dtype)
    d_ah = np.empty((T, N, 3 * H), dtype=hs.dtype)
    for t in reversed(range(T)):
        r, z, n = (gates[t, :, k * H:(k + 1) * H] for k in range(3))
        h_prev = hs[t]
        dh = dh + d_out[t]                               # h_t feeds out[t] and step t+1
        # h_t = (1 - z) * n + z * h_{t-1}
        dn = dh * (1 - z)                                # dh/dn = 1 - z
        dz = dh * (h_prev - n)                           # dh/dz = h_{t-1} - n
        dh_prev = dh * z                                 # dh/dh_{t-1} (direct path) = z
        # n = tanh(ax_n + r * ah_n)
        d_an = dn * (1 - n * n)                          # tanh' = 1 - n^2
        dr = d_an * hns[t]                               # d(r * ah_n)/dr = ah_n
        # r, z = sigmoid(ax + ah)
        d_ar = dr * r * (1 - r)                          # sigmoid' = s * (1 - s)
        d_az = dz * z * (1 - z)
        d_ax[t, :, 0 * H:1 * H] = d_ar
        d_ax[t, :, 1 * H:2 * H] = d_az
        d_ax[t, :, 2 * H:3 * H] = d_an                   # d a_n / d ax_n = 1
        d_ah[t, :, 0 * H:1 * H] = d_ar
        d_ah[t, :, 1 * H:2 * H] = d_az
        d_ah[t, :, 2 * H:3 * H] = d_an * r               # d a_n / d ah_n = r
        dh = dh_prev + d_ah[t] @ W_hh                    # dah/dh_{t-1} = W_hh

    grads = _weight_grads(cache, d_ax, d_ah)
    grads["h0"] = dh
    return grads
