"""The sequence layer for any cell (``Recurrent``) and PyTorch's RNN, LSTM and GRU built on it.

``Recurrent`` unrolls cells that follow the cell protocol (see :class:`~tinygrad_rnn.nn.cells.RNNCell`:
``state_size``, ``output_size``, ``step(x_t, state) -> (output, new_state)``, ``initial_state``)
over time, for several layers and both directions, with variable lengths, masks and dropout
between layers. Every step runs inside ``scope("<kind>/l<k>/<fwd|bwd>/t<t>")`` so graph dumps
cluster the unrolled graph by time step and ``viz.gradient_flow`` finds the per-step outputs.

A cell may also offer ``project_input(x)`` (the input part of every step, for all steps at once:
``(T*N, I) -> (T*N, G)``) and ``step_projected(p_t, state)``: the layer then does the input
projection of all time steps as one product before the loop (``X W_ihᵀ + b``, one ``addmm``),
split into its steps by one ``unbind``, and each step only adds the recurrent part. The built-in
cells do this; a cell without it runs its ``step`` on every ``x_t``.

Masking: a step whose sequence is not running leaves its state unchanged
(``state = where(valid_t, new_state, state)``) and outputs 0, so padding on either side never
reaches the state. ``valid`` comes from ``lengths`` (PyTorch's packed sequences: sequence b runs
steps ``0..len_b-1``, or the last ``len_b`` steps with ``padding_side="left"``) or from a ``mask``
of any pattern (Keras' ``mask_zero``), always computed by tensor ops so a compiled step replays
new lengths. The reverse direction then starts at the last valid step, and ``h_n`` is the state
after the last valid step of each direction.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..autograd import engine, ops
from ..autograd.tensor import Tensor, scope
from .cells import check_nonlinearity, check_state, gru_step, lstm_step, rnn_step
from .layers import as_input, check_size, uniform
from .module import Module

__all__ = ["Recurrent", "RNN", "LSTM", "GRU", "LastOutput", "LayerCell", "check_cell"]

_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
PADDING_SIDES = ("right", "left")
PROTOCOL = ("state_size", "output_size", "step", "initial_state")


def check_cell(cell: Any, where: str = "cell", owner: str = "Recurrent") -> tuple[tuple[int, ...], int]:
    """Check that ``cell`` follows the cell protocol; returns its ``(state_size, output_size)``."""
    missing = [name for name in PROTOCOL if not hasattr(cell, name)]
    if missing:
        raise TypeError(
            f"{owner}: {where} must follow the cell protocol (state_size, output_size, "
            f"step(x_t, state) -> (output, new_state), initial_state(batch, dtype)); "
            f"{type(cell).__name__} lacks {', '.join(missing)}"
        )
    sizes = cell.state_size
    sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else sizes
    if (not isinstance(sizes, (tuple, list)) or not sizes
            or any(not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1 for s in sizes)):
        raise TypeError(f"{owner}: {where}.state_size must be a non-empty tuple of positive ints, got {cell.state_size!r}")
    out = cell.output_size
    if not isinstance(out, (int, np.integer)) or isinstance(out, bool) or out < 1:
        raise TypeError(f"{owner}: {where}.output_size must be a positive int, got {out!r}")
    if not callable(cell.step) or not callable(cell.initial_state):
        raise TypeError(f"{owner}: {where}.step and {where}.initial_state must be methods")
    return tuple(int(s) for s in sizes), int(out)


class Recurrent(Module):
    """Unroll a cell over a sequence: layers, directions, ``lengths``/``mask``, dropout between layers.

    ``cell`` is one of
    - a cell (anything with the cell protocol), for one layer in one direction;
    - a factory ``cell(input_size) -> cell``, called once per layer and direction with that
      layer's input width (``input_size`` for layer 0, ``D * output_size`` above it), which needs
      ``input_size=``; each call must return a new cell (its own weights);
    - a list of ``num_layers * D`` cells, layer by layer, forward before reverse.
    Cells that are Modules are registered as ``cell_l{k}`` / ``cell_l{k}_reverse``.

    ``forward(x, state=None, lengths=None, mask=None, padding_side="right")`` takes ``x`` as
    ``(L, N, I)``, ``(N, L, I)`` with ``batch_first``, or unbatched ``(L, I)`` and returns
    ``(output, final_state)``: ``output`` ``(L, N, D*output_size)`` (batch first if asked), the last
    layer's per-step outputs (0 where masked); ``final_state`` for a one-tensor state a tensor
    ``(D*num_layers, N, size)``, else a tuple of them (PyTorch's ``h_n`` / ``(h_n, c_n)``), layer l
    direction d at index ``l*D + d``. ``state`` is given in the same form.
    ``mask``: booleans (or 0/1) shaped like the input's leading axes (``(L, N)``, ``(N, L)`` with
    batch_first, ``(L,)`` unbatched), True where a step is data; ``lengths`` and ``mask`` are
    alternatives. ``padding_side`` says where ``lengths``' padding is.
    """

    kind = "recurrent"
    takes_mask = True       # nn.Sequential passes its mask on, and the output (not the state)
    returns_state = True
    # With record_states set, a call keeps the last layer's per-step outputs h_t (one list per
    # direction, in time order) in recorded_states: what viz.gradient_flow measures, handed over
    # as data instead of found by scope names.
    record_states = False
    recorded_states: list | None = None

    def __init__(self, cell: Any, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = False, dropout: float = 0.0, input_size: int | None = None):
        super().__init__()
        self._configure(num_layers, bidirectional, batch_first, dropout)
        count = self.num_layers * self.num_directions
        if isinstance(cell, type):
            raise TypeError(f"Recurrent: cell must be a cell instance, a factory or a list of cells, got the class "
                            f"{cell.__name__}; pass e.g. cell=lambda input_size: {cell.__name__}(input_size, ...)")
        if isinstance(cell, (list, tuple)):
            cells = list(cell)
            if len(cells) != count:
                raise ValueError(f"Recurrent: cell as a list needs num_layers * D = {count} cells (layer by layer, "
                                 f"forward before reverse), got {len(cells)}")
            for i, c in enumerate(cells):
                check_cell(c, f"cell[{i}]")
        elif isinstance(cell, Module) or all(hasattr(cell, n) for n in PROTOCOL):
            check_cell(cell)
            if count != 1:
                raise ValueError(
                    f"Recurrent: one cell serves one layer in one direction, but num_layers={self.num_layers}, "
                    f"bidirectional={self.bidirectional} need {count}; pass a factory "
                    "cell=lambda input_size: MyCell(input_size, ...) with input_size=..., or a list of cells")
            cells = [cell]
        elif callable(cell):
            if input_size is None:
                raise ValueError("Recurrent: input_size is required when cell is a factory cell(input_size) -> cell")
            width = check_size(input_size, "input_size", "Recurrent")
            cells = []
            for layer in range(self.num_layers):
                made = []
                for d in range(self.num_directions):
                    c = cell(width)
                    check_cell(c, f"cell({width}) (layer {layer}, direction {d})")
                    if any(c is other for other in cells + made):
                        raise ValueError("Recurrent: the cell factory returned the same cell twice; each "
                                         "layer and direction needs its own cell")
                    made.append(c)
                cells += made
                width = self.num_directions * int(made[0].output_size)
        else:
            raise TypeError(f"Recurrent: cell must be a cell, a factory cell(input_size) -> cell, or a list of "
                            f"cells, got {type(cell).__name__}")
        if input_size is not None and hasattr(cells[0], "input_size") and cells[0].input_size != input_size:
            raise ValueError(f"Recurrent: input_size={input_size} but the first cell takes {cells[0].input_size}")
        self._set_cells(cells)
        self.input_size = int(input_size) if input_size is not None else getattr(cells[0], "input_size", None)
        for i, c in enumerate(cells):
            if isinstance(c, Module):
                layer, d = divmod(i, self.num_directions)
                setattr(self, f"cell_l{layer}{'_reverse' if d else ''}", c)

    # ----- construction ------------------------------------------------------------------------
    def _configure(self, num_layers: int, bidirectional: bool, batch_first: bool, dropout: float) -> None:
        name = type(self).__name__
        self.num_layers = check_size(num_layers, "num_layers", name)
        for flag, value in (("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name}: {flag} must be a bool, got {type(value).__name__}")
        numeric = isinstance(dropout, (int, float, np.integer, np.floating)) and not isinstance(dropout, bool)
        if not numeric or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1], got {dropout!r}")
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1

    def _set_cells(self, cells: list) -> None:
        """Keep the cells as ``layer_cells[layer][direction]`` and check that their sizes chain."""
        sizes = [check_cell(c, f"cell[{i}]", type(self).__name__) for i, c in enumerate(cells)]
        state_size = sizes[0][0]
        for i, (s, out) in enumerate(sizes):
            if s != state_size:
                raise ValueError(f"{type(self).__name__}: every cell needs the same state_size to stack the final "
                                 f"states; cell[0] has {state_size}, cell[{i}] has {s}")
            if i % self.num_directions and out != sizes[i - 1][1]:
                raise ValueError(f"{type(self).__name__}: both directions of a layer need the same output_size, "
                                 f"got {sizes[i - 1][1]} and {out} (cells {i - 1}, {i})")
        for layer in range(1, self.num_layers):
            c = cells[layer * self.num_directions]
            width = self.num_directions * sizes[(layer - 1) * self.num_directions][1]
            if getattr(c, "input_size", width) != width:
                raise ValueError(f"{type(self).__name__}: layer {layer}'s cell takes input_size {c.input_size}, but "
                                 f"layer {layer - 1} outputs {width} features (D * output_size)")
        self.state_size = state_size
        self.output_size = sizes[-1][1] * self.num_directions
        d = self.num_directions
        self.layer_cells = [cells[k * d:(k + 1) * d] for k in range(self.num_layers)]

    def _param_dtype(self) -> np.dtype | None:
        for p in self.parameters():
            return p.dtype
        return None

    def _state_names(self) -> tuple[str, ...]:
        return ("hx",) if len(self.state_size) == 1 else tuple(f"hx[{i}]" for i in range(len(self.state_size)))

    # ----- input checks ------------------------------------------------------------------------
    def _check_input(self, x: Any) -> tuple[Tensor, bool]:
        name = type(self).__name__
        x = as_input(x, name)
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2-D (L, I) or 3-D, got shape {x.shape}")
        if self.input_size is not None and x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {x.shape[-1]}"
            )
        dtype = self._param_dtype()
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"{name}: input dtype {x.dtype} differs from the parameters' {dtype}")
        batched = x.ndim == 3
        if not batched:
            x = ops.unsqueeze(x, 1)
        elif self.batch_first:
            x = ops.transpose(x, 0, 1)
        if x.shape[0] == 0:
            raise ValueError(f"{name}: input has no time steps (shape {x.shape})")
        return x, batched

    def _check_lengths(self, lengths: Any, steps: int, batch: int) -> Tensor:
        name = type(self).__name__
        tensor = lengths if isinstance(lengths, Tensor) else None
        array = np.asarray(lengths.data if tensor is not None else lengths)  # validation only
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
    def _length_masks(lengths: Tensor, steps: int, padding_side: str) -> tuple:
        """valid[t] (N, 1): t < len (right padding) or t >= steps - len (left), by tensor ops."""
        positions = Tensor(np.arange(steps).reshape(steps, 1))
        row = ops.reshape(lengths, 1, lengths.shape[0])
        if padding_side == "right":
            valid = ops.lt(positions, row)                                       # (T, N) booleans
        else:
            valid = ops.ge(positions, ops.sub(steps, row))
        return ops.unbind(ops.unsqueeze(valid, -1), 0)

    def _mask_steps(self, mask: Any, steps: int, batch: int, batched: bool) -> tuple:
        name = type(self).__name__
        if isinstance(mask, (list, tuple)):
            mask = np.asarray(mask)
        if isinstance(mask, np.ndarray):
            mask = Tensor(mask)
        if not isinstance(mask, Tensor):
            raise TypeError(f"{name}: mask must be a Tensor or np.ndarray of booleans, got {type(mask).__name__}")
        if batched:
            expected = (batch, steps) if self.batch_first else (steps, batch)
        else:
            expected = (steps,)
        if mask.shape != expected:
            layout = "(N, L) (batch_first)" if batched and self.batch_first else "(L, N)" if batched else "(L,)"
            raise ValueError(f"{name}: mask must have the input's leading axes {layout} = {expected}, got {mask.shape}")
        if mask.dtype.kind not in "biuf":
            raise TypeError(f"{name}: mask must hold booleans or 0/1, got dtype {mask.dtype}")
        valid = mask if mask.dtype.kind == "b" else ops.ne(mask, 0)
        if not batched:
            valid = ops.unsqueeze(valid, 1)
        elif self.batch_first:
            valid = ops.transpose(valid, 0, 1)
        return ops.unbind(ops.unsqueeze(valid, -1), 0)

    def _initial(self, hx: Any, batch: int, batched: bool) -> list[list[Tensor]] | None:
        """Per state slot, the list of (N, size) initial states indexed by l*D + d (None: the cells')."""
        if hx is None:
            return None
        name, names = type(self).__name__, self._state_names()
        if len(names) == 1 and isinstance(hx, (tuple, list)) and len(hx) == 1:
            hx = hx[0]
        if len(names) > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != len(names):
                got = type(hx).__name__
                if isinstance(hx, (tuple, list)):
                    got += f" of length {len(hx)}"
                raise TypeError(f"{name}: hx must be a tuple ({', '.join(names)}), got {got}")
            given = list(hx)
        else:
            given = [hx]
        count = self.num_layers * self.num_directions
        dtype = self._param_dtype() or getattr(given[0], "dtype", None)
        slots = []
        for which, size, state in zip(names, self.state_size, given):
            if state is None:
                slots.append(None)
                continue
            expected = (count, batch, size) if batched else (count, size)
            state = check_state(state, which, expected, np.dtype(dtype), name)
            if not batched:
                state = ops.unsqueeze(state, 1)
            slots.append(list(ops.unbind(state, 0)))
        return slots

    # ----- the unrolled loop -------------------------------------------------------------------
    def _run_direction(self, cell: Any, x: Tensor, state: tuple, valid: tuple | None, reverse: bool,
                       keep_last: bool) -> tuple[list[Tensor], tuple, Tensor | None]:
        """Unroll one cell over x (T, N, F); returns per-step outputs in time order, the final state
        and (if asked) the output of the last step this direction ran for each sequence."""
        steps, batch = x.shape[0], x.shape[1]
        owner = type(self).__name__
        with scope("bwd" if reverse else "fwd"):
            if hasattr(cell, "project_input") and hasattr(cell, "step_projected"):
                flat = ops.reshape(x, steps * batch, x.shape[2])
                gx = cell.project_input(flat)
                inputs = ops.unbind(ops.reshape(gx, steps, batch, gx.shape[-1]), 0)
                step = cell.step_projected
            else:
                inputs = ops.unbind(x, 0)
                step = cell.step
            outputs: list[Tensor | None] = [None] * steps
            last = None
            order = range(steps - 1, -1, -1) if reverse else range(steps)
            try:
                for i, t in enumerate(order):
                    with scope(f"t{t}"):
                        out, new_state = step(inputs[t], state)
                        if isinstance(new_state, Tensor):
                            new_state = (new_state,)
                        if i == 0:
                            self._check_step(out, new_state, state, batch, owner)
                        if valid is None:
                            state = tuple(new_state)
                            outputs[t] = out
                            last = out
                        else:
                            state = tuple(ops.where(valid[t], new, old) for new, old in zip(new_state, state))
                            outputs[t] = ops.where(valid[t], out, 0.0)
                            if keep_last:
                                last = outputs[t] if last is None else ops.where(valid[t], out, last)
            finally:  # the cell's per-sequence share (W_hhᵀ) must not outlive the call
                end = getattr(cell, "end_sequence", None)
                if end is not None:
                    end()
        return outputs, state, last

    def _check_step(self, out: Any, new_state: Any, state: tuple, batch: int, owner: str) -> None:
        if not isinstance(out, Tensor) or not isinstance(new_state, (tuple, list)):
            raise TypeError(f"{owner}: cell.step must return (output Tensor, new_state tuple), got "
                            f"({type(out).__name__}, {type(new_state).__name__})")
        if out.ndim != 2 or out.shape[0] != batch:
            raise ValueError(f"{owner}: cell.step returned an output of shape {out.shape}, expected ({batch}, output_size)")
        if len(new_state) != len(state):
            raise ValueError(f"{owner}: cell.step returned {len(new_state)} state tensors, but state_size has "
                             f"{len(state)}")
        for k, (new, old) in enumerate(zip(new_state, state)):
            if not isinstance(new, Tensor) or new.shape != old.shape:
                raise ValueError(f"{owner}: cell.step returned new_state[{k}] of shape "
                                 f"{getattr(new, 'shape', type(new).__name__)}, expected {old.shape}")

    def run(self, x: Any, hx: Any = None, lengths: Any = None, mask: Any = None,
            padding_side: str = "right", keep_last: bool = False) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """``(output, final states per slot, last)``; ``last`` (N, D*output) is, with ``keep_last``,
        each sequence's output at the last step each direction ran (Keras' ``return_sequences=False``)."""
        name = type(self).__name__
        if padding_side not in PADDING_SIDES:
            raise ValueError(f"{name}: padding_side must be 'right' or 'left', got {padding_side!r}")
        x, batched = self._check_input(x)
        steps, batch = x.shape[0], x.shape[1]
        if lengths is not None and mask is not None:
            raise ValueError(f"{name}: pass lengths or mask, not both")
        valid = None
        if lengths is not None:
            valid = self._length_masks(self._check_lengths(lengths, steps, batch), steps, padding_side)
        elif mask is not None:
            valid = self._mask_steps(mask, steps, batch, batched)
        initial = self._initial(hx, batch, batched)

        finals: list[list[Tensor]] = [[] for _ in self.state_size]
        layer_input, lasts = x, []
        if self.record_states:
            object.__setattr__(self, "recorded_states", [])
        for layer, cells in enumerate(self.layer_cells):
            direction_outputs, lasts = [], []
            with scope(f"l{layer}"):
                for d, cell in enumerate(cells):
                    index = layer * self.num_directions + d
                    start = cell.initial_state(batch, x.dtype)
                    start = (start,) if isinstance(start, Tensor) else tuple(start)
                    if initial is not None:
                        start = tuple(s if slot is None else slot[index] for s, slot in zip(start, initial))
                    outs, state, last = self._run_direction(cell, layer_input, start, valid, d == 1, keep_last)
                    if self.record_states and layer == self.num_layers - 1:
                        self.recorded_states.append(list(outs))
                    direction_outputs.append(ops.stack(outs, axis=0))
                    lasts.append(last)
                    for k, s in enumerate(state):
                        finals[k].append(s)
                out = direction_outputs[0] if len(direction_outputs) == 1 else ops.cat(direction_outputs, axis=2)
                if layer < self.num_layers - 1 and self.dropout > 0.0 and self.training:
                    out = ops.dropout(out, self.dropout, True)
            layer_input = out

        output = layer_input
        states = [ops.stack(f, axis=0) for f in finals]
        last = (lasts[0] if len(lasts) == 1 else ops.cat(lasts, axis=-1)) if keep_last else None
        if not batched:
            output = ops.squeeze(output, 1)
            states = [ops.squeeze(s, 1) for s in states]
            last = ops.squeeze(last, 0) if last is not None else None
        elif self.batch_first:
            output = ops.transpose(output, 0, 1)
        return output, states, last

    def forward(self, x: Any, hx: Any = None, lengths: Sequence[int] | None = None, mask: Any = None,
                padding_side: str = "right") -> tuple[Tensor, Any]:
        output, states, _ = self.run(x, hx, lengths, mask, padding_side)
        return output, (states[0] if len(states) == 1 else tuple(states))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with scope(self.kind):
            return super().__call__(*args, **kwargs)

    def extra_repr(self) -> str:
        text = f"num_layers={self.num_layers}" if self.num_layers != 1 else ""
        for key, default in (("batch_first", False), ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, key) != default:
                text += (", " if text else "") + f"{key}={getattr(self, key)}"
        return text


class LayerCell:
    """One layer and direction of an RNN/LSTM/GRU seen as a cell, over the layer's own
    PyTorch-named parameters (looked up on every call, so ``load_state_dict``, ``to()`` and
    reassigned parameters are seen). Not a Module: the layer owns the parameters."""

    def __init__(self, layer: "_Builtin", index: int, suffix: str, input_size: int):
        self.layer, self.index, self.suffix, self.input_size = layer, index, suffix, input_size

    def _get(self, name: str) -> Tensor | None:
        return getattr(self.layer, f"{name}_l{self.index}{self.suffix}", None)

    @property
    def state_size(self) -> tuple[int, ...]:
        h, p = self.layer.hidden_size, getattr(self.layer, "proj_size", 0)
        return (p or h, h) if self.layer.mode == "LSTM" else (h,)

    @property
    def output_size(self) -> int:
        return self.state_size[0]

    def initial_state(self, batch: int, dtype: Any = None) -> tuple[Tensor, ...]:
        dtype = self._get("weight_ih").dtype if dtype is None else np.dtype(dtype)
        return tuple(Tensor(np.zeros((batch, size), dtype=dtype)) for size in self.state_size)

    def project_input(self, x: Tensor) -> Tensor:
        """x W_ihᵀ + b_ih (+ b_hh, except for the GRU whose b_hn sits inside the reset product)."""
        w_ih, b_ih, b_hh = self._get("weight_ih"), self._get("bias_ih"), self._get("bias_hh")
        # Once per sequence, outside the steps: the transposed recurrent weights the steps share.
        w_hr = self._get("weight_hr")
        self._transposed = (self._get("weight_hh").T, None if w_hr is None else w_hr.T)
        if b_ih is None:
            return x @ w_ih.T
        return ops.addmm(b_ih if self.layer.mode == "GRU" else b_ih + b_hh, x, w_ih.T)

    def step_projected(self, gx: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        (whh_t, whr_t), mode = self._transposed, self.layer.mode
        if mode == "LSTM":
            h, c = lstm_step(gx, state[0], state[1], whh_t)
            if whr_t is not None:
                h = h @ whr_t           # h_t = W_hr (o_t ⊙ tanh(c_t))
            return h, (h, c)
        if mode == "GRU":
            h = gru_step(gx, state[0], whh_t, self._get("bias_hh"))
        else:
            h = rnn_step(gx, state[0], whh_t, self.layer.nonlinearity)
        return h, (h,)

    def step(self, x: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        try:
            return self.step_projected(self.project_input(x), state)
        finally:
            self.end_sequence()

    def end_sequence(self) -> None:
        """Drop the transposed weights the steps of one sequence shared (no tensor of this call
        may outlive it: it would hold on to the call's graph)."""
        self._transposed = None


class _Builtin(Recurrent):
    """RNN/LSTM/GRU: PyTorch's arguments and parameter names over ``Recurrent``'s loop."""

    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 nonlinearity: Any = "tanh", proj_size: int = 0):
        Module.__init__(self)
        name = type(self).__name__
        self.input_size = check_size(input_size, "input_size", name)
        self.hidden_size = check_size(hidden_size, "hidden_size", name)
        self._configure(num_layers, bidirectional, batch_first, dropout)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"{name}: bias must be a bool, got {type(bias).__name__}")
        self.nonlinearity = check_nonlinearity(nonlinearity, name)
        proj_size = check_size(proj_size, "proj_size", name, minimum=0)
        if proj_size >= self.hidden_size:
            raise ValueError(f"{name}: proj_size has to be smaller than hidden_size ({self.hidden_size}), got {proj_size}")
        self.bias = bool(bias)
        self.proj_size = proj_size
        self.kind = self.mode.lower()

        gh = _GATES[self.mode] * self.hidden_size
        out = proj_size or self.hidden_size
        k = 1.0 / math.sqrt(self.hidden_size)
        # Registration order is PyTorch's: per layer, per direction: w_ih, w_hh, b_ih, b_hh (, w_hr).
        cells = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else out * self.num_directions
            for suffix in ("", "_reverse")[:self.num_directions]:
                setattr(self, f"weight_ih_l{layer}{suffix}", uniform((gh, layer_input), k))
                setattr(self, f"weight_hh_l{layer}{suffix}", uniform((gh, out), k))
                if self.bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", uniform((gh,), k))
                    setattr(self, f"bias_hh_l{layer}{suffix}", uniform((gh,), k))
                if proj_size:
                    setattr(self, f"weight_hr_l{layer}{suffix}", uniform((proj_size, self.hidden_size), k))
                cells.append(LayerCell(self, layer, suffix, layer_input))
        self._set_cells(cells)

    def _param_dtype(self) -> np.dtype:
        return self.weight_ih_l0.dtype

    def _state_names(self) -> tuple[str, ...]:
        return ("h_0", "c_0") if self.mode == "LSTM" else ("hx",)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for key, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        if self.mode == "RNN" and self.nonlinearity != "tanh":
            text += f", nonlinearity={self.nonlinearity!r}"
        return text


class RNN(_Builtin):
    """Elman RNN: h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh). Returns ``(output, h_n)``.

    Note PyTorch's argument order: ``RNN(input_size, hidden_size, num_layers, nonlinearity, bias,
    batch_first, dropout, bidirectional)``. ``nonlinearity`` is PyTorch's "tanh" or "relu", or (an
    extension) "sigmoid" or any callable Tensor -> Tensor. ``forward(x, hx=None, lengths=None,
    mask=None, padding_side="right")`` as :class:`Recurrent`.
    """

    mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str | Callable = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, nonlinearity)


