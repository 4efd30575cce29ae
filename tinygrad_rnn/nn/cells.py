"""RNN, LSTM and GRU cells composed only from engine ops.

Each cell is one time step. The step functions below take the input projection already computed
(``gx = x W_ihᵀ + b``), so a sequence layer can do the projection of all time steps with one
matmul and call the same step functions in its loop: the equations live in exactly one place, and
backpropagation through time is nothing but the engine walking the graph these steps build.

Weights follow PyTorch: ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``
``(G*H,)``, gate blocks LSTM ``[i | f | g | o]`` and GRU ``[r | z | n]``.

Ops per step (what a graph dump of one time step shows; ``gx_t`` arrives from one ``unbind`` of
the hoisted projection, outside the step):
- RNN:  addmm (gx + h W_hhᵀ), tanh (or relu)
- LSTM: addmm, chunk (one op, 4 outputs), sigmoid×3, tanh×2, mul×3, add
- GRU:  addmm (h W_hhᵀ + b_hh; a matmul without bias), chunk×2, add×4, sigmoid×2, mul×3, tanh, sub
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import ops
from ..autograd.tensor import Tensor
from .layers import as_input, check_size, uniform
from .module import Module

__all__ = [
    "RNNCell", "LSTMCell", "GRUCell", "rnn_step", "lstm_step", "gru_step", "check_nonlinearity",
    "check_state", "NONLINEARITIES",
]

NONLINEARITIES = ("tanh", "relu", "sigmoid")


def check_nonlinearity(nonlinearity: Any, owner: str) -> Any:
    """PyTorch's "tanh"/"relu", or (an extension) "sigmoid" or a callable Tensor -> Tensor."""
    if callable(nonlinearity) or nonlinearity in NONLINEARITIES:
        return nonlinearity
    raise ValueError(f"{owner}: Unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu' (PyTorch's), "
                     "'sigmoid', or a callable Tensor -> Tensor")


def rnn_step(gx: Tensor, h: Tensor, whh_t: Tensor, nonlinearity: Any = "tanh") -> Tensor:
    """h' = act(gx + h W_hhᵀ), where gx = x W_ihᵀ + b_ih + b_hh."""
    pre = ops.addmm(gx, h, whh_t)
    if callable(nonlinearity):
        return nonlinearity(pre)
    return {"tanh": pre.tanh, "relu": pre.relu, "sigmoid": pre.sigmoid}[nonlinearity]()


