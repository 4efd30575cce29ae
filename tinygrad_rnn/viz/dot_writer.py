"""The graph as Graphviz DOT (``to_dot``), for Graphviz's own global layout: fine for small graphs
and arbitrary user graphs; unrolled sequences of more than a few dozen steps are better served by
the linear-in-T layout of :mod:`.unrolled` (``to_svg``)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .collect import CollectedGraph, STEP_PART, param_names, step_scope, teaching_names
from .engine_access import edge_gradient_norms
from .style import LEGEND, STYLES, ColourScale, escape_dot, format_norm, shape_text

__all__ = ["RANKDIRS", "count_collapsed", "gradient_norms", "import_graphviz", "to_dot"]

RANKDIRS = ("LR", "RL", "TB", "BT")


def import_graphviz() -> Any:
    """The ``graphviz`` Python package, imported where it is used so ``import tinygrad_rnn`` works
    without it."""
    try:
        import graphviz
    except ImportError as error:
        raise ImportError(
            "to_dot needs the 'graphviz' Python package (a dependency of tinygrad_rnn): "
            "pip install graphviz; to_svg and to_html work without it"
        ) from error
    return graphviz


def gradient_norms(graph: CollectedGraph) -> dict[int, float]:
    """Position -> ``||t.grad||`` (Frobenius, float64) for every tensor that has a gradient."""
    norms: dict[int, float] = {}
    for i, t in enumerate(graph.order):
        if t.grad is not None:
            norms[i] = float(np.linalg.norm(np.asarray(t.grad, dtype=np.float64).ravel()))
    return norms


def require_gradients(norms: dict[int, float], fn: str) -> None:
    if not norms:
        raise ValueError(
            f"{fn}: show_grads=True but no tensor in the graph has a gradient; run "
            "backward(retain_graph=True) first (and viz.retain_grads(...) before it to keep "
            "the intermediate gradients)"
        )


def count_collapsed(graph: CollectedGraph) -> int:
    """How many nodes ``collapse_steps=True`` would draw."""
    steps = set()
    other = 0
    for t in graph.order:
        step = None if id(t) in graph.root_ids else graph.step_of_tensor(t)
        if step is None:
            other += 1
        else:
            steps.add(step)
    return other + len(steps)


class _Clusters:
    """One graphviz subgraph per scope path, nested like the paths, created on first use."""

    def __init__(self, graphviz: Any, root: Any):
        self.graphviz = graphviz
        self.root = root
        self.graphs: dict[str, Any] = {}

    def get(self, path: str | None) -> Any:
        if not path:
            return self.root
        parts = path.split("/")
        for k in range(1, len(parts) + 1):
            prefix = "/".join(parts[:k])
            if prefix not in self.graphs:
                step = STEP_PART.fullmatch(parts[k - 1]) is not None
                attrs = {"label": escape_dot(prefix), "labeljust": "l", "fontsize": "10",
                         "color": "#9e9e9e", "style": "rounded,filled" if step else "rounded",
                         "fillcolor": "#f6f6f6" if step else "white"}
                self.graphs[prefix] = self.graphviz.Digraph(name=f"cluster_{len(self.graphs)}",
                                                            graph_attr=attrs)
        return self.graphs[path]

    def attach(self) -> None:
        # A subgraph is copied into its parent when attached, so the deepest go first; the sort
        # is stable, so siblings keep their order of first use.
        for path in sorted(self.graphs, key=lambda p: -p.count("/")):
            parent = path.rpartition("/")[0]
            (self.graphs[parent] if parent else self.root).subgraph(self.graphs[path])


def _add_legend(dot: Any, collapse_steps: bool, scale: ColourScale | None) -> None:
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", style="dashed", color="#bdbdbd", fontsize="10")
        entries = list(LEGEND)
        if collapse_steps:
            entries.append(("step", "time step\\n(op counts)"))
        for kind, text in entries:
            legend.node(f"legend_{kind}", text, **STYLES[kind])
        if scale is not None:
            for key, log in (("small", scale.lo), ("large", scale.hi)):
                norm = 10.0 ** log
                legend.node(f"legend_grad_{key}", f"{key} {format_norm(norm)}", shape="plain",
                            fontcolor=scale.colour(norm))
            legend.edge("legend_grad_small", "legend_grad_large", label="edge colour",
                        **scale.edge_attrs(10.0 ** ((scale.lo + scale.hi) / 2)))


def tensor_label_lines(t: Any, name: str | None, show_shapes: bool, norm: float | None) -> list[str]:
    """A node's label: ``name = op`` (or the op, or a leaf's name / param / const), the shape and
    dtype, the gradient norm."""
    if t.parents:
        head = t.op if not name else f"{name} = {t.op}"
    else:
        head = name or ("param" if t.requires_grad else "const")
    lines = [head]
    if show_shapes:
        lines.append(shape_text(t))
    if norm is not None:
        lines.append(format_norm(norm))
    return lines


def _layout_nodes(graph: CollectedGraph, names: dict[int, str], norms: dict[int, float],
                  show_shapes: bool, collapse_steps: bool) -> tuple[list[tuple], list[str]]:
    """The drawn nodes as (id, scope, label, attrs), and the id drawing each tensor.

    Collapsing maps every tensor of a time step (the roots excepted) onto one node ``s<k>``
    placed in the step's enclosing scope and labelled with the step's op counts.
    """
    nodes: list[tuple] = []
    node_of: list[str] = [""] * len(graph.order)
    steps: dict[str, dict] = {}  # step scope -> {"id", "ops", "consts", "norm"}
    for i, t in enumerate(graph.order):
        step = None
        if collapse_steps and id(t) not in graph.root_ids:
            step = graph.step_of_tensor(t)
        if step is None:
            node_of[i] = f"n{i}"
            lines = tensor_label_lines(t, names.get(i), show_shapes, norms.get(i))
            label = "\\n".join(escape_dot(line) for line in lines)
            # a step's slice of the input projection sits in that step's cluster (see steps())
            cluster = t.scope if step_scope(t.scope) else (graph.step_of_tensor(t) or t.scope)
            nodes.append((node_of[i], cluster, label, STYLES[graph.kind(t)]))
            continue
        info = steps.get(step)
        if info is None:
            info = steps[step] = {"id": f"s{len(steps)}", "ops": {}, "consts": 0, "norm": None}
        node_of[i] = info["id"]
        if t.parents:
            info["ops"][t.op] = info["ops"].get(t.op, 0) + 1
        else:
            info["consts"] += 1
        norm = norms.get(i)
        if norm is not None and (info["norm"] is None or norm > info["norm"]):
            info["norm"] = norm
    for step, info in steps.items():
        parent, _, last = step.rpartition("/")
        label = f"{escape_dot(last)}: " + " ".join(f"{op}×{n}" for op, n in info["ops"].items())
        if info["consts"]:
            label += f" const×{info['consts']}"
        if info["norm"] is not None:
            label += "\\nmax " + format_norm(info["norm"])
        nodes.append((info["id"], parent or None, label, STYLES["step"]))
    return nodes, node_of


def _layout_edges(graph: CollectedGraph, node_of: list[str], flows: list[list[float | None]] | None,
                  scale: ColourScale | None) -> list[tuple[str, str, dict]]:
    """Edges argument -> result as (src, dst, attrs). Where several tensors share a drawn node
    (collapsed steps), edges inside it vanish and parallel ones merge into one labelled ×count."""
    merged: dict[tuple, list] = {}  # key -> [count, largest gradient flow, argument label]
    for i, parents in enumerate(graph.parents):
        for k, p in enumerate(parents):
            src, dst = node_of[p], node_of[i]
            if src == dst:
                continue
            flow = flows[i][k] if flows is not None else None
            collapsed = src[0] == "s" or dst[0] == "s"
            key = (src, dst) if collapsed else (src, dst, k)
            entry = merged.get(key)
            if entry is None:
                merged[key] = [1, flow, None if collapsed or len(parents) == 1 else str(k)]
            else:
                entry[0] += 1
                if flow is not None and (entry[1] is None or flow > entry[1]):
                    entry[1] = flow
    edges = []
    for key, (count, flow, label) in merged.items():
        attrs = {"label": label} if label is not None else ({"label": f"×{count}"} if count > 1 else {})
        if flow is not None:
            attrs.update(scale.edge_attrs(flow))
        edges.append((key[0], key[1], attrs))
    return edges


def to_dot(*roots: Any, params: Any = None, show_shapes: bool = True, show_grads: bool = False,
           collapse_steps: bool = False, rankdir: str = "LR",
           max_nodes: int | None = None) -> Any:
    """The graph of everything ``roots`` depend on, as a ``graphviz.Digraph`` (see ``viz``'s doc).

    ``params`` names the parameters: a mapping name -> tensor such as
    ``dict(model.named_parameters())`` (matched by identity); otherwise ``tensor.name`` is used.
    ``max_nodes`` makes graphs with more drawn nodes raise ``ValueError`` instead of producing
    something no layout engine finishes.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"to_dot: rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"to_dot: max_nodes must be a positive int or None, got {max_nodes!r}")
    graph = CollectedGraph(roots, "to_dot")
    names = teaching_names(graph, param_names(params))

    norms: dict[int, float] = {}
    flows = scale = None
    if show_grads:
        norms = gradient_norms(graph)
        require_gradients(norms, "to_dot")
        flows = [edge_gradient_norms(t) for t in graph.order]
        scale = ColourScale([*norms.values(), *(f for fs in flows for f in fs if f is not None)])

    nodes, node_of = _layout_nodes(graph, names, norms, show_shapes, collapse_steps)
    if max_nodes is not None and len(nodes) > max_nodes:
        hint = ("" if collapse_steps else f"; pass collapse_steps=True to draw each time step as "
                f"one node ({count_collapsed(graph)} nodes)")
        raise ValueError(f"to_dot: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes}{hint}")
    edges = _layout_edges(graph, node_of, flows, scale)

    graphviz = import_graphviz()
    # No newrank=true: it ranks across clusters globally and doubles dot's time on unrolled graphs.
    dot = graphviz.Digraph(
        name="computation_graph",
        graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
        node_attr={"fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8", "arrowsize": "0.6"},
    )
    _add_legend(dot, collapse_steps, scale)
    clusters = _Clusters(graphviz, dot)
    for node_id, scope, label, attrs in nodes:
        clusters.get(scope).node(node_id, label, **attrs)
    clusters.attach()
    for src, dst, attrs in edges:
        dot.edge(src, dst, **attrs)
    return dot
