"""Gradient flow through time: ``||dL/dh_t||`` for every step of a recurrent layer.

The per-step hidden states are handed over by the layer itself: ``gradient_flow`` sets
``record_states`` on the model's last ``nn.Recurrent`` (``nn.RNN``/``LSTM``/``GRU`` included),
which then keeps its last layer's per-step outputs in ``recorded_states`` for that call.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..nn.module import Module
from ..nn.recurrent import Recurrent
from ..autograd.tensor import Tensor
from .engine_access import gradient_not_kept

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


def _last_recurrent(model: Any) -> Recurrent:
    """The recurrent layer whose states are measured: ``model`` itself, or the last
    ``nn.Recurrent`` registered in it."""
    if isinstance(model, Recurrent):
        return model
    if isinstance(model, Module):
        layers = [m for m in model.modules() if isinstance(m, Recurrent)]
        if layers:
            return layers[-1]
    raise TypeError(
        "gradient_flow: model must be a recurrent layer (nn.RNN, LSTM, GRU, Recurrent) or a Module "
        f"that contains one, got {type(model).__name__}"
    )


def gradient_flow(model: Callable[[Any], Any], x: Any,
                  loss_fn: Callable[[Tensor], Tensor] | None = None,
                  time_axis: int | None = None) -> np.ndarray:
    """``||dL/dh_t||`` for t = 0..T-1: how much gradient reaches each step's hidden state.

    Runs ``model(x)`` (a sequence layer, or a Module containing one: its last ``nn.Recurrent``
    is measured; a tuple result's first element is the output), keeps the gradients of that
    layer's last-layer per-step states h_t (which the layer records for this call), computes
    ``loss_fn(output)`` -- by default the sum of the output at the last time step, so every
    earlier h_t receives gradient only through the recurrence -- and backpropagates. For a
    bidirectional layer the norm covers both directions. One backward pass: parameters' ``.grad``
    accumulate as usual.
    """
    if not callable(model):
        raise TypeError(f"gradient_flow: model must be callable, got {type(model).__name__}")
    layer = _last_recurrent(model)
    object.__setattr__(layer, "record_states", True)
    try:
        result = model(x)
    finally:
        object.__setattr__(layer, "record_states", False)
    directions = layer.recorded_states
    object.__setattr__(layer, "recorded_states", None)
    output = result[0] if isinstance(result, (tuple, list)) else result
    if not isinstance(output, Tensor) or not output.requires_grad:
        raise ValueError("gradient_flow: the model's output must be a Tensor that requires grad")
    if not directions:
        raise ValueError("gradient_flow: the model did not run its recurrent layer")
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
