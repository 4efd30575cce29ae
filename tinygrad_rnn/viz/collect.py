"""Collecting a graph for drawing: the tensors the roots depend on in topological order, their
kinds, which time step each belongs to, steps grouped by identical structure, and the names that
teach (parameter names, gate names ``i f g o`` / ``r z n``, states ``h_t`` ``c_t``)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..autograd.tensor import Tensor
from .engine_access import graph_order, is_freed

__all__ = [
    "CollectedGraph", "STEP_PART", "Step", "flatten_roots", "param_names", "split_step_scope",
    "step_scope", "teaching_names", "value_stats",
]

STEP_PART = re.compile(r"t(\d+)")
SPLIT_OPS = ("split", "chunk")
GATE_NAMES = {"lstm": {4: "ifgo"}, "gru": {3: "rzn"}}


def flatten_roots(roots: Sequence[Any], fn: str) -> list[Tensor]:
    """Tensors from ``roots``, tuples and lists unpacked (``to_dot(lstm(x))`` works), each once."""
    found: list[Tensor] = []
    seen: set[int] = set()
    stack = list(reversed(roots))
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            if id(item) not in seen:
                seen.add(id(item))
                found.append(item)
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        else:
            raise TypeError(f"{fn}: roots must be Tensors (or tuples/lists of them), got {type(item).__name__}")
    if not found:
        raise ValueError(f"{fn}: expected at least one root Tensor, got none")
    return found


def step_scope(scope: str | None) -> str | None:
    """The outermost prefix of ``scope`` that names a time step (ends in ``t<k>``), or None."""
    if not scope:
        return None
    parts = scope.split("/")
    for k, part in enumerate(parts):
        if STEP_PART.fullmatch(part):
            return "/".join(parts[: k + 1])
    return None


def split_step_scope(step: str) -> tuple[str, int]:
    """``"lstm/l0/fwd/t3"`` -> ``("lstm/l0/fwd", 3)``: the lane (the steps' parent) and t."""
    lane, _, last = step.rpartition("/")
    return lane, int(STEP_PART.fullmatch(last).group(1))


def param_names(params: Any, fn: str = "to_dot") -> dict[int, str]:
    """``id(tensor) -> name`` from a mapping (or pairs) name -> Tensor, first name wins."""
    if params is None:
        return {}
    items = params.items() if isinstance(params, Mapping) else params
    names: dict[int, str] = {}
    try:
        for name, tensor in items:
            if not isinstance(name, str) or not isinstance(tensor, Tensor):
                raise TypeError
            names.setdefault(id(tensor), name)
    except (TypeError, ValueError):
        raise TypeError(
            f"{fn}: params must map names to Tensors, e.g. dict(model.named_parameters()), "
            f"got {type(params).__name__}"
        ) from None
    return names


@dataclass
class Step:
    """One time step: its scope, lane and index, its tensors' positions in local (topological)
    order, and the key of its structure (steps with equal keys are drawn alike)."""

    scope: str
    lane: str
    t: int
    members: list[int] = field(default_factory=list)
    signature: tuple = ()


class CollectedGraph:
    """Everything the roots depend on (constants included), numbered in topological order."""

    def __init__(self, roots: Sequence[Any], fn: str):
        self.roots = flatten_roots(roots, fn)
        self.order = graph_order(self.roots)
        self.position = {id(t): i for i, t in enumerate(self.order)}
        self.root_ids = {id(r) for r in self.roots}
        for t in self.order:
            if is_freed(t):
                raise ValueError(
                    f"{fn}: part of the graph was freed by backward() (op '{t.op}', scope {t.scope!r}); "
                    "call backward(retain_graph=True) to draw or inspect the graph afterwards"
                )
        self.parents = [[self.position[id(p)] for p in t.parents] for t in self.order]
        self._steps: dict[str, Step] | None = None

    def kind(self, t: Tensor) -> str:
        if id(t) in self.root_ids:
            return "output"
        if t.parents:
            return "intermediate"
        return "parameter" if t.requires_grad else "input"

    def consumers(self) -> list[list[tuple[int, int]]]:
        """Per tensor, (consumer position, argument index) for every use."""
        uses: list[list[tuple[int, int]]] = [[] for _ in self.order]
        for i, parents in enumerate(self.parents):
            for k, p in enumerate(parents):
                uses[p].append((i, k))
        return uses

    def step_of_tensor(self, t: Tensor) -> str | None:
        """The time step ``t`` is drawn in (see :meth:`steps`), or None."""
        self.steps()
        return self.step_of[self.position[id(t)]]

    def steps(self) -> dict[str, Step]:
        """Time steps by scope path, in order of first appearance, each with its members and a
        structural signature: per member (op, dtype, shape, parents as local index or -1)."""
        if self._steps is not None:
            return self._steps
        steps: dict[str, Step] = {}
        step_of: list[str | None] = [step_scope(t.scope) for t in self.order]
        # A step's slice of the hoisted input projection (or of a lengths mask) is made by one
        # unbind outside the steps; it belongs to the one step that uses it.
        used_in: dict[int, set] = {}
        for i, parents in enumerate(self.parents):
            for p in parents:
                used_in.setdefault(p, set()).add(step_of[i])
        for i, t in enumerate(self.order):
            if step_of[i] is None and t.op == "unbind" and len(used_in.get(i, ())) == 1:
                step_of[i] = next(iter(used_in[i]))
        for i, t in enumerate(self.order):
            scope = step_of[i]
            if scope is None:
                continue
            step = steps.get(scope)
            if step is None:
                lane, index = split_step_scope(scope)
                step = steps[scope] = Step(scope, lane, index)
            step.members.append(i)
        for step in steps.values():
            local = {pos: k for k, pos in enumerate(step.members)}
            step.signature = tuple(
                (self.order[pos].op, str(self.order[pos].dtype), tuple(self.order[pos].shape),
                 self.order[pos].requires_grad,
                 tuple(local.get(p, -1) for p in self.parents[pos]))
                for pos in step.members
            )
        self.step_of = step_of
        self._steps = steps
        return steps


def teaching_names(graph: CollectedGraph, names: Mapping[int, str]) -> dict[int, str]:
    """Position -> name for the tensors a reader should recognise.

    - Parameters: their name in ``names`` (id -> name, e.g. from ``named_parameters()``), else
      ``tensor.name``.
    - Gate outputs: the k-th of n outputs of a ``split``/``chunk`` inside an ``lstm`` scope with
      n = 4 is ``i f g o`` (PyTorch's gate order); inside ``gru`` with n = 3 ``r z n``, prefixed
      ``gx_`` for the input projection's pieces and ``gh_`` for the hidden one's.
    - States: a tensor of step t of a lane that a different step of the same lane reads is a
      carried state: ``h_t`` if some reader multiplies it by a weight (``addmm``/``matmul``), else
      ``c_t``. The tensor at the same place of the same structure in another step (e.g. the last
      step's, which no later step reads) gets the same name with its own t.
    """
    order = graph.order
    out: dict[int, str] = {}
    for i, t in enumerate(order):
        name = names.get(id(t)) or t.name
        if name:
            out[i] = name
    # Gates: group the outputs of one split by (parent, op).
    siblings: dict[tuple[int, str], list[int]] = {}
    for i, t in enumerate(order):
        if t.op in SPLIT_OPS and len(graph.parents[i]) == 1:
            siblings.setdefault((graph.parents[i][0], t.op), []).append(i)
    for (parent, _op), group in siblings.items():
        scope = order[group[0]].scope or ""
        gates = GATE_NAMES.get(scope.split("/")[0], {}).get(len(group))
        if gates is None:
            continue
        prefix = ""
        if scope.split("/")[0] == "gru":
            prefix = "gx_" if order[parent].op in ("getitem", "unbind") else "gh_"
        for i in group:
            index = order[i].output_index
            if 0 <= index < len(gates) and i not in out:
                out[i] = prefix + gates[index]
    # States: carried from one step to another step of the same lane.
    steps = graph.steps()
    step_of = graph.step_of
    uses = graph.consumers()
    # (lane, signature, local index) -> "h" / "c"
    roles: dict[tuple, str] = {}
    for step in steps.values():
        for k, pos in enumerate(step.members):
            readers = [(c, arg) for c, arg in uses[pos]
                       if step_of[c] is not None and step_of[c] != step.scope
                       and steps[step_of[c]].lane == step.lane]
            if not readers:
                continue
            weighted = any(order[c].op in ("addmm", "matmul") for c, _ in readers)
            key = (step.lane, step.signature, k)
            roles[key] = "h" if weighted or roles.get(key) == "h" else "c"
    for step in steps.values():
        for k, pos in enumerate(step.members):
            role = roles.get((step.lane, step.signature, k))
            if role is not None and pos not in out:
                out[pos] = f"{role}_{step.t}"
    return out


def value_stats(t: Tensor) -> dict[str, float] | None:
    """min, max, mean, std of a tensor's values (float64), or None for an empty tensor."""
    data = np.asarray(t.data, dtype=np.float64) if t.dtype.kind in "fiub" else None
    if data is None or data.size == 0:
        return None
    return {"min": float(data.min()), "max": float(data.max()), "mean": float(data.mean()),
            "std": float(data.std())}
