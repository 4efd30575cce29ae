"""Counting a graph: nodes, edges, depth, op counts per scope and time steps per layer."""
from __future__ import annotations

from typing import Any

from .collect import STEP_PART, CollectedGraph

__all__ = ["graph_stats", "retain_grads"]


def graph_stats(*roots: Any) -> dict:
    """Counts over the graph of ``roots`` (constants included).

    Keys: ``nodes`` (tensors), ``edges`` (op arguments), ``depth`` (ops on the longest path from a
    leaf to a root), ``parameters`` (leaves that require grad), ``inputs`` (other leaves), ``ops``
    (op name -> count), ``scopes`` (scope path, "" for none -> op name -> count; ops only), and
    ``steps`` (parent path -> number of time-step scopes ``.../t<k>`` under it).
    """
    graph = CollectedGraph(roots, "graph_stats")
    depth = [0] * len(graph.order)
    ops: dict[str, int] = {}
    scopes: dict[str, dict[str, int]] = {}
    edges = parameters = inputs = 0
    for i, t in enumerate(graph.order):
        parents = graph.parents[i]
        if not parents:
            if t.requires_grad:
                parameters += 1
            else:
                inputs += 1
            continue
        edges += len(parents)
        depth[i] = 1 + max(depth[p] for p in parents)
        ops[t.op] = ops.get(t.op, 0) + 1
        counts = scopes.setdefault(t.scope or "", {})
        counts[t.op] = counts.get(t.op, 0) + 1
    steps: dict[str, int] = {}
    for path in scopes:
        head, _, last = path.rpartition("/")
        if STEP_PART.fullmatch(last):
            steps[head] = steps.get(head, 0) + 1
    return {"nodes": len(graph.order), "edges": edges, "depth": max(depth, default=0),
            "parameters": parameters, "inputs": inputs, "ops": ops, "scopes": scopes,
            "steps": steps}


def retain_grads(*roots: Any) -> int:
    """Call ``retain_grad()`` on every intermediate the roots depend on (before ``backward``),
    so ``show_grads=True`` drawings can show every gradient. Returns how many."""
    count = 0
    for t in CollectedGraph(roots, "retain_grads").order:
        if t.parents and t.requires_grad:
            t.retain_grad()
            count += 1
    return count
