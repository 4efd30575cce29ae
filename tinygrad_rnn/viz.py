"""Graphviz pictures of computation graphs, unrolled RNNs included, and gradient flow through time.

Drawing conventions of :func:`to_dot`:

- One node per tensor. An op result is a rounded box labelled with the op name (and shape and
  dtype); a leaf is labelled with its name. Parameters (leaves that require grad) are blue
  ellipses, inputs and constants grey notes, intermediates yellow boxes, and the outputs (the
  roots) red double octagons; a ``legend`` cluster repeats the four styles.
- Edges run from an argument to the op result, in argument order. An op with several arguments
  labels each edge with the argument's index, so ``x * x`` shows two edges, ``0`` and ``1``.
- Node ids are ``n<i>`` with ``i`` the tensor's position in the topological order, which depends
  on the graph's structure only, so the DOT source of the same script is byte-identical between
  runs.
- Every ``scope(...)`` path becomes a cluster labelled with the path, nested like the path.
  ``collapse_steps=True`` draws each time-step scope (a path whose last part is ``t<k>``) as a
  single node labelled with its op counts, ``t3: addmm×1 split×4 ...``, with deduplicated edges.
- ``show_grads=True`` adds ``|grad|`` (the Frobenius norm of ``.grad``) to every tensor that has
  one, and colours every edge by the norm of the gradient that flowed along it (the op's
  vector-Jacobian product for that argument, recomputed from the result's ``.grad``), on a log
  scale from blue (the smallest in the graph) to red (the largest); an edge that carried an
  exactly zero gradient is grey and dashed. Intermediate tensors keep their gradient only when
  asked: call :func:`retain_grads` before ``backward(retain_graph=True)``.

All graph walks are iterative, so a graph of 100,000 ops needs no deep recursion.
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import graphviz
import numpy as np

from .engine import graph_tensors, unbroadcast
from .tensor import Tensor

__all__ = [
    "GraphvizNotFound", "gradient_flow", "graph_stats", "plot_gradient_flow", "render",
    "retain_grads", "step_grad_norms", "to_dot",
]

_STEP = re.compile(r"t\d+")
RANKDIRS = ("LR", "RL", "TB", "BT")

STYLES: dict[str, dict[str, str]] = {
    "parameter": {"shape": "ellipse", "style": "filled", "fillcolor": "#c6dbef"},
    "input": {"shape": "note", "style": "filled", "fillcolor": "#e0e0e0"},
    "intermediate": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff4cc"},
    "output": {"shape": "doubleoctagon", "style": "filled", "fillcolor": "#fcae91"},
    "step": {"shape": "box3d", "style": "filled", "fillcolor": "#fdd49e"},
}
_LEGEND = (
    ("parameter", "parameter\\n(leaf, requires grad)"),
    ("input", "input / constant"),
    ("intermediate", "op result"),
    ("output", "output (root)"),
)
INSTALL_HINT = (
    "Install Graphviz: Debian/Ubuntu `apt-get install graphviz`, Fedora `dnf install graphviz`, "
    "macOS `brew install graphviz`, conda `conda install -c conda-forge graphviz`, Windows "
    "`winget install graphviz`; then check that `dot -V` runs."
)


class GraphvizNotFound(RuntimeError):
    """The Graphviz ``dot`` program is not installed (the DOT source was still written)."""


# ----- collecting the graph ----------------------------------------------------------------------
def _flatten_roots(roots: Sequence[Any], fn: str) -> list[Tensor]:
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


class _Graph:
    """Everything the roots depend on (constants included), numbered in topological order."""

    def __init__(self, roots: Sequence[Any], fn: str):
        self.roots = _flatten_roots(roots, fn)
        self.order = graph_tensors(self.roots)
        self.position = {id(t): i for i, t in enumerate(self.order)}
        self.root_ids = {id(r) for r in self.roots}
        self._steps: dict[int, str | None] | None = None
        for t in self.order:
            if t.grad_fn is not None and t.grad_fn.freed:
                raise ValueError(
                    f"{fn}: part of the graph was freed by backward() (op '{t.op}', scope {t.scope!r}); "
                    "call backward(retain_graph=True) to draw or inspect the graph afterwards"
                )

    def step_of(self, t: Tensor) -> str | None:
        """The time step a collapsed drawing puts ``t`` in: its own step scope, or, for a tensor
        made outside every step (a step's slice of the hoisted input projection, from one
        ``unbind``), the one step that uses it."""
        if self._steps is None:
            own = {id(u): _step_scope(u.scope) for u in self.order}
            users: dict[int, set] = {}
            for u in self.order:
                for p in u.parents:
                    users.setdefault(id(p), set()).add(own[id(u)])
            self._steps = {}
            for u in self.order:
                step = own[id(u)]
                if step is None and u.parents:
                    used_in = users.get(id(u), set())
                    if len(used_in) == 1:
                        step = next(iter(used_in))
                self._steps[id(u)] = step
        return self._steps[id(t)]

    def kind(self, t: Tensor) -> str:
        if id(t) in self.root_ids:
            return "output"
        if t.parents:
            return "intermediate"
        return "parameter" if t.requires_grad else "input"


def _step_scope(scope: str | None) -> str | None:
    """The outermost prefix of ``scope`` that names a time step (ends in ``t<k>``), or None."""
    if not scope:
        return None
    parts = scope.split("/")
    for k, part in enumerate(parts):
        if _STEP.fullmatch(part):
            return "/".join(parts[: k + 1])
    return None


def _grad_norm(t: Tensor) -> float | None:
    if t.grad is None:
        return None
    return float(np.linalg.norm(np.asarray(t.grad, dtype=np.float64).ravel()))


def _edge_flows(t: Tensor) -> list[float | None]:
    """Per argument of ``t``, the norm of the gradient backward sent along that edge on behalf of
    ``t`` (None where none flows): the op's backward applied again to the retained ``t.grad``
    (zeros for the op's other outputs, if it has several)."""
    node = t.grad_fn
    if t.grad is None or node is None:
        return [None] * len(t.parents)
    g = np.asarray(t.grad)
    if node.out_meta is None:
        grads = node.backward(g)
    else:
        outs = [np.zeros(shape, dtype) for shape, dtype in node.out_meta]
        outs[t.output_index] = g
        grads = node.backward(*outs)
    flows: list[float | None] = []
    for p, gp in zip(node.inputs, grads):
        if gp is None or not p.requires_grad:
            flows.append(None)
            continue
        gp = unbroadcast(np.asarray(gp), p.shape)
        flows.append(float(np.linalg.norm(np.asarray(gp, dtype=np.float64).ravel())))
    return flows


def _param_names(params: Any) -> dict[int, str]:
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
            "to_dot: params must map names to Tensors, e.g. dict(model.named_parameters()), "
            f"got {type(params).__name__}"
        ) from None
    return names


