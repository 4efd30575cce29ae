"""A cell that is not built in, a peephole LSTM, with its backpropagation through time derived by
hand, checked against the engine with ``tinygrad_rnn.testing.crosscheck_cell``.

Peephole LSTM (Gers & Schmidhuber): the gates also look at the cell state,

    a = x W_ihᵀ + h W_hhᵀ + b,  split into blocks [a_i | a_f | a_g | a_o]
    i = σ(a_i + w_ci ⊙ c),  f = σ(a_f + w_cf ⊙ c),  g = tanh(a_g)
    c' = f ⊙ c + i ⊙ g
    o = σ(a_o + w_co ⊙ c'),  h' = o ⊙ tanh(c')

``PeepholeLSTMCell`` composes one step from engine ops (the cell protocol: ``state_size``,
``output_size``, ``step``, ``initial_state``); ``forward``/``backward`` are the same recurrence
and its BPTT in plain NumPy, in the signature ``crosscheck_cell`` expects. ``backward_with_a_bug``
forgets one path of the gradient (the forget gate's peephole into the previous cell state), a
mistake that only shows from the second time step on. Run

    python examples/peephole_lstm.py

to see the right derivation pass and the wrong one fail; ``examples/test_peephole_lstm.py`` is
the same as a pytest file, and the command line runs the three-way table on it:

    cd examples && tinygrad-rnn check --cell peephole_lstm:PeepholeLSTMCell --analytic peephole_lstm:forward,backward
"""
from __future__ import annotations

import math

import numpy as np

from tinygrad_rnn import Tensor, nn, ops
from tinygrad_rnn.testing import CellCheckError, crosscheck_cell


class PeepholeLSTMCell(nn.Module):
    """One peephole-LSTM step from engine ops; gate blocks [i | f | g | o] as in nn.LSTMCell."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        rng = np.random.default_rng(0)
        k = 1.0 / math.sqrt(hidden_size)
        init = lambda *shape: nn.Parameter(rng.uniform(-k, k, shape).astype(np.float32))  # noqa: E731
        self.weight_ih = init(4 * hidden_size, input_size)
        self.weight_hh = init(4 * hidden_size, hidden_size)
        self.bias = init(4 * hidden_size)
        self.w_ci, self.w_cf, self.w_co = init(hidden_size), init(hidden_size), init(hidden_size)

    @property
    def state_size(self) -> tuple[int, int]:
        return (self.hidden_size, self.hidden_size)

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def initial_state(self, batch: int, dtype=None) -> tuple[Tensor, Tensor]:
        dtype = self.weight_ih.dtype if dtype is None else dtype
        return tuple(Tensor(np.zeros((batch, self.hidden_size), dtype=dtype)) for _ in range(2))

    def step(self, x: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        h, c = state
        a_i, a_f, a_g, a_o = ops.chunk(x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias, 4, axis=-1)
        i = (a_i + self.w_ci * c).sigmoid()
        f = (a_f + self.w_cf * c).sigmoid()
        c_next = f * c + i * a_g.tanh()
        o = (a_o + self.w_co * c_next).sigmoid()
        h_next = o * c_next.tanh()
        return h_next, (h_next, c_next)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def forward(x: np.ndarray, state0: tuple, params: dict) -> tuple[np.ndarray, tuple, tuple]:
    """The recurrence over x (T, N, I) from state0 = (h0, c0); returns (outputs, (h_T, c_T), cache)."""
    h, c = state0
    outputs, saved = [], []
    for x_t in x:
        a = x_t @ params["weight_ih"].T + h @ params["weight_hh"].T + params["bias"]
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
        i = _sigmoid(a_i + params["w_ci"] * c)
        f = _sigmoid(a_f + params["w_cf"] * c)
        g = np.tanh(a_g)
        c_next = f * c + i * g
        o = _sigmoid(a_o + params["w_co"] * c_next)
        tanh_c = np.tanh(c_next)
        saved.append((x_t, h, c, i, f, g, o, c_next, tanh_c))
        h, c = o * tanh_c, c_next
        outputs.append(h)
    return np.stack(outputs), (h, c), (saved, params)


def _bptt(d_outputs: np.ndarray, d_final_state: tuple, cache: tuple, bug: bool) -> dict:
    saved, p = cache
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dh, dc = (d.copy() for d in d_final_state)
    dx = np.zeros((len(saved),) + saved[0][0].shape)
    for t in reversed(range(len(saved))):
        x_t, h, c, i, f, g, o, c_next, tanh_c = saved[t]
        dh = dh + d_outputs[t]                       # h_t feeds out[t] and step t+1
        da_o = dh * tanh_c * o * (1 - o)
        dc = dc + dh * o * (1 - tanh_c ** 2) + da_o * p["w_co"]   # c_t: via h_t, o_t's peephole, step t+1
        da_i = dc * g * i * (1 - i)
        da_f = dc * c * f * (1 - f)
        da_g = dc * i * (1 - g ** 2)
        da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)
        grads["weight_ih"] += da.T @ x_t
        grads["weight_hh"] += da.T @ h
        grads["bias"] += da.sum(axis=0)
        grads["w_ci"] += (da_i * c).sum(axis=0)
        grads["w_cf"] += (da_f * c).sum(axis=0)
        grads["w_co"] += (da_o * c_next).sum(axis=0)
        dx[t] = da @ p["weight_ih"]
        dh = da @ p["weight_hh"]
        dc = dc * f + da_i * p["w_ci"] + (0.0 if bug else da_f * p["w_cf"])  # c_{t-1}: 3 paths
    return {"x": dx, "state0": (dh, dc), **grads}


def backward(d_outputs: np.ndarray, d_final_state: tuple, cache: tuple) -> dict:
    """Gradients of Σ d_outputs·outputs + Σ d_final_state·(h_T, c_T): keys x, state0, and each parameter."""
    return _bptt(d_outputs, d_final_state, cache, bug=False)


def backward_with_a_bug(d_outputs: np.ndarray, d_final_state: tuple, cache: tuple) -> dict:
    """``backward`` without the path c_{t-1} -> f_t (the forget gate's peephole w_cf)."""
    return _bptt(d_outputs, d_final_state, cache, bug=True)


if __name__ == "__main__":
    cell = PeepholeLSTMCell(3, 4)
    result = crosscheck_cell(cell, forward, backward, steps=5, batch=2, seed=0)
    print(f"right derivation: PASS (autograd vs analytic max abs {result.max_abs_analytic:.1e}, "
          f"vs central differences max abs {result.max_abs_numeric:.1e})")
    try:
        crosscheck_cell(cell, forward, backward_with_a_bug, steps=5, batch=2, seed=0)
    except CellCheckError as error:
        print("derivation with a bug: FAIL, as it should:")
        print(error)
    else:
        raise SystemExit("the wrong derivation passed: the check is broken")
