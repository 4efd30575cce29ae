"""Every place where ``viz`` reads the engine's internals, in one module so an engine rewrite has
one file to port. The rest of ``viz`` uses only the public ``Tensor`` accessors (``parents``,
``op``, ``scope``, ``grad``, ``shape``, ``dtype``, ``requires_grad``, ``name``).

- :func:`graph_order`: the topological order of everything the roots depend on (constants too).
- :func:`is_freed`: whether backward() freed a node (its closure replaced by ``RELEASED``).
- :func:`edge_gradient_norms`: per argument of an op result, the norm of the gradient backward
  sent along that edge, recomputed by calling the op's backward closure on the retained ``.grad``.
- :func:`gradient_not_kept`: an intermediate whose ``.grad`` was never asked to be retained.
- :func:`sibling_output_index`: which output of a multi-output op (``split``/``chunk``) a tensor is.
- :func:`values_released`: whether ``release()`` replaced a tensor's values by a zero-strided view.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..tensor import RELEASED, SliceGrad, Tensor, assemble, topological_order, unbroadcast

__all__ = [
    "edge_gradient_norms", "graph_order", "gradient_not_kept", "is_freed", "sibling_output_index",
    "values_released",
]


def graph_order(roots: Sequence[Tensor], needs_grad_only: bool = False) -> list[Tensor]:
    """Every tensor the roots depend on (constants too unless ``needs_grad_only``), each after
    its parents; the order depends on the graph's structure only (so drawings are deterministic)."""
    return topological_order(list(roots), needs_grad_only=needs_grad_only)


def is_freed(t: Tensor) -> bool:
    """True when backward() without ``retain_graph=True`` already freed this node's graph."""
    return t._backward is RELEASED


def gradient_not_kept(t: Tensor) -> bool:
    """True for an intermediate with no ``.grad`` on which ``retain_grad()`` was never called."""
    return t.grad is None and t._backward is not None and not t._retain


def edge_gradient_norms(t: Tensor) -> list[float | None]:
    """Per argument of ``t``, ``||g_k||`` of the gradient backward sent along that edge (None where
    none flows): the op's backward applied again to the retained ``t.grad``."""
    parents = t.parents
    if t.grad is None or not parents:
        return [None] * len(parents)
    flows: list[float | None] = []
    for p, g in zip(parents, t._backward(np.asarray(t.grad))):
        if g is None or not p.requires_grad:
            flows.append(None)
            continue
        if isinstance(g, (np.ndarray, np.generic, float, int)):
            g = unbroadcast(np.asarray(g), p.shape)
        elif isinstance(g, SliceGrad) and not g.advanced:
            # zero outside a basic slice: the norm of the slice's values (densifying it would
            # cost the size of the whole parent per edge, O(T^2) for the T slices of a projection)
            g = np.broadcast_to(g.value, np.empty(p.shape, dtype=np.bool_)[g.index].shape)
        else:  # a deferred piece (a slice, a weight's aᵀg): densified the way backward does it
            g = assemble([g], p.data)
        flows.append(float(np.linalg.norm(np.asarray(g, dtype=np.float64).ravel())))
    return flows


def values_released(t: Tensor) -> bool:
    """True when ``release()`` dropped the tensor's values (they now read as zeros)."""
    data = t.data
    return (t._backward is not None and data.size > 1 and not data.flags.writeable
            and all(s == 0 for s in data.strides))


def sibling_output_index(t: Tensor, siblings: Sequence[Tensor]) -> int:
    """The output index of ``t`` among the outputs of one multi-output op (``siblings``: every
    tensor with the same op and the same single parent, ``t`` included).

    The engine's ``.output_index`` when it has one; otherwise creation order, which for today's
    ``split`` (each piece a view into its parent's buffer) is the piece's offset in that buffer;
    if the values were released (no offsets left), the order of ``siblings`` as given.
    """
    index = getattr(t, "output_index", None)
    if isinstance(index, (int, np.integer)):
        return int(index)

    def offset(s: Tensor) -> int | None:
        parent = s.parents[0].data
        if values_released(s) or not np.shares_memory(s.data, parent):
            return None
        return s.data.__array_interface__["data"][0] - parent.__array_interface__["data"][0]

    offsets = [offset(s) for s in siblings]
    if all(o is not None for o in offsets) and len(set(offsets)) == len(offsets):
        return sorted(offsets).index(offsets[[s is t for s in siblings].index(True)])
    return [s is t for s in siblings].index(True)
