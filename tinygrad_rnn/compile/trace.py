"""Recording a schedule: what one eager call of a function ran.

While a :class:`Tracer` is installed (``engine.set_tracer``), the engine reports every op it
applies, every backward walk and every marked side effect (``engine.effect``: optimizer steps,
``zero_grad``, gradient clipping). The tracer gives each array a *slot*: the inputs of the
function, the tensors made outside it that it reads (parameters, constants: *externals*, read
afresh on every replay) and the results of its ops. The schedule is that list of steps over
slots; :mod:`.passes` turns it into a program and :mod:`.replay` runs it.
"""
from __future__ import annotations

import collections.abc
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..autograd import engine
from ..autograd.tensor import Tensor

__all__ = ["CompileError", "Slot", "OpStep", "EffectStep", "BackwardStep", "Schedule", "Tracer"]


class CompileError(RuntimeError):
    """The function cannot be captured as a static schedule (and why)."""


@dataclass
class Slot:
    """One array of the schedule: where it comes from, its shape and dtype, for error messages
    and the passes."""

    index: int
    kind: str            # "input", "external" or "op"
    shape: tuple
    dtype: np.dtype
    source: int          # the input position, the external's position, or the op step's index
    label: str = ""      # what produced it, for messages ("tanh in lstm/l0/fwd/t3")


@dataclass
class OpStep:
    """``outputs = forward(*inputs, *args, **kwargs)``, keeping its backward if it recorded a node."""

    forward: Callable
    name: str
    inputs: list[int]
    args: tuple
    kwargs: dict
    needs: tuple | None
    outputs: list[int]
    many: bool
    has_node: bool


@dataclass
class EffectStep:
    """A marked side effect, called again with the same arguments on replay."""

    fn: Callable
    args: tuple
    kwargs: dict


@dataclass
class BackwardStep:
    """One ``backward()``: the roots and their seeds, and the nodes in the order the walk visits
    them, each with its inputs as ``(slot, requires_grad, is_leaf)``."""

    roots: list[int]
    seeds: list[np.ndarray]
    nodes: list[tuple[int, list[tuple[int, bool, bool]]]]


@dataclass
class Schedule:
    """What one traced call ran, in order: its array ``slots``, the ``steps`` (ops, backward walks,
    side effects), the tensors it read from outside, its inputs and outputs, and the modules'
    ``training`` flags it depends on."""
    slots: list[Slot] = field(default_factory=list)
    steps: list = field(default_factory=list)
    externals: list[Tensor] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)     # slot of each flattened input
    outputs: Any = None                                  # the result's structure, slots at the leaves
    guards: list[tuple[Any, bool]] = field(default_factory=list)  # (module, its .training)