class LSTM(_Builtin):
    """LSTM with gate blocks [i | f | g | o]. Returns ``(output, (h_n, c_n))``.

    ``proj_size = P > 0`` (PyTorch's LSTMP): ``h_t = W_hr (o_t ⊙ tanh(c_t))`` with ``weight_hr_l{k}``
    ``(P, H)``; ``h`` and the output have P features, ``c`` keeps H.
    """

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size=proj_size)


class GRU(_Builtin):
    """GRU with gate blocks [r | z | n], b_hn inside the reset product. Returns ``(output, h_n)``."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)


class LastOutput(Module):
    """A sequence layer that returns only each sequence's last output, ``(N, D*output_size)``
    (Keras' ``return_sequences=False``; in ``nn.Sequential`` a bare layer passes on its whole
    output sequence, Keras' ``return_sequences=True``). "Last" is the last step each direction
    ran: with ``mask``/``lengths``, the forward direction's last valid step and the reverse
    direction's first valid one, so padding on either side gives the same result."""

    takes_mask = True

    def __init__(self, layer: Recurrent):
        super().__init__()
        if not isinstance(layer, Recurrent):
            raise TypeError(f"LastOutput: layer must be a sequence layer (nn.Recurrent, RNN, LSTM, GRU), got "
                            f"{type(layer).__name__}")
        self.layer = layer

    def forward(self, x: Any, hx: Any = None, lengths: Any = None, mask: Any = None,
                padding_side: str = "right") -> Tensor:
        tracer = engine.get_tracer()
        if tracer is not None:  # the layer runs without its __call__: let compile see its .training
            tracer.on_module(self.layer)
        with scope(self.layer.kind):
            _, _, last = self.layer.run(x, hx, lengths, mask, padding_side, keep_last=True)
        return last
