"""Gradient flow through time: ``||dL/dh_t||`` for every step of a recurrent layer.

The per-step hidden states are found in the graph: a ``stack`` whose i-th argument was made in
the step scope ``<prefix>/t<i>`` (how ``nn/recurrent.py`` assembles a layer's output).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..tensor import Tensor
from .engine_access import gradient_not_kept, graph_order

__all__ = ["gradient_flow", "step_grad_norms"]


def step_grad_norms(states: Sequence[Tensor]) -> np.ndarray:
    """``||states[t].grad||`` for every t (0 where no gradient reached it), after backward."""
    norms = np.zeros(len(states))
    for t, state in enumerate(states):
        if not isinstance(state, Tensor):
            raise TypeError(f"step_grad_norms: states must be Tensors, got {type(state).__name__} at {t}")
        if gradient_not_kept(state):
            raise ValueError(
                f"step_grad_norms: states[{t}] is an intermediate whose gradient was not kept; call "
                "retain_grad() on it before backward()"
            )
        if state.grad is not None:
            norms[t] = float(np.linalg.norm(np.asarray(state.grad, dtype=np.float64).ravel()))
    return norms


def _is_time_stack(t: Tensor) -> bool:
    """A ``stack`` whose i-th argument was made directly in a step scope ``<prefix>/t<i>``."""
    if t.op != "stack" or not t.parents:
        return False
    prefix = None
    for i, p in enumerate(t.parents):
        head, _, last = (p.scope or "").rpartition("/")
        if last != f"t{i}" or (prefix is not None and head != prefix):
            return False
        prefix = head
    return True


def _top_layer_states(output: Tensor) -> list[list[Tensor]]:
    """Per direction, the per-step hidden states h_0..h_{T-1} of the last recurrent layer."""
    groups: dict[str | None, list[Tensor]] = {}
    last = None
    for t in graph_order([output], needs_grad_only=True):
        if _is_time_stack(t):
            groups.setdefault(t.scope, []).append(t)
            last = t.scope
    if not groups:
        raise ValueError(
            "gradient_flow: found no per-step hidden states in the graph of the model's output; the "
            "model must run a tinygrad_rnn.nn RNN, LSTM or GRU layer (their steps are scoped .../t<k>)"
        )
    return [list(s.parents) for s in groups[last]]


def gradient_flow(model: Callable[[Any], Any], x: Any,
                  loss_fn: Callable[[Tensor], Tensor] | None = None,
                  time_axis: int | None = None) -> np.ndarray:
    """``||dL/dh_t||`` for t = 0..T-1: how much gradient reaches each step's hidden state.

    Runs ``model(x)`` (a sequence layer or any callable built on one; a tuple result's first
    element is the output), keeps the gradients of the last layer's per-step states h_t, computes
    ``loss_fn(output)`` -- by default the sum of the output at the last time step, so every
    earlier h_t receives gradient only through the recurrence -- and backpropagates. For a
    bidirectional layer the norm covers both directions. One backward pass: parameters' ``.grad``
    accumulate as usual.
    """
    if not callable(model):
        raise TypeError(f"gradient_flow: model must be callable, got {type(model).__name__}")
    result = model(x)
    output = result[0] if isinstance(result, (tuple, list)) else result
    if not isinstance(output, Tensor) or not output.requires_grad:
        raise ValueError("gradient_flow: the model's output must be a Tensor that requires grad")
    directions = _top_layer_states(output)
    for states in directions:
        for state in states:
            state.retain_grad()
    if loss_fn is None:
        if time_axis is None:
            time_axis = 1 if getattr(model, "batch_first", False) and output.ndim == 3 else 0
        if not isinstance(time_axis, int) or not 0 <= time_axis < output.ndim:
            raise ValueError(f"gradient_flow: time_axis must be in [0, {output.ndim}), got {time_axis!r}")
        loss = output[(slice(None),) * time_axis + (-1,)].sum()
    else:
        loss = loss_fn(output)
    if not isinstance(loss, Tensor) or loss.size != 1:
        raise ValueError(f"gradient_flow: loss_fn must return a one-element Tensor, got {loss!r:.80}")
    loss.backward()
    return np.sqrt(sum(step_grad_norms(states) ** 2 for states in directions))