class Tracer:
    """The engine's observer while one call of a compiled function runs eagerly."""

    def __init__(self) -> None:
        self.schedule = Schedule()
        self.slot_of: dict[int, int] = {}
        self.keep: list = []                 # every traced tensor, so ids stay unique meanwhile
        self.node_step: dict[int, int] = {}  # id(node) -> op step index
        self.modules: dict[int, tuple[Any, bool]] = {}
        self.suspended = 0                   # > 0 inside an effect: its inner calls are its own

    # ----- slots ----------------------------------------------------------------------------------
    def _new_slot(self, t: Tensor, kind: str, source: int, label: str) -> int:
        index = len(self.schedule.slots)
        self.schedule.slots.append(Slot(index, kind, t.data.shape, t.data.dtype, source, label))
        self.slot_of[id(t)] = index
        self.keep.append(t)
        return index

    def add_input(self, t: Tensor) -> None:
        position = len(self.schedule.inputs)
        self.schedule.inputs.append(self._new_slot(t, "input", position, f"input {position}"))

    def slot(self, t: Tensor) -> int:
        index = self.slot_of.get(id(t))
        if index is None:  # made outside the function (or by Tensor(...) inside): read on replay
            position = len(self.schedule.externals)
            self.schedule.externals.append(t)
            label = t.name or f"{'parameter' if t.requires_grad else 'constant'} of shape {t.shape}"
            index = self._new_slot(t, "external", position, label)
        return index

    # ----- engine hooks ---------------------------------------------------------------------------
    def on_op(self, forward: Callable, tensors: tuple, args: tuple, kwargs: dict, outs: Any,
              many: bool) -> None:
        if self.suspended:
            return
        kwargs = dict(kwargs)
        needs = kwargs.pop("needs", None)
        inputs = [self.slot(t) for t in tensors]
        step_index = len(self.schedule.steps)
        results = outs if many else [outs]
        name = getattr(forward, "__name__", "op")
        where = results[0].scope
        label = name if where is None else f"{name} in {where}"
        outputs = [self._new_slot(t, "op", step_index, label) for t in results]
        node = results[0].grad_fn
        self.schedule.steps.append(OpStep(forward, name, inputs, args, kwargs, needs, outputs, many,
                                          node is not None))
        if node is not None:
            self.node_step[id(node)] = step_index

    def on_backward(self, roots: list, grads: list, retain_graph: bool) -> None:
        if self.suspended:
            return
        nodes = []
        for node in reversed(engine.node_order(roots)):
            step = self.node_step.get(id(node))
            if step is None:
                raise CompileError(
                    f"backward() reaches op '{node.op}', which ran before the compiled function was "
                    "called (a hidden state carried over from the previous call?): pass such "
                    "tensors in .detach()ed, or compute them inside the function"
                )
            inputs = [(self.slot_of[id(t)], t.requires_grad, t.is_leaf) for t in node.inputs]
            nodes.append((step, inputs))
        root_slots = []
        for r in roots:
            if id(r) not in self.slot_of:
                raise CompileError("backward() on a tensor the compiled function did not compute")
            root_slots.append(self.slot_of[id(r)])
        seeds = [np.array(g, copy=True) for g in grads]
        self.schedule.steps.append(BackwardStep(root_slots, seeds, nodes))

    def on_effect(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        if self.suspended:
            return fn(*args, **kwargs)
        # A generator of parameters would be used up by this call and empty on replay.
        args = tuple(list(a) if isinstance(a, collections.abc.Iterator) else a for a in args)
        self.schedule.steps.append(EffectStep(fn, args, dict(kwargs)))
        self.suspended += 1
        try:
            return fn(*args, **kwargs)
        finally:
            self.suspended -= 1

    def on_value_read(self, t: Tensor, what: str) -> None:
        if self.suspended:
            return
        raise CompileError(
            f"{what} reads a tensor's value into Python inside a compiled function; the value "
            "would be frozen at the first call and the Python code that uses it would not run on "
            "replay. Return the tensor and read it outside, or run this function uncompiled"
        )

    def on_module(self, module: Any) -> None:
        if not self.suspended:
            self.modules.setdefault(id(module), (module, bool(module.training)))

    # ----- the result -----------------------------------------------------------------------------
    def finish(self, result: Any) -> Schedule:
        self.schedule.outputs = self._structure(result)
        self.schedule.guards = list(self.modules.values())
        return self.schedule

    def _structure(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Tensor):
            node = value.grad_fn
            if node is not None and not node.freed and value.requires_grad:
                raise CompileError(
                    "the compiled function returned a tensor that still carries its graph: call "
                    "backward() inside the function (a training step), or run inference under "
                    "no_grad(); a replay returns plain tensors without a graph"
                )
            return ("tensor", self.slot(value))
        if isinstance(value, (tuple, list)):
            return (type(value).__name__, [self._structure(v) for v in value])
        if isinstance(value, dict):
            return ("dict", {k: self._structure(v) for k, v in value.items()})
        raise CompileError(
            f"the compiled function returned a {type(value).__name__}; return Tensors (or None, "
            "or tuples/lists/dicts of them): other values would be frozen at the first call"
        )
