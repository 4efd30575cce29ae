"""Fusion: several ops of a schedule become one, with fewer NumPy calls.

:func:`fuse_chunk_activations` finds a ``chunk`` (or ``split``) whose every piece feeds exactly
one ``sigmoid`` or ``tanh`` and nothing else, as an LSTM's gate block ``[i | f | g | o]`` does,
and replaces the chunk and its activations by one op over the whole block. With per-column
``s`` (½ for sigmoid, 1 for tanh)::

    y = tanh(s · x) · s + (1 - s)          sigmoid(x) = tanh(x/2)/2 + 1/2,  tanh(x) = tanh(x)
    dL/dx = concat(g) · (1 - y) · (y + 1 - 2(1 - s))    y(1 - y) for sigmoid, 1 - y² for tanh

Four NumPy calls forward instead of four per sigmoid, and one backward instead of one per piece
plus a concatenate. The eager engine never does this; only a replay does, and a checking replay
(``compile(check=True)``) compares it with eager execution like any other.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..autograd.ops import chunk, sigmoid, split, tanh
from .trace import BackwardStep, OpStep, Schedule

__all__ = ["chunk_activations", "fuse_chunk_activations"]


def chunk_activations(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, bounds: tuple,
                      axis: int) -> tuple:
    """The fused op: every piece of ``x`` along ``axis`` activated at once (see the module)."""
    y = x * scale
    np.tanh(y, out=y)
    y *= scale
    y += shift
    lead = (slice(None),) * axis
    pieces = tuple(y[lead + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:]))
    offset = 1.0 - 2.0 * shift   # 0 on sigmoid columns, 1 on tanh columns

    def backward(*grads: np.ndarray) -> tuple:
        slope = 1.0 - y
        slope *= y + offset
        g = np.concatenate(grads, axis=axis)
        g *= slope
        return (g,)
    return pieces, backward



def fuse_chunk_activations(schedule: Schedule) -> Schedule:
    """Replace each chunk whose pieces only feed one sigmoid/tanh each by one fused op."""
    steps = schedule.steps
    readers: dict[int, list[int]] = {}
    for index, step in enumerate(steps):
        if isinstance(step, OpStep):
            for slot in step.inputs:
                readers.setdefault(slot, []).append(index)
    outputs = _result_slots(schedule)
    fused: dict[int, tuple[int, list[int]]] = {}   # chunk index -> (new step index, activations)
    for index, step in enumerate(steps):
        if not isinstance(step, OpStep) or step.forward not in (chunk.forward, split.forward):
            continue
        activations = []
        for piece in step.outputs:
            users = readers.get(piece, [])
            if len(users) != 1 or piece in outputs:
                break
            user = steps[users[0]]
            if user.forward not in (sigmoid.forward, tanh.forward) or user.has_node != step.has_node:
                break
            activations.append(users[0])
        else:
            if len(set(activations)) == len(activations) and all(a > index for a in activations):
                fused[index] = (index, activations)
    if not fused:
        return schedule
    replaced: dict[int, OpStep | None] = {}
    for index, (_, activations) in fused.items():
        step = steps[index]
        x_slot = step.inputs[0]
        shape, dtype = schedule.slots[x_slot].shape, schedule.slots[x_slot].dtype
        axis = step.args[1] if len(step.args) > 1 else step.kwargs.get("axis", 0)
        axis = int(axis) % len(shape)
        sizes = [schedule.slots[o].shape[axis] for o in step.outputs]
        bounds = tuple(int(b) for b in np.cumsum([0] + sizes))
        scale = np.ones(shape[axis], dtype=dtype)
        for (a, b), user in zip(zip(bounds[:-1], bounds[1:]), activations):
            if steps[user].forward is sigmoid.forward:
                scale[a:b] = 0.5
        column = (shape[axis],) + (1,) * (len(shape) - axis - 1)
        scale = scale.reshape(column)
        shift = (1.0 - scale).astype(dtype)
        outputs_ = [steps[user].outputs[0] for user in activations]
        replaced[index] = OpStep(chunk_activations, "chunk_activations", [x_slot],
                                 (scale, shift, bounds, axis), {}, None, outputs_, True,
                                 step.has_node)
        for user in activations:
            replaced[user] = None
    # Steps keep their indices (backward steps refer to them): a removed step becomes a no-op.
    # The captured schedule itself is left as it was (check mode compares eager runs with it).
    new_steps = []
    for i, step in enumerate(steps):
        if i in replaced:
            step = _NOOP if replaced[i] is None else replaced[i]
        elif isinstance(step, BackwardStep):
            step = BackwardStep(step.roots, step.seeds, _fuse_walk(step.nodes, fused))
        new_steps.append(step)
    return dataclasses.replace(schedule, steps=new_steps)


class _NoOp:
    """What a fused-away step leaves behind (nothing runs)."""


_NOOP = _NoOp()


def _fuse_walk(nodes: list, fused: dict) -> list:
    gone = {user for _, activations in fused.values() for user in activations}
    walk = []
    for op_index, inputs in nodes:
        if op_index in gone:
            continue
        walk.append((op_index, inputs))  # the chunk's entry now stands for the fused op
    return walk


def _result_slots(schedule: Schedule) -> set[int]:
    from .passes import output_slots
    return set(output_slots(schedule.outputs))

