"""Sequence layers RNN, LSTM and GRU: multi-layer, bidirectional, batch_first, variable lengths.

A layer unrolls the step functions of :mod:`tinygrad_rnn.nn.cells` over time. For each layer and
direction, the input projection of all time steps is one product (``X W_ihᵀ + b``, an ``addmm``)
before the loop, split into its time steps by one ``unbind``; inside the loop each step adds
``h W_hhᵀ`` (one ``addmm``) and applies the cell equations. Every step runs inside ``scope("<kind>/l<k>/<fwd|bwd>/t<t>")`` so graph dumps cluster the unrolled graph by time step.

Variable lengths follow PyTorch's packed sequences: sequence b runs steps ``0..len_b-1``; past its
length its state is frozen (``h = where(t < len_b, h_new, h)``, the mask computed by tensor ops
from ``lengths``, so a compiled step replays new lengths) and its outputs are 0, so ``h_n``
is the state after its last valid step; the reverse direction starts at ``x[len_b-1]`` because
the steps it visits first (t >= len_b) leave the initial state untouched.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import ops
from ..tensor import Tensor, scope
from .cells import NONLINEARITIES, check_state, gru_step, lstm_step, rnn_step
from .layers import as_input, check_size, uniform
from .module import Module

_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


class _RecurrentBase(Module):
    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 nonlinearity: str = "tanh"):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_size(input_size, "input_size", name)
        self.hidden_size = check_size(hidden_size, "hidden_size", name)
        self.num_layers = check_size(num_layers, "num_layers", name)
        for flag, value in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name}: {flag} must be a bool, got {type(value).__name__}")
        numeric = isinstance(dropout, (int, float, np.integer, np.floating)) and not isinstance(dropout, bool)
        if not numeric or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1], got {dropout!r}")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"{name}: Unknown nonlinearity '{nonlinearity}'; expected 'tanh' or 'relu'")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.nonlinearity = nonlinearity
        self.num_directions = 2 if bidirectional else 1

        gh = _GATES[self.mode] * self.hidden_size
        k = 1.0 / math.sqrt(self.hidden_size)
        # Registration order is PyTorch's: per layer, per direction: w_ih, w_hh, b_ih, b_hh.
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            for suffix in self._suffixes():
                setattr(self, f"weight_ih_l{layer}{suffix}", uniform((gh, layer_input), k))
                setattr(self, f"weight_hh_l{layer}{suffix}", uniform((gh, self.hidden_size), k))
                if self.bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", uniform((gh,), k))
                    setattr(self, f"bias_hh_l{layer}{suffix}", uniform((gh,), k))

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _weights(self, layer: int, suffix: str) -> tuple:
        get = lambda n: getattr(self, f"{n}_l{layer}{suffix}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    # ----- input checks ------------------------------------------------------------------------
    def _check_input(self, x: Any) -> tuple[Tensor, bool]:
        name = type(self).__name__
        x = as_input(x, name)
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2-D (L, I) or 3-D, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {x.shape[-1]}"
            )
        dtype = self.weight_ih_l0.dtype
        if x.dtype != dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from the parameters' {dtype}")
        batched = x.ndim == 3
        if not batched:
            x = ops.unsqueeze(x, 1)
        elif self.batch_first:
            x = ops.transpose(x, 0, 1)
        if x.shape[0] == 0:
            raise ValueError(f"{name}: input has no time steps (shape {x.shape})")
        return x, batched

    def _check_lengths(self, lengths: Any, steps: int, batch: int) -> Tensor | None:
        if lengths is None:
            return None
        name = type(self).__name__
        tensor = lengths if isinstance(lengths, Tensor) else None
        array = np.asarray(lengths.data if tensor is not None else lengths)
        if array.dtype.kind not in "iu" or array.ndim != 1:
            raise TypeError(f"{name}: lengths must be a 1-D sequence of ints, got {lengths!r}")
        if array.shape[0] != batch:
            raise ValueError(f"{name}: lengths must have one entry per batch element: expected {batch}, got {array.shape[0]}")
        if array.size and (array.min() < 1 or array.max() > steps):
            raise ValueError(
                f"{name}: lengths must lie in [1, {steps}] (the sequence length), got {array.tolist()}"
            )
        return tensor if tensor is not None else Tensor(array)

    @staticmethod
    def _step_masks(lengths: Tensor, steps: int) -> tuple:
        """valid[t] = (t < lengths)[:, None] for every step, from tensor ops (a trace replays them)."""
        positions = Tensor(np.arange(steps).reshape(steps, 1))
        valid = ops.lt(positions, ops.reshape(lengths, 1, lengths.shape[0]))     # (T, N) booleans
        return ops.unbind(ops.unsqueeze(valid, -1), 0)

    def _initial_states(self, hx: Any, batch: int, batched: bool, which: str) -> list[Tensor] | None:
        if hx is None:
            return None
        count = self.num_layers * self.num_directions
        expected = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        hx = check_state(hx, which, expected, self.weight_ih_l0.dtype, type(self).__name__)
        if not batched:
            hx = ops.unsqueeze(hx, 1)
        return list(ops.unbind(hx, 0))

    # ----- the unrolled loop -------------------------------------------------------------------
    def _step(self, gx_t: Tensor, state: tuple, whh_t: Tensor, b_hh: Tensor | None) -> tuple:
        """One time step of this layer's cell; the state is a tuple ((h,) or (h, c))."""
        if self.mode == "LSTM":
            return lstm_step(gx_t, state[0], state[1], whh_t)
        if self.mode == "GRU":
            return (gru_step(gx_t, state[0], whh_t, b_hh),)
        return (rnn_step(gx_t, state[0], whh_t, self.nonlinearity),)

    def _run_direction(self, x: Tensor, layer: int, suffix: str, state: tuple,
                       valid: tuple | None) -> tuple[list[Tensor], tuple]:
        """Unroll one layer in one direction over x (T, N, F); returns per-step outputs in time
        order and the final state. ``valid[t]`` (N, 1) says which sequences are still running."""
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, suffix)
        steps, batch = x.shape[0], x.shape[1]
        with scope("bwd" if suffix else "fwd"):
            flat = ops.reshape(x, steps * batch, x.shape[2])
            if b_ih is None:
                gx = flat @ w_ih.T
            else:
                gx = ops.addmm(b_ih if self.mode == "GRU" else b_ih + b_hh, flat, w_ih.T)
            gx_steps = ops.unbind(ops.reshape(gx, steps, batch, gx.shape[-1]), 0)
            whh_t = w_hh.T
            outputs: list[Tensor | None] = [None] * steps
            for t in (range(steps - 1, -1, -1) if suffix else range(steps)):
                with scope(f"t{t}"):
                    new_state = self._step(gx_steps[t], state, whh_t, b_hh)
                    if valid is None:
                        state = new_state
                        outputs[t] = new_state[0]
                    else:
                        state = tuple(ops.where(valid[t], new, old) for new, old in zip(new_state, state))
                        outputs[t] = ops.where(valid[t], new_state[0], 0.0)
        return outputs, state

    def _forward(self, x: Any, hx: Any, lengths: Any) -> tuple[Tensor, list[Tensor]]:
        x, batched = self._check_input(x)
        steps, batch = x.shape[0], x.shape[1]
        lengths = self._check_lengths(lengths, steps, batch)
        valid = None if lengths is None else self._step_masks(lengths, steps)
        n_states = 2 if self.mode == "LSTM" else 1
        if self.mode == "LSTM":
            if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                got = type(hx).__name__
                if isinstance(hx, (tuple, list)):
                    got += f" of length {len(hx)}"
                raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0), got {got}")
            h0 = self._initial_states(hx[0] if hx is not None else None, batch, batched, "h_0")
            c0 = self._initial_states(hx[1] if hx is not None else None, batch, batched, "c_0")
            initial = [h0, c0]
        else:
            initial = [self._initial_states(hx, batch, batched, "hx")]
        zeros = Tensor(np.zeros((batch, self.hidden_size), dtype=x.dtype))

        finals: list[list[Tensor]] = [[] for _ in range(n_states)]
        layer_input = x
        for layer in range(self.num_layers):
            direction_outputs = []
            with scope(f"l{layer}"):
                for d, suffix in enumerate(self._suffixes()):
                    index = layer * self.num_directions + d
                    state = tuple(zeros if s is None else s[index] for s in initial)
                    outs, state = self._run_direction(layer_input, layer, suffix, state, valid)
                    direction_outputs.append(ops.stack(outs, axis=0))
                    for k in range(n_states):
                        finals[k].append(state[k])
                out = direction_outputs[0] if len(direction_outputs) == 1 else ops.cat(direction_outputs, axis=2)
                if layer < self.num_layers - 1 and self.dropout > 0.0 and self.training:
                    out = ops.dropout(out, self.dropout, True)
            layer_input = out

        output = layer_input
        states = [ops.stack(f, axis=0) for f in finals]
        if not batched:
            output = ops.squeeze(output, 1)
            states = [ops.squeeze(s, 1) for s in states]
        elif self.batch_first:
            output = ops.transpose(output, 0, 1)
        return output, states

    def __call__(self, x: Any, hx: Any = None, lengths: Sequence[int] | None = None) -> Any:
        with scope(self.mode.lower()):
            return super().__call__(x, hx, lengths)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for key, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        return text


class RNN(_RecurrentBase):
    """Elman RNN: h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh). Returns ``(output, h_n)``.

    Note PyTorch's argument order: ``RNN(input_size, hidden_size, num_layers, nonlinearity, bias,
    batch_first, dropout, bidirectional)``.
    """

    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, nonlinearity)

    def forward(self, x: Any, hx: Any = None, lengths: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._forward(x, hx, lengths)
        return output, h_n


class LSTM(_RecurrentBase):
    """LSTM with gate blocks [i | f | g | o]. Returns ``(output, (h_n, c_n))``."""

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def forward(self, x: Any, hx: Any = None,
                lengths: Sequence[int] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        output, (h_n, c_n) = self._forward(x, hx, lengths)
        return output, (h_n, c_n)


class GRU(_RecurrentBase):
    """GRU with gate blocks [r | z | n], b_hn inside the reset product. Returns ``(output, h_n)``."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def forward(self, x: Any, hx: Any = None, lengths: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
        output, (h_n,) = self._forward(x, hx, lengths)
        return output, h_n