# ----- labels and colours ---------------------------------------------------------------------------
def _escape(text: str) -> str:
    """Make free text safe inside a DOT string (the graphviz package escapes the quotes)."""
    return text.replace("\\", "\\\\")


def _shape_text(t: Tensor) -> str:
    shape = "scalar" if t.ndim == 0 else "(" + ", ".join(str(n) for n in t.shape) + ")"
    return f"{shape} {t.dtype}"


def _format_norm(norm: float) -> str:
    return f"|grad| {norm:.2e}"


class _ColourScale:
    """Log-scale map of gradient norms to colours: hue from blue (smallest) to red (largest)."""

    def __init__(self, norms: Iterable[float]):
        logs = [math.log10(v) for v in norms if v > 0 and math.isfinite(v)]
        self.lo = min(logs) if logs else 0.0
        self.hi = max(logs) if logs else 0.0

    def fraction(self, norm: float) -> float:
        if math.isinf(norm):
            return 1.0
        if norm <= 0:
            return 0.0
        if self.hi == self.lo:
            return 0.5
        return min(1.0, max(0.0, (math.log10(norm) - self.lo) / (self.hi - self.lo)))

    def colour(self, norm: float) -> str:
        if math.isnan(norm):
            return "black"
        return f"{0.667 * (1.0 - self.fraction(norm)):.3f} 0.850 0.850"

    def edge_attrs(self, norm: float) -> dict[str, str]:
        if norm == 0:
            return {"color": "#bdbdbd", "style": "dashed"}
        frac = 1.0 if math.isnan(norm) else self.fraction(norm)
        return {"color": self.colour(norm), "penwidth": f"{1.0 + 2.0 * frac:.2f}"}


