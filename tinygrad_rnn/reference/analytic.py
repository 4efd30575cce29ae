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

It is also the speed yardstick of the benchmarks, so it is written the way a
lean NumPy implementation is: the input projection of all T steps is one matmul
before the loop and the weight gradients are one matmul each over all steps
after it (only the recurrent product ``h @ W_hh.T`` stays inside the loop);
every step writes into preallocated buffers with ``out=`` and in-place
operators, so no step allocates arrays; and the LSTM's four gate activations
are four NumPy calls on the whole gate block (see ``_GATE_SCALE``).  Each line
still carries the derivative it implements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward"]

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


def _sigmoid_(a: np.ndarray) -> None:
    """sigmoid(a) in place, in the same tanh form: four NumPy calls, no new array."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _gate_scale(H: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the LSTM gate block [i, f, g, o], (scale, shift) such that
    tanh(scale * a) * scale + shift is sigmoid(a) on i, f, o (scale 1/2, shift 1/2) and tanh(a)
    on g (scale 1, shift 0): the four activations in four NumPy calls on the whole block."""
    scale = np.full(4 * H, 0.5, dtype=dtype)
    scale[2 * H:3 * H] = 1.0
    return scale, (1.0 - scale).astype(dtype)


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
    W_hh_T = W_hh.T
    for t in range(T):
        h = hs[t + 1]
        np.matmul(hs[t], W_hh_T, out=h)         # a = h_{t-1} W_hh^T
        h += gx[t]                              #   + x_t W_ih^T + b_ih + b_hh
        if nonlinearity == "tanh":
            np.tanh(h, out=h)                   # h_t = tanh(a)
        else:
            np.maximum(h, 0, out=h)             # h_t = max(a, 0)

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
    dh = dh.copy()                              # updated in place below
    tanh = cache["nonlinearity"] == "tanh"
    for t in reversed(range(T)):
        dh += d_out[t]                          # h_t feeds both out[t] and step t+1
        h, da = hs[t + 1], d_a[t]
        if tanh:
            np.multiply(h, h, out=da)           # dh/da = 1 - tanh(a)^2 = 1 - h^2
            np.subtract(1, da, out=da)
            da *= dh
        else:
            np.greater(h, 0, out=da)            # dh/da = 1 where a > 0, else 0
            da *= dh
        np.matmul(da, W_hh, out=dh)             # da/dh_{t-1} = W_hh

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
    W_hh_T = W_hh.T
    scale, shift = _gate_scale(H, dtype)
    write = np.empty((N, H), dtype=dtype)
    for t in range(T):
        a = gates[t]                            # the pre-activation, activated in place
        np.matmul(hs[t], W_hh_T, out=a)         # a = h_{t-1} W_hh^T
        a += gx[t]                              #   + x_t W_ih^T + b_ih + b_hh
        a *= scale                              # i, f, o = sigmoid(a) = tanh(a/2)/2 + 1/2;
        np.tanh(a, out=a)                       # g = tanh(a)
        a *= scale
        a += shift
        i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)            # c_t = f * c_{t-1}
        np.multiply(i, g, out=write)            #       + i * g
        c += write
        np.tanh(c, out=tanh_cs[t])
        np.multiply(o, tanh_cs[t], out=hs[t + 1])   # h_t = o * tanh(c_t)

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
    dh, dc = dh.copy(), dc.copy()                    # updated in place below
    tmp = np.empty((N, H), dtype=hs.dtype)
    slope = np.empty((N, 4 * H), dtype=hs.dtype)
    for t in reversed(range(T)):
        act = gates[t]
        i, f, g, o = (act[:, k * H:(k + 1) * H] for k in range(4))
        da = d_a[t]
        di, df, dg, do = (da[:, k * H:(k + 1) * H] for k in range(4))
        tc = tanh_cs[t]
        dh += d_out[t]                                   # h_t feeds out[t] and step t+1
        # h_t = o * tanh(c_t)
        np.multiply(dh, tc, out=do)                      # dh/do = tanh(c)
        np.multiply(tc, tc, out=tmp)                     # dh/dc = o * (1 - tanh(c)^2)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        # c_t = f * c_{t-1} + i * g
        np.multiply(dc, g, out=di)                       # dc/di = g
        np.multiply(dc, cs[t], out=df)                   # dc/df = c_{t-1}
        np.multiply(dc, i, out=dg)                       # dc/dg = i
        dc *= f                                          # dc/dc_{t-1} = f
        # gate activations back to pre-activations
        np.subtract(1, act, out=slope)                   # sigmoid' = s * (1 - s) (i, f, o)
        slope *= act
        g_slope = slope[:, 2 * H:3 * H]
        np.multiply(g, g, out=g_slope)                   # tanh' = 1 - tanh^2 (g)
        np.subtract(1, g_slope, out=g_slope)
        da *= slope
        np.matmul(da, W_hh, out=dh)                      # da/dh_{t-1} = W_hh

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
    W_hh_T = W_hh.T
    ah = np.empty((N, 3 * H), dtype=dtype)
    for t in range(T):
        np.matmul(hs[t], W_hh_T, out=ah)         # ah = h_{t-1} W_hh^T + b_hh
        if b_hh is not None:
            ah += b_hh
        ax, act = gx[t], gates[t]
        rz = act[:, :2 * H]
        np.add(ax[:, :2 * H], ah[:, :2 * H], out=rz)   # r, z = sigmoid(ax + ah)
        _sigmoid_(rz)
        r, z, n = act[:, :H], act[:, H:2 * H], act[:, 2 * H:]
        np.copyto(hns[t], ah[:, 2 * H:])         # ah_n, kept for dr
        np.multiply(r, hns[t], out=n)            # n = tanh(ax_n + r * ah_n)
        n += ax[:, 2 * H:]
        np.tanh(n, out=n)
        h = hs[t + 1]
        np.subtract(hs[t], n, out=h)             # h_t = (1 - z) n + z h_{t-1} = n + z (h_{t-1} - n)
        h *= z
        h += n

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
    dh = dh.copy()                                       # updated in place below
    dn = np.empty((N, H), dtype=hs.dtype)
    dh_prev = np.empty((N, H), dtype=hs.dtype)
    slope = np.empty((N, 2 * H), dtype=hs.dtype)
    for t in reversed(range(T)):
        act = gates[t]
        r, z, n = (act[:, k * H:(k + 1) * H] for k in range(3))
        dx, dhh = d_ax[t], d_ah[t]
        d_ar, d_az, d_an = (dx[:, k * H:(k + 1) * H] for k in range(3))
        h_prev = hs[t]
        dh += d_out[t]                                   # h_t feeds out[t] and step t+1
        # h_t = (1 - z) * n + z * h_{t-1}
        np.subtract(1, z, out=dn)                        # dh/dn = 1 - z
        dn *= dh
        np.subtract(h_prev, n, out=d_az)                 # dh/dz = h_{t-1} - n
        d_az *= dh
        np.multiply(dh, z, out=dh_prev)                  # dh/dh_{t-1} (direct path) = z
        # n = tanh(ax_n + r * ah_n)
        np.multiply(n, n, out=d_an)                      # tanh' = 1 - n^2
        np.subtract(1, d_an, out=d_an)
        d_an *= dn
        np.multiply(d_an, hns[t], out=d_ar)              # d(r * ah_n)/dr = ah_n
        # r, z = sigmoid(ax + ah)
        rz, d_rz = act[:, :2 * H], dx[:, :2 * H]
        np.subtract(1, rz, out=slope)                    # sigmoid' = s * (1 - s)
        slope *= rz
        d_rz *= slope
        np.copyto(dhh, dx)                               # d a / d ax = d a / d ah = 1 ...
        dhh[:, 2 * H:] *= r                              # ... but d a_n / d ah_n = r
        np.matmul(dhh, W_hh, out=dh)                     # dah/dh_{t-1} = W_hh
        dh += dh_prev

    grads = _weight_grads(cache, d_ax, d_ah)
    grads["h0"] = dh
    return grads