def lstm_step(gx: Tensor, h: Tensor, c: Tensor, whh_t: Tensor) -> tuple[Tensor, Tensor]:
    """gates = gx + h W_hhᵀ (gx = x W_ihᵀ + b_ih + b_hh), split [i | f | g | o];
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c')."""
    gates = ops.addmm(gx, h, whh_t)
    i, f, g, o = ops.chunk(gates, 4, axis=-1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h_next = o.sigmoid() * c_next.tanh()
    return h_next, c_next


def gru_step(gx: Tensor, h: Tensor, whh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    """With gx = x W_ihᵀ + b_ih and gh = h W_hhᵀ + b_hh, both split [r | z | n]:
    r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r ⊙ gh_n),
    h' = (1 - z) ⊙ n + z ⊙ h, computed as n + z ⊙ (h - n) (one op fewer, same value)."""
    gh = h @ whh_t if b_hh is None else ops.addmm(b_hh, h, whh_t)
    xr, xz, xn = ops.chunk(gx, 3, axis=-1)
    hr, hz, hn = ops.chunk(gh, 3, axis=-1)
    r = (xr + hr).sigmoid()
    z = (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return n + z * (h - n)


def check_state(state: Any, name: str, expected: tuple, dtype: np.dtype, owner: str) -> Tensor:
    """A hidden/cell state argument must be a Tensor of exactly the expected shape and dtype."""
    if isinstance(state, np.ndarray):
        state = Tensor(state)
    if not isinstance(state, Tensor):
        raise TypeError(f"{owner}: {name} must be a Tensor, got {type(state).__name__}")
    if state.shape != expected:
        raise ValueError(f"{owner}: Expected {name} of shape {expected}, got {state.shape}")
    if state.dtype != dtype:
        raise TypeError(f"{owner}: {name} dtype {state.dtype} differs from the parameters' {dtype}")
    return state


class _CellBase(Module):
    """Parameters and input checks shared by the three cells, and the cell protocol.

    The cell protocol (what a sequence layer or ``testing.crosscheck_cell`` needs of a cell,
    built in or written by a user; Keras' RNN-cell protocol):

    - ``state_size``: a tuple with the width of each state tensor (``(H,)``; LSTM ``(H, H)``);
    - ``output_size``: the width of the per-step output;
    - ``step(x_t, state) -> (output, new_state)`` for a batch: ``x_t`` is ``(N, I)``, ``state`` a
      tuple of ``(N, size)`` tensors, ``output`` ``(N, output_size)``, ``new_state`` a tuple;
    - ``initial_state(batch, dtype)``: the state before the first step (zeros here).

    Optional, for speed in a sequence layer: ``project_input(x)`` computes the input part of a
    step for many rows at once (here ``x W_ihᵀ + b``) and ``step_projected(p_t, state)`` finishes
    a step from it, so ``nn.Recurrent`` does one product for all time steps; ``end_sequence()``
    is called after the last step (here it drops ``W_hhᵀ``, which the steps of one sequence
    share, so no tensor of this call outlives it).
    """

    gates = 1
    fold_hh_bias = True   # b_hh joins the input projection (not for the GRU: b_hn is gated by r)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_size(input_size, "input_size", name)
        self.hidden_size = check_size(hidden_size, "hidden_size", name)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{name}: bias must be a bool, got {type(bias).__name__}")
        k = 1.0 / math.sqrt(self.hidden_size)
        gh = self.gates * self.hidden_size
        self.weight_ih = uniform((gh, self.input_size), k)
        self.weight_hh = uniform((gh, self.hidden_size), k)
        self.bias_ih = uniform((gh,), k) if bias else None
        self.bias_hh = uniform((gh,), k) if bias else None

    @property
    def state_size(self) -> tuple[int, ...]:
        return (self.hidden_size,)

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def initial_state(self, batch: int, dtype: Any = None) -> tuple[Tensor, ...]:
        """Zeros of shape (batch, size) for every state tensor, in the parameters' dtype."""
        dtype = self.weight_ih.dtype if dtype is None else np.dtype(dtype)
        return tuple(Tensor(np.zeros((batch, size), dtype=dtype)) for size in self.state_size)

    def _input(self, x: Any) -> tuple[Tensor, bool]:
        name = type(self).__name__
        x = as_input(x, name)
        if x.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1-D (I,) or 2-D (N, I), got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {x.shape[-1]}"
            )
        if x.dtype != self.weight_ih.dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from the parameters' {self.weight_ih.dtype}")
        batched = x.ndim == 2
        return (x if batched else ops.unsqueeze(x, 0)), batched

    def _state(self, state: Any, name: str, batch: int, batched: bool) -> Tensor:
        dtype = self.weight_ih.dtype
        if state is None:
            return Tensor(np.zeros((batch, self.hidden_size), dtype=dtype))
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        state = check_state(state, name, expected, dtype, type(self).__name__)
        return state if batched else ops.unsqueeze(state, 0)

    def _projection(self, x: Tensor, fold_hh_bias: bool) -> Tensor:
        gx = x @ self.weight_ih.T
        if self.bias_ih is not None:
            gx = gx + (self.bias_ih + self.bias_hh if fold_hh_bias else self.bias_ih)
        return gx

    def project_input(self, x: Tensor) -> Tensor:
        """x W_ihᵀ + b for all rows at once; the steps of this sequence then share one W_hhᵀ
        (one transpose, and in a compiled step one product for the weight's gradient)."""
        object.__setattr__(self, "_whh_t", self.weight_hh.T)
        return self._projection(x, self.fold_hh_bias)

    def end_sequence(self) -> None:
        """Drop the W_hhᵀ the steps of the sequence shared."""
        object.__setattr__(self, "_whh_t", None)

    def _recurrent_weight(self) -> Tensor:
        shared = getattr(self, "_whh_t", None)
        return self.weight_hh.T if shared is None else shared

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class RNNCell(_CellBase):
    """h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh). Called as ``cell(x, h=None)``.

    ``act`` is PyTorch's "tanh" or "relu", or (an extension of PyTorch's two) "sigmoid" or any
    callable Tensor -> Tensor."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: Any = "tanh"):
        nonlinearity = check_nonlinearity(nonlinearity, "RNNCell")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, x: Any, h: Any = None) -> Tensor:
        x, batched = self._input(x)
        h = self._state(h, "hx", x.shape[0], batched)
        h_next = rnn_step(self._projection(x, True), h, self.weight_hh.T, self.nonlinearity)
        return h_next if batched else ops.squeeze(h_next, 0)

    def step(self, x: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        """The cell protocol: ``(h', (h',))`` from a batch ``x`` (N, I) and ``state = (h,)``."""
        return self.step_projected(self._projection(x, True), state)

    def step_projected(self, gx: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        h_next = rnn_step(gx, state[0], self._recurrent_weight(), self.nonlinearity)
        return h_next, (h_next,)


class LSTMCell(_CellBase):
    """One LSTM step with gate blocks [i | f | g | o]. Called as ``cell(x, (h, c)=None) -> (h', c')``."""

    gates = 4

    def forward(self, x: Any, state: Any = None) -> tuple[Tensor, Tensor]:
        x, batched = self._input(x)
        if state is None:
            state = (None, None)
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            got = type(state).__name__
            if isinstance(state, (tuple, list)):
                got += f" of length {len(state)}"
            raise TypeError(f"LSTMCell: state must be a tuple (h, c), got {got}")
        h = self._state(state[0], "h", x.shape[0], batched)
        c = self._state(state[1], "c", x.shape[0], batched)
        h_next, c_next = lstm_step(self._projection(x, True), h, c, self.weight_hh.T)
        if not batched:
            return ops.squeeze(h_next, 0), ops.squeeze(c_next, 0)
        return h_next, c_next

    @property
    def state_size(self) -> tuple[int, ...]:
        return (self.hidden_size, self.hidden_size)

    def step(self, x: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        """The cell protocol: ``(h', (h', c'))`` from a batch ``x`` (N, I) and ``state = (h, c)``."""
        return self.step_projected(self._projection(x, True), state)

    def step_projected(self, gx: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        h_next, c_next = lstm_step(gx, state[0], state[1], self._recurrent_weight())
        return h_next, (h_next, c_next)


class GRUCell(_CellBase):
    """One GRU step with gate blocks [r | z | n] (b_hn inside the reset product, as in PyTorch)."""

    gates = 3
    fold_hh_bias = False

    def forward(self, x: Any, h: Any = None) -> Tensor:
        x, batched = self._input(x)
        h = self._state(h, "hx", x.shape[0], batched)
        h_next = gru_step(self._projection(x, False), h, self.weight_hh.T, self.bias_hh)
        return h_next if batched else ops.squeeze(h_next, 0)

    def step(self, x: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        """The cell protocol: ``(h', (h',))`` from a batch ``x`` (N, I) and ``state = (h,)``."""
        return self.step_projected(self._projection(x, False), state)

    def step_projected(self, gx: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        h_next = gru_step(gx, state[0], self._recurrent_weight(), self.bias_hh)
        return h_next, (h_next,)