# ----- drawing ------------------------------------------------------------------------------------
class _Clusters:
    """One graphviz subgraph per scope path, nested like the paths, created on first use."""

    def __init__(self, root: graphviz.Digraph):
        self.root = root
        self.graphs: dict[str, graphviz.Digraph] = {}

    def get(self, path: str | None) -> graphviz.Digraph:
        if not path:
            return self.root
        parts = path.split("/")
        for k in range(1, len(parts) + 1):
            prefix = "/".join(parts[:k])
            if prefix not in self.graphs:
                step = _STEP.fullmatch(parts[k - 1]) is not None
                attrs = {"label": _escape(prefix), "labeljust": "l", "fontsize": "10",
                         "color": "#9e9e9e", "style": "rounded,filled" if step else "rounded",
                         "fillcolor": "#f6f6f6" if step else "white"}
                self.graphs[prefix] = graphviz.Digraph(name=f"cluster_{len(self.graphs)}",
                                                       graph_attr=attrs)
        return self.graphs[path]

    def attach(self) -> None:
        # A subgraph is copied into its parent when attached, so the deepest go first; the sort
        # is stable, so siblings keep their order of first use.
        for path in sorted(self.graphs, key=lambda p: -p.count("/")):
            parent = path.rpartition("/")[0]
            (self.graphs[parent] if parent else self.root).subgraph(self.graphs[path])


def _count_collapsed(graph: "_Graph") -> int:
    """How many nodes ``collapse_steps=True`` would draw."""
    steps = set()
    other = 0
    for t in graph.order:
        step = None if id(t) in graph.root_ids else graph.step_of(t)
        if step is None:
            other += 1
        else:
            steps.add(step)
    return other + len(steps)


def _add_legend(dot: graphviz.Digraph, collapse_steps: bool, scale: _ColourScale | None) -> None:
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", style="dashed", color="#bdbdbd", fontsize="10")
        entries = list(_LEGEND)
        if collapse_steps:
            entries.append(("step", "time step\\n(op counts)"))
        for kind, text in entries:
            legend.node(f"legend_{kind}", text, **STYLES[kind])
        if scale is not None:
            for key, log in (("small", scale.lo), ("large", scale.hi)):
                norm = 10.0 ** log
                legend.node(f"legend_grad_{key}", f"{key} {_format_norm(norm)}", shape="plain",
                            fontcolor=scale.colour(norm))
            legend.edge("legend_grad_small", "legend_grad_large", label="edge colour",
                        **scale.edge_attrs(10.0 ** ((scale.lo + scale.hi) / 2)))


def _tensor_label(t: Tensor, name: str | None, show_shapes: bool, norm: float | None) -> str:
    if t.parents:
        head = t.op if not name else f"{name} = {t.op}"
    else:
        head = name or ("param" if t.requires_grad else "const")
    lines = [_escape(head)]
    if show_shapes:
        lines.append(_shape_text(t))
    if norm is not None:
        lines.append(_format_norm(norm))
    return "\\n".join(lines)


