"""Every place where ``viz`` reads the engine's graph beyond the public ``Tensor`` accessors
(``parents``, ``op``, ``scope``, ``grad``, ``shape``, ``dtype``, ``requires_grad``, ``name``): the
node of a tensor (``Tensor.grad_fn``) and its backward function.

- :func:`graph_order`: the topological order of everything the roots depend on (constants too).
- :func:`is_freed`: whether backward() freed a node.
- :func:`edge_gradient_norms`: per argument of an op result, the norm of the gradient backward
  sent along that edge, recomputed by calling the op's backward on the retained ``.grad``.
- :func:`gradient_not_kept`: an intermediate whose ``.grad`` was never asked to be retained.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..autograd.engine import graph_tensors, unbroadcast
from ..autograd.tensor import Tensor

__all__ = [
    "edge_gradient_norms", "graph_order", "gradient_not_kept", "is_freed",
]


def graph_order(roots: Sequence[Tensor], needs_grad_only: bool = False) -> list[Tensor]:
    """Every tensor the roots depend on (only those that require grad if ``needs_grad_only``),
    each after its parents; the order depends on the graph's structure only (so drawings are
    deterministic)."""
    order = graph_tensors(list(roots))
    return [t for t in order if t.requires_grad] if needs_grad_only else order


def is_freed(t: Tensor) -> bool:
    """True when backward() without ``retain_graph=True`` already freed this node's graph."""
    return t.grad_fn is not None and t.grad_fn.freed


def gradient_not_kept(t: Tensor) -> bool:
    """True for an intermediate with no ``.grad`` on which ``retain_grad()`` was never called."""
    return t.grad is None and t.grad_fn is not None and not t.retains_grad


def edge_gradient_norms(t: Tensor) -> list[float | None]:
    """Per argument of ``t``, ``||g_k||`` of the gradient backward sent along that edge on behalf of
    ``t`` (None where none flows): the op's backward applied again to the retained ``t.grad``
    (zeros for the op's other outputs, if it has several)."""
    node = t.grad_fn
    if t.grad is None or node is None:
        return [None] * len(t.parents)
    g = np.asarray(t.grad)
    if node.out_meta is None:
        grads = node.backward(g)
    else:
        outs: list = [None] * len(node.out_meta)
        outs[t.output_index] = g
        grads = node.backward(*node.output_grads(outs))
    flows: list[float | None] = []
    for p, gp in zip(node.inputs, grads):
        if gp is None or not p.requires_grad:
            flows.append(None)
            continue
        gp = unbroadcast(np.asarray(gp), p.shape)
        flows.append(float(np.linalg.norm(np.asarray(gp, dtype=np.float64).ravel())))
    return flows