def _layout_nodes(graph: _Graph, names: dict[int, str], norms: dict[int, float],
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
            step = graph.step_of(t)
        if step is None:
            node_of[i] = f"n{i}"
            label = _tensor_label(t, names.get(id(t)) or t.name, show_shapes, norms.get(id(t)))
            nodes.append((node_of[i], t.scope, label, STYLES[graph.kind(t)]))
            continue
        info = steps.get(step)
        if info is None:
            info = steps[step] = {"id": f"s{len(steps)}", "ops": {}, "consts": 0, "norm": None}
        node_of[i] = info["id"]
        if t.parents:
            info["ops"][t.op] = info["ops"].get(t.op, 0) + 1
        else:
            info["consts"] += 1
        norm = norms.get(id(t))
        if norm is not None and (info["norm"] is None or norm > info["norm"]):
            info["norm"] = norm
    for step, info in steps.items():
        parent, _, last = step.rpartition("/")
        label = f"{_escape(last)}: " + " ".join(f"{op}×{n}" for op, n in info["ops"].items())
        if info["consts"]:
            label += f" const×{info['consts']}"
        if info["norm"] is not None:
            label += "\\nmax " + _format_norm(info["norm"])
        nodes.append((info["id"], parent or None, label, STYLES["step"]))
    return nodes, node_of


def _layout_edges(graph: _Graph, node_of: list[str], flows: list[list[float | None]] | None,
                  scale: _ColourScale | None) -> list[tuple[str, str, dict]]:
    """Edges argument -> result as (src, dst, attrs). Where several tensors share a drawn node
    (collapsed steps), edges inside it vanish and parallel ones merge into one labelled ×count."""
    merged: dict[tuple, list] = {}  # key -> [count, largest gradient flow, argument label]
    for i, t in enumerate(graph.order):
        parents = t.parents
        for k, p in enumerate(parents):
            src, dst = node_of[graph.position[id(p)]], node_of[i]
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
           max_nodes: int | None = None) -> graphviz.Digraph:
    """The graph of everything ``roots`` depend on, as a ``graphviz.Digraph`` (see the module doc).

    ``params`` names the parameters: a mapping name -> tensor such as
    ``dict(model.named_parameters())`` (matched by identity); otherwise ``tensor.name`` is used.
    ``max_nodes`` makes graphs with more drawn nodes raise ``ValueError`` instead of producing
    something no layout engine finishes.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"to_dot: rankdir must be one of {RANKDIRS}, got {rankdir!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"to_dot: max_nodes must be a positive int or None, got {max_nodes!r}")
    graph = _Graph(roots, "to_dot")
    names = _param_names(params)

    norms: dict[int, float] = {}
    flows = scale = None
    if show_grads:
        for t in graph.order:
            norm = _grad_norm(t)
            if norm is not None:
                norms[id(t)] = norm
        if not norms:
            raise ValueError(
                "to_dot: show_grads=True but no tensor in the graph has a gradient; run "
                "backward(retain_graph=True) first (and viz.retain_grads(...) before it to keep "
                "the intermediate gradients)"
            )
        flows = [_edge_flows(t) for t in graph.order]
        scale = _ColourScale([*norms.values(), *(f for fs in flows for f in fs if f is not None)])

    nodes, node_of = _layout_nodes(graph, names, norms, show_shapes, collapse_steps)
    if max_nodes is not None and len(nodes) > max_nodes:
        hint = ("" if collapse_steps else f"; pass collapse_steps=True to draw each time step as "
                f"one node ({_count_collapsed(graph)} nodes)")
        raise ValueError(f"to_dot: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes}{hint}")
    edges = _layout_edges(graph, node_of, flows, scale)

    dot = graphviz.Digraph(
        name="computation_graph",
        graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "newrank": "true"},
        node_attr={"fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8", "arrowsize": "0.6"},
    )
    _add_legend(dot, collapse_steps, scale)
    clusters = _Clusters(dot)
    for node_id, scope, label, attrs in nodes:
        clusters.get(scope).node(node_id, label, **attrs)
    clusters.attach()
    for src, dst, attrs in edges:
        dot.edge(src, dst, **attrs)
    return dot


# ----- statistics -------------------------------------------------------------------------------
def graph_stats(*roots: Any) -> dict:
    """Counts over the graph of ``roots`` (constants included).

    Keys: ``nodes`` (tensors), ``edges`` (op arguments), ``depth`` (ops on the longest path from a
    leaf to a root), ``parameters`` (leaves that require grad), ``inputs`` (other leaves), ``ops``
    (op name -> count), ``scopes`` (scope path, "" for none -> op name -> count; ops only), and
    ``steps`` (parent path -> number of time-step scopes ``.../t<k>`` under it).
    """
    graph = _Graph(roots, "graph_stats")
    order, position = graph.order, graph.position
    depth = [0] * len(order)
    ops: dict[str, int] = {}
    scopes: dict[str, dict[str, int]] = {}
    edges = parameters = inputs = 0
    for i, t in enumerate(order):
        parents = t.parents
        if not parents:
            if t.requires_grad:
                parameters += 1
            else:
                inputs += 1
            continue
        edges += len(parents)
        depth[i] = 1 + max(depth[position[id(p)]] for p in parents)
        ops[t.op] = ops.get(t.op, 0) + 1
        counts = scopes.setdefault(t.scope or "", {})
        counts[t.op] = counts.get(t.op, 0) + 1
    steps: dict[str, int] = {}
    for path in scopes:
        head, _, last = path.rpartition("/")
        if _STEP.fullmatch(last):
            steps[head] = steps.get(head, 0) + 1
    return {"nodes": len(order), "edges": edges, "depth": max(depth, default=0),
            "parameters": parameters, "inputs": inputs, "ops": ops, "scopes": scopes,
            "steps": steps}


def retain_grads(*roots: Any) -> int:
    """Call ``retain_grad()`` on every intermediate the roots depend on (before ``backward``),
    so ``to_dot(..., show_grads=True)`` can show every gradient. Returns how many."""
    count = 0
    for t in _Graph(roots, "retain_grads").order:
        if t.parents and t.requires_grad:
            t.retain_grad()
            count += 1
    return count


# ----- rendering ------------------------------------------------------------------------------------
def render(dot_or_roots: Any, path: str | Path, format: str = "svg",  # noqa: A002 - graphviz's name
           timeout: float | None = None) -> Path:
    """Write the DOT source next to ``path`` (``.dot``) and lay it out with Graphviz's ``dot``.

    ``dot_or_roots`` is a ``graphviz.Digraph`` (from :func:`to_dot`) or the root tensors. The
    output gets the ``.<format>`` suffix if it lacks it. Raises :class:`GraphvizNotFound` (after
    writing the ``.dot`` file) when ``dot`` is not installed. Returns the written output path.
    """
    if not isinstance(format, str) or not re.fullmatch(r"[a-z0-9]+(:[a-z0-9]+)*", format):
        raise ValueError(f"render: format must be a Graphviz output format such as 'svg' or 'png', got {format!r}")
    if isinstance(dot_or_roots, (graphviz.Digraph, graphviz.Graph)):
        source = dot_or_roots.source
    else:
        source = to_dot(dot_or_roots).source
    out = Path(path)
    suffix = "." + format.split(":")[0]
    if out.suffix != suffix:
        out = out.with_name(out.name + suffix)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".dot", ".gv"):
        out.write_text(source, encoding="utf-8")
        return out
    dot_path = out.with_suffix(".dot")
    dot_path.write_text(source, encoding="utf-8")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            f"render: the Graphviz program `dot` was not found on PATH, so {out.name} was not made; "
            f"the DOT source is in {dot_path}. {INSTALL_HINT} Then run "
            f"`dot -T{format} {dot_path} -o {out}` or call render() again."
        )
    result = subprocess.run([exe, f"-T{format}", "-o", str(out), str(dot_path)],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"render: `dot` failed with exit code {result.returncode} on {dot_path}: "
                           f"{result.stderr.strip()}")
    return out


# ----- gradient flow through time ---------------------------------------------------------------
def step_grad_norms(states: Sequence[Tensor]) -> np.ndarray:
    """``||states[t].grad||`` for every t (0 where no gradient reached it), after backward."""
    norms = np.zeros(len(states))
    for t, state in enumerate(states):
        if not isinstance(state, Tensor):
            raise TypeError(f"step_grad_norms: states must be Tensors, got {type(state).__name__} at {t}")
        if state.grad is None and state.grad_fn is not None and not state.retains_grad:
            raise ValueError(
                f"step_grad_norms: states[{t}] is an intermediate whose gradient was not kept; call "
                "retain_grad() on it before backward()"
            )
        norm = _grad_norm(state)
        norms[t] = 0.0 if norm is None else norm
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
    for t in graph_tensors([output]):
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


def plot_gradient_flow(results: Mapping[str, Sequence[float]], path: str | Path,
                       title: str = "Gradient flow through time",
                       ylabel: str = "||dL/dh_t||") -> Path:
    """Save a log-scale plot of ``||dL/dh_t||`` against t, one line per entry of ``results``
    (e.g. ``{"RNN": gradient_flow(rnn, x), "LSTM": gradient_flow(lstm, x)}``). Needs matplotlib."""
    if not isinstance(results, Mapping) or not results:
        raise ValueError("plot_gradient_flow: results must be a non-empty mapping label -> norms per step")
    curves = {}
    for label, norms in results.items():
        norms = np.asarray(norms, dtype=np.float64)
        if norms.ndim != 1 or norms.size == 0:
            raise ValueError(f"plot_gradient_flow: results[{label!r}] must be a non-empty 1-D sequence, got shape {norms.shape}")
        curves[str(label)] = norms
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plot_gradient_flow needs matplotlib, the optional 'plot' extra: "
            "pip install tinygrad_rnn[plot]"
        ) from error
    figure = Figure(figsize=(6.4, 4.0))
    ax = figure.subplots()
    for label, norms in curves.items():
        ax.semilogy(np.arange(norms.size), np.where(norms > 0, norms, np.nan), marker=".", label=label)
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path
