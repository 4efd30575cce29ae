"""A layout of unrolled graphs whose cost is linear in the number of time steps T.

Graphviz's ``dot`` places all nodes of a graph at once (ranking, crossing minimisation), which
with one cluster per step grows far faster than T. But every step of a layer builds the same
subgraph, so:

1. Steps are grouped by structure (``Step.signature``: per tensor its op, dtype, shape and which
   tensors of the same step it reads). ``dot`` lays out ONE step of each group, with an entry
   point ("port") on its left border for every argument coming from outside the step and an exit
   point on its right border for every tensor read outside it. That is a handful of small ``dot``
   runs whatever T is.
2. Each lane (a layer and direction, e.g. ``lstm/l0/fwd``) is a row of T copies of its template,
   step t at ``x = x_lane + t * pitch``; a lane whose recurrence runs from t+1 to t (``bwd``) is
   mirrored, so its edges are as short as the forward lane's.
3. Everything outside the steps (parameters, the hoisted input projection, the stacked outputs,
   the loss) is laid out by ``dot`` with each lane drawn as one wide placeholder box, a graph
   whose size does not depend on T.
4. Edges between steps are straight polylines through the gap between two boxes; edges from one
   outer tensor to every step (a weight, the projection) share a "bus", a horizontal line above
   the lane with one short drop per step; edges from every step to one outer tensor (the stack
   of outputs) share a bus below the lane.

With ``collapse_steps=True`` each step is one box with its op counts instead of a template.
The result, :class:`UnrolledLayout`, is plain geometry in points (y down), written out by
:mod:`.svg_writer` and :mod:`.html_writer`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from .collect import CollectedGraph, Step, param_names, teaching_names, value_stats
from .dot_writer import gradient_norms, require_gradients, tensor_label_lines
from .engine_access import edge_gradient_norms
from .render import INSTALL_HINT, GraphvizNotFound
from .style import STYLES, ColourScale

__all__ = ["DrawnEdge", "DrawnNode", "StepFrame", "UnrolledLayout", "layout_unrolled"]

FONT_SIZE = 10.0
CHAR_WIDTH = 5.6          # average Helvetica advance at 10 pt, for boxes sized without dot
LINE_HEIGHT = 12.0
STEP_GAP = 48.0           # horizontal space between two step boxes (recurrent edges, bus drops)
STEP_PAD = 10.0           # padding inside a step box
STEP_LABEL = 14.0         # room for the step's title above its content
TRACK = 9.0               # vertical distance between two bus lines
LANE_GAP = 24.0
PLACEHOLDER_W = 3000.0   # widest lane box handed to dot (its limit is 65535 pt)


@dataclass
class DrawnNode:
    """A node box: ``id`` (``n<position>`` like ``to_dot``, ``s<k>`` for a collapsed step),
    centre ``x, y``, size ``w, h``, label lines, kind (a key of ``STYLES``), the step it belongs
    to, and facts for the viewer."""

    id: str
    x: float
    y: float
    w: float
    h: float
    lines: list[str]
    kind: str
    step: str | None = None
    info: dict = field(default_factory=dict)


@dataclass
class DrawnEdge:
    """A polyline or Bézier path (SVG path data ``d``) from node ``src`` to node ``dst``;
    ``width``/``colour``/``dashed`` from the gradient it carried; ``step`` when it lies inside one
    step box; ``bus`` for the shared trunk of a bus (not a graph edge itself)."""

    d: str
    src: str
    dst: str
    colour: str = "#555555"
    width: float = 1.0
    dashed: bool = False
    label: str | None = None
    step: str | None = None
    bus: bool = False
    arrow: bool = True
    label_xy: tuple[float, float] | None = None


@dataclass
class StepFrame:
    """The box of one time step: scope path, lane, t, geometry, summary text (op counts), the
    ids of its nodes, and the largest gradient norm inside it (None without gradients)."""

    scope: str
    lane: str
    t: int
    x: float
    y: float
    w: float
    h: float
    summary: list[str]
    nodes: list[str]
    max_norm: float | None = None


@dataclass
class UnrolledLayout:
    """A laid-out unrolled graph: every drawn node and edge, the frame of each time step, the
    lanes (one per layer and direction), and the gradient colour scale; the SVG and HTML writers
    draw it."""
    width: float
    height: float
    nodes: list[DrawnNode]
    edges: list[DrawnEdge]
    steps: list[StepFrame]
    lanes: list[dict]
    collapsed: bool
    scale: ColourScale | None
    title: str = ""
    state_norms: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


# ----- running dot on small graphs ----------------------------------------------------------------
def _run_dot_json(source: str) -> dict:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(f"layout_unrolled needs the Graphviz program `dot` for the layout of "
                               f"one step. {INSTALL_HINT}")
    result = subprocess.run([exe, "-Tjson"], input=source, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"layout_unrolled: `dot` failed with exit code {result.returncode}: "
                           f"{result.stderr.strip()}")
    return json.loads(result.stdout)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_node(name: str, lines: list[str], kind: str, extra: str = "") -> str:
    style = STYLES[kind]
    label = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return (f'{name} [label="{label}" shape={style["shape"]} style="{style["style"]}" '
            f'margin="0.08,0.04"{extra}];')


def _spline_points(pos: str) -> tuple[list[tuple[float, float]], tuple[float, float] | None]:
    """dot's edge ``pos`` ("e,x,y p1 p2 ...") as (control points, arrow tip)."""
    tip = None
    points = []
    for part in pos.split():
        if part.startswith("e,"):
            x, y = part[2:].split(",")
            tip = (float(x), float(y))
        elif part.startswith("s,"):
            continue
        else:
            x, y = part.split(",")
            points.append((float(x), float(y)))
    return points, tip


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _path_from_spline(points: list, tip: tuple | None, tx) -> str:
    pts = [tx(p) for p in points]
    d = f"M{_fmt(pts[0][0])},{_fmt(pts[0][1])}"
    for k in range(1, len(pts) - 2, 3):
        a, b, c = pts[k], pts[k + 1], pts[k + 2]
        d += f" C{_fmt(a[0])},{_fmt(a[1])} {_fmt(b[0])},{_fmt(b[1])} {_fmt(c[0])},{_fmt(c[1])}"
    if tip is not None:
        e = tx(tip)
        d += f" L{_fmt(e[0])},{_fmt(e[1])}"
    return d


def _polyline(points: list[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)


# ----- the template of one step -------------------------------------------------------------------
@dataclass
class _Template:
    w: float
    h: float
    nodes: list[tuple[float, float, float, float]]          # local index -> (x, y, w, h), y down
    in_ports: dict[tuple[int, int], tuple[float, float]]    # (local k, arg j) -> point
    out_ports: dict[int, tuple[float, float]]               # local k -> point
    edges: dict[str, tuple[list, tuple | None]]             # edge name -> spline (y down)


def _full_template(labels: list[list[str]], kinds: list[str], signature: tuple,
                   out_locals: set[int]) -> _Template:
    lines = ["digraph step {", "rankdir=LR; nodesep=0.12; ranksep=0.22; margin=0;",
             'node [fontname="Helvetica" fontsize=10];', 'edge [arrowsize=0.6];']
    for k, (node_lines, kind) in enumerate(zip(labels, kinds)):
        lines.append(_dot_node(f"n{k}", node_lines, kind))
    ins, outs, edges = [], [], []
    for k, (_op, _dt, _shape, _rg, parents) in enumerate(signature):
        for j, p in enumerate(parents):
            if p >= 0:
                edges.append(f'n{p} -> n{k} [id="i_{p}_{k}_{j}"];')
            else:
                ins.append(f"p{k}_{j}")
                edges.append(f'p{k}_{j} -> n{k} [id="p_{k}_{j}"];')
    for k in sorted(out_locals):
        outs.append(f"q{k}")
        edges.append(f'n{k} -> q{k} [id="q_{k}"];')
    for name in ins + outs:
        lines.append(f"{name} [shape=point width=0.02 label=\"\"];")
    if ins:
        lines.append("{rank=source; " + "; ".join(ins) + ";}")
    if outs:
        lines.append("{rank=sink; " + "; ".join(outs) + ";}")
    lines += edges
    lines.append("}")
    data = _run_dot_json("\n".join(lines))
    _, _, bw, bh = (float(v) for v in data["bb"].split(","))
    by_gvid = {}
    nodes = [(0.0, 0.0, 0.0, 0.0)] * len(labels)
    in_ports, out_ports = {}, {}
    for obj in data.get("objects", []):
        if "pos" not in obj:
            continue
        x, y = (float(v) for v in obj["pos"].split(","))
        y = bh - y
        name = obj["name"]
        by_gvid[obj["_gvid"]] = name
        if name[0] == "n":
            nodes[int(name[1:])] = (x, y, float(obj["width"]) * 72, float(obj["height"]) * 72)
        elif name[0] == "p":
            k, j = name[1:].split("_")
            in_ports[(int(k), int(j))] = (0.0, y)  # on the left border
        elif name[0] == "q":
            out_ports[int(name[1:])] = (bw, y)     # on the right border
    spl = {}
    for edge in data.get("edges", []):
        points, tip = _spline_points(edge["pos"])
        flip = [(px, bh - py) for px, py in points]
        spl[edge["id"]] = (flip, None if tip is None else (tip[0], bh - tip[1]))
    return _Template(bw, bh, nodes, in_ports, out_ports, spl)


def _collapsed_template(summary: list[str]) -> _Template:
    w = max(len(s) for s in summary) * CHAR_WIDTH + 16
    h = len(summary) * LINE_HEIGHT + 10
    return _Template(w, h, [(w / 2, h / 2, w, h)], {}, {}, {})


# ----- the layout ---------------------------------------------------------------------------------
def layout_unrolled(*roots: Any, params: Any = None, show_grads: bool = False,
                    collapse_steps: bool = False, show_shapes: bool = True,
                    title: str = "") -> UnrolledLayout:
    """Lay out the graph of ``roots`` in time (see the module doc); same arguments as ``to_dot``."""
    graph = CollectedGraph(roots, "layout_unrolled")
    order = graph.order
    names = teaching_names(graph, param_names(params, "layout_unrolled"))
    norms: dict[int, float] = gradient_norms(graph)
    flows: list[list[float | None]] | None = None
    scale = None
    if show_grads:
        require_gradients(norms, "layout_unrolled")
        flows = [edge_gradient_norms(t) for t in order]
        scale = ColourScale([*norms.values(), *(f for fs in flows for f in fs if f is not None)])
    label_norms = norms if show_grads else {}

    steps = graph.steps()
    step_of = graph.step_of
    uses = graph.consumers()

    # Lanes in order of first appearance, each with its steps by t and its direction.
    lanes: dict[str, list[Step]] = {}
    for step in steps.values():
        lanes.setdefault(step.lane, []).append(step)
    mirrored: dict[str, bool] = {}
    for lane, members in lanes.items():
        members.sort(key=lambda s: s.t)
        back = ahead = 0
        for step in members:
            for pos in step.members:
                for p in graph.parents[pos]:
                    other = step_of[p]
                    if other is not None and other != step.scope and steps[other].lane == lane:
                        if steps[other].t > step.t:
                            back += 1
                        else:
                            ahead += 1
        mirrored[lane] = back > ahead

    def info(pos: int) -> dict:
        t = order[pos]
        facts = {"op": t.op or ("parameter" if t.requires_grad else "input"),
                 "shape": list(t.shape), "dtype": str(t.dtype), "scope": t.scope or ""}
        if pos in names:
            facts["name"] = names[pos]
        stats = value_stats(t)
        if stats is not None:
            facts.update({k: float(f"{v:.4g}") for k, v in stats.items()})
        if pos in norms:
            facts["grad_norm"] = float(f"{norms[pos]:.4g}")
        return facts

    def node_lines(pos: int) -> list[str]:
        return tensor_label_lines(order[pos], names.get(pos), show_shapes, label_norms.get(pos))

    # Templates, one per structure; labels from the group's last step (the widest t).
    templates: dict[tuple, _Template] = {}
    groups: dict[tuple, list[Step]] = {}
    for step in steps.values():
        groups.setdefault(step.signature, []).append(step)
    summaries: dict[str, list[str]] = {}
    for step in steps.values():
        ops: dict[str, int] = {}
        consts = 0
        for pos in step.members:
            if order[pos].parents:
                ops[order[pos].op] = ops.get(order[pos].op, 0) + 1
            else:
                consts += 1
        items = [f"{op}×{n}" for op, n in ops.items()] + ([f"const×{consts}"] if consts else [])
        text = [step.scope.rpartition("/")[2]] + [" ".join(items[i:i + 3]) for i in range(0, len(items), 3)]
        if show_grads:
            best = max((norms[p] for p in step.members if p in norms), default=None)
            if best is not None:
                text.append(f"max |grad| {best:.2e}")
        summaries[step.scope] = text
    if collapse_steps:
        width = max((len(s) for text in summaries.values() for s in text), default=4)
        height = max((len(text) for text in summaries.values()), default=1)
        shared = _collapsed_template(["x" * width] * height)
        for signature in groups:
            templates[signature] = shared
    else:
        for signature, members in groups.items():
            widest = max(members, key=lambda s: s.t)
            out_locals = set()
            for step in members:
                for k, pos in enumerate(step.members):
                    if any(step_of[c] != step.scope for c, _ in uses[pos]):
                        out_locals.add(k)
            labels = [node_lines(pos) for pos in widest.members]
            kinds = [graph.kind(order[pos]) for pos in widest.members]
            templates[signature] = _full_template(labels, kinds, signature, out_locals)

    pitch = max((tp.w for tp in templates.values()), default=0.0) + 2 * STEP_PAD + STEP_GAP
    lane_box_h = {lane: max(templates[s.signature].h for s in members) + 2 * STEP_PAD + STEP_LABEL
                  for lane, members in lanes.items()}
    lane_t = {lane: (members[0].t, members[-1].t) for lane, members in lanes.items()}

    # External edges: for each graph edge (parent p -> child c, argument j) that crosses a step
    # border, classify its two ends.
    drawn_of = [f"n{i}" for i in range(len(order))]  # the drawn node of each tensor
    step_ids = {scope: f"s{k}" for k, scope in enumerate(steps)}
    if collapse_steps:
        for i in range(len(order)):
            if step_of[i] is not None:
                drawn_of[i] = step_ids[step_of[i]]

    outer = [i for i in range(len(order)) if step_of[i] is None]
    # Buses: outer tensor -> steps of one lane (in) and steps of one lane -> outer tensor (out).
    bus_in: dict[tuple[int, str], list] = {}
    bus_out: dict[tuple[int, str], list] = {}
    direct: list[tuple[int, int, int]] = []
    for c in range(len(order)):
        for j, p in enumerate(graph.parents[c]):
            sp, sc = step_of[p], step_of[c]
            if sp is None and sc is not None:
                bus_in.setdefault((p, steps[sc].lane), []).append((p, c, j))
            elif sp is not None and sc is None:
                bus_out.setdefault((c, steps[sp].lane), []).append((p, c, j))
            elif sp is not None and sc is not None and sp != sc:
                direct.append((p, c, j))
    lane_in_tracks = {lane: [k for k in bus_in if k[1] == lane] for lane in lanes}
    lane_out_tracks = {lane: [k for k in bus_out if k[1] == lane] for lane in lanes}

    # ----- the outer graph, with lanes as placeholders, laid out by dot (top to bottom) -----
    lane_names = {lane: f"lane{k}" for k, lane in enumerate(lanes)}
    lane_w = {lane: (lane_t[lane][1] - lane_t[lane][0]) * pitch + pitch - STEP_GAP for lane in lanes}
    lane_h = {lane: lane_box_h[lane] + TRACK * (len(lane_in_tracks[lane]) + len(lane_out_tracks[lane]) + 2)
              for lane in lanes}
    src = ["digraph outer {", "rankdir=TB; nodesep=0.25; ranksep=0.35; margin=0;",
           'node [fontname="Helvetica" fontsize=10];', "edge [arrowsize=0.6];"]
    outer_lines = {i: node_lines(i) for i in outer}
    for i in outer:
        src.append(_dot_node(f"n{i}", outer_lines[i], graph.kind(order[i])))
    # dot refuses nodes wider than 65535 pt: a long lane enters as a box of at most PLACEHOLDER_W,
    # and whatever dot put to its right in the same band moves right by the difference below.
    for lane in lanes:
        src.append(f'{lane_names[lane]} [shape=box fixedsize=true label="" '
                   f'width={min(lane_w[lane], PLACEHOLDER_W) / 72:.4f} height={lane_h[lane] / 72:.4f}];')
    seen_pairs = set()
    outer_edges = []
    for c in outer:
        for j, p in enumerate(graph.parents[c]):
            if step_of[p] is None:
                name = f"o_{p}_{c}_{j}"
                outer_edges.append((p, c, j, name))
                src.append(f'n{p} -> n{c} [id="{name}"];')
    for (p, lane) in bus_in:
        pair = (f"n{p}", lane_names[lane])
        if pair not in seen_pairs:
            seen_pairs.add(pair)
            src.append(f"{pair[0]} -> {pair[1]};")
    for (c, lane) in bus_out:
        pair = (lane_names[lane], f"n{c}")
        if pair not in seen_pairs:
            seen_pairs.add(pair)
            src.append(f"{pair[0]} -> {pair[1]};")
    for p, c, _ in direct:
        la, lb = steps[step_of[p]].lane, steps[step_of[c]].lane
        if la != lb and (la, lb) not in seen_pairs:
            seen_pairs.add((la, lb))
            src.append(f"{lane_names[la]} -> {lane_names[lb]};")
    # Lanes of the same layer one below the other (not side by side), so time columns align.
    lane_list = list(lanes)
    for a, b in zip(lane_list, lane_list[1:]):
        if a.rpartition("/")[0] == b.rpartition("/")[0] and (a, b) not in seen_pairs:
            src.append(f"{lane_names[a]} -> {lane_names[b]} [style=invis];")
    src.append("}")
    data = _run_dot_json("\n".join(src))
    _, _, ow, oh = (float(v) for v in data["bb"].split(","))
    outer_pos: dict[int, tuple[float, float, float, float]] = {}
    lane_origin: dict[str, list[float]] = {}
    for obj in data.get("objects", []):
        if "pos" not in obj:
            continue
        x, y = (float(v) for v in obj["pos"].split(","))
        y = oh - y
        w, h = float(obj["width"]) * 72, float(obj["height"]) * 72
        name = obj["name"]
        if name.startswith("lane"):
            lane = lane_list[int(name[4:])]
            lane_origin[lane] = [x - w / 2, y - h / 2]
        else:
            outer_pos[int(name[1:])] = (x, y, w, h)
    if lane_origin:  # align the lanes' time axes
        left = min(o[0] for o in lane_origin.values())
        for o in lane_origin.values():
            o[0] = left
    for lane, (lx, ly) in lane_origin.items():
        extra = lane_w[lane] - min(lane_w[lane], PLACEHOLDER_W)
        for i, (x, y, w, h) in list(outer_pos.items()):
            if extra > 0 and x > lx and ly - h / 2 < y < ly + lane_h[lane] + h / 2:
                outer_pos[i] = (x + extra, y, w, h)
    outer_splines = {}
    for edge in data.get("edges", []):
        if "id" in edge and "pos" in edge:
            points, tip = _spline_points(edge["pos"])
            outer_splines[edge["id"]] = ([(px, oh - py) for px, py in points],
                                         None if tip is None else (tip[0], oh - tip[1]))

    # ----- placing the steps -----
    legend_h = 0.0
    nodes: list[DrawnNode] = []
    edges: list[DrawnEdge] = []
    frames: list[StepFrame] = []
    node_xy: dict[int, tuple[float, float, float, float]] = dict(outer_pos)
    step_geom: dict[str, tuple[float, float, float, float, bool, _Template]] = {}
    for lane, members in lanes.items():
        ox, oy = lane_origin[lane]
        box_top = oy + TRACK * (len(lane_in_tracks[lane]) + 1)
        for step in members:
            tp = templates[step.signature]
            bx = ox + (step.t - lane_t[lane][0]) * pitch
            bw = tp.w + 2 * STEP_PAD
            bh = lane_box_h[lane]
            step_geom[step.scope] = (bx, box_top, bw, bh, mirrored[lane], tp)
            frame = StepFrame(step.scope, lane, step.t, bx, box_top, bw, bh, summaries[step.scope], [],
                              max((norms[p] for p in step.members if p in norms), default=None))
            frames.append(frame)
            if collapse_steps:
                sid = step_ids[step.scope]
                frame.nodes.append(sid)
                nodes.append(DrawnNode(sid, bx + bw / 2, box_top + bh / 2, bw, bh, summaries[step.scope],
                                       "step", step.scope, {"op": "time step", "scope": step.scope,
                                                            "ops": " ".join(summaries[step.scope][1:])}))
                continue
            for k, pos in enumerate(step.members):
                lx, ly, w, h = tp.nodes[k]
                if mirrored[lane]:
                    lx = tp.w - lx
                x, y = bx + STEP_PAD + lx, box_top + STEP_LABEL + STEP_PAD + ly
                node_xy[pos] = (x, y, w, h)
                frame.nodes.append(f"n{pos}")
                nodes.append(DrawnNode(f"n{pos}", x, y, w, h, node_lines(pos), graph.kind(order[pos]),
                                       step.scope, info(pos)))
    for i in outer:
        x, y, w, h = outer_pos[i]
        nodes.append(DrawnNode(f"n{i}", x, y, w, h, outer_lines[i], graph.kind(order[i]), None, info(i)))

    def step_tx(scope: str):
        bx, by, bw, bh, mirror, tp = step_geom[scope]

        def tx(p):
            px = tp.w - p[0] if mirror else p[0]
            return (bx + STEP_PAD + px, by + STEP_LABEL + STEP_PAD + p[1])
        return tx

    def edge_style(c: int, j: int) -> dict:
        flow = flows[c][j] if flows is not None else None
        if flow is None or scale is None:
            return {}
        attrs = scale.edge_attrs(flow)
        if attrs.get("style") == "dashed":
            return {"colour": "#bdbdbd", "dashed": True}
        return {"colour": scale.hex_colour(flow), "width": float(attrs["penwidth"])}

    # Edges inside steps (and from ports to nodes), copied from the templates.
    if not collapse_steps:
        for step in steps.values():
            tx = step_tx(step.scope)
            tp = step_geom[step.scope][5]
            for k, pos in enumerate(step.members):
                for j, p in enumerate(graph.parents[pos]):
                    local_p = step.signature[k][4][j]
                    key = f"i_{local_p}_{k}_{j}" if local_p >= 0 else f"p_{k}_{j}"
                    points, tip = tp.edges[key]
                    edges.append(DrawnEdge(_path_from_spline(points, tip, tx), f"n{p}", f"n{pos}",
                                           step=step.scope, arrow=local_p >= 0, **edge_style(pos, j)))
            for k, pos in enumerate(step.members):
                if f"q_{k}" in tp.edges and any(step_of[c] != step.scope for c, _ in uses[pos]):
                    points, _tip = tp.edges[f"q_{k}"]
                    edges.append(DrawnEdge(_path_from_spline(points, None, tx), f"n{pos}", f"n{pos}",
                                           step=step.scope, arrow=False, bus=True))

    def port_in(c: int, j: int) -> tuple[float, float]:
        scope = step_of[c]
        bx, by, bw, bh, mirror, tp = step_geom[scope]
        if collapse_steps:
            return (bx + bw if mirror else bx, by + bh / 2)
        return step_tx(scope)(tp.in_ports[(local_index[c], j)])

    def port_out(p: int) -> tuple[float, float]:
        scope = step_of[p]
        bx, by, bw, bh, mirror, tp = step_geom[scope]
        if collapse_steps:
            return (bx if mirror else bx + bw, by + bh / 2)
        return step_tx(scope)(tp.out_ports[local_index[p]])

    local_index = {}
    for step in steps.values():
        for k, pos in enumerate(step.members):
            local_index[pos] = k

    def gap_x(scope: str, entering: bool) -> float:
        """x in the gap beside a step box: before it (entering) or after it (leaving)."""
        bx, _by, bw, _bh, mirror, _tp = step_geom[scope]
        before = bx - STEP_GAP / 2 if not mirror else bx + bw + STEP_GAP / 2
        after = bx + bw + STEP_GAP / 2 if not mirror else bx - STEP_GAP / 2
        return before if entering else after

    def node_edge_point(i: int, towards_y: float) -> tuple[float, float]:
        x, y, _w, h = node_xy[i]
        return (x, y + h / 2) if towards_y > y else (x, y - h / 2)

    merged: dict[tuple[str, str], DrawnEdge] = {}

    def add(edge: DrawnEdge, count_key: tuple[str, str] | None = None) -> None:
        if collapse_steps and count_key is not None:
            old = merged.get(count_key)
            if old is not None:
                n = int((old.label or "×1")[1:]) + 1
                old.label = f"×{n}"
                if edge.width > old.width:
                    old.colour, old.width, old.dashed = edge.colour, edge.width, edge.dashed
                return
            merged[count_key] = edge
        edges.append(edge)

    # Step -> step edges: through the gap between the boxes.
    for p, c, j in direct:
        a, b = port_out(p), port_in(c, j)
        sa, sb = step_of[p], step_of[c]
        if steps[sa].lane == steps[sb].lane:
            mid = (gap_x(sa, False) + gap_x(sb, True)) / 2
            pts = [a, (mid, a[1]), (mid, b[1]), b] if abs(a[1] - b[1]) > 0.5 else [a, b]
        else:
            pts = [a, b]
        add(DrawnEdge(_polyline(pts), drawn_of[p], drawn_of[c], **edge_style(c, j)),
            (drawn_of[p], drawn_of[c]))
    # Buses in: outer tensor -> a drop into every step of the lane.
    for (p, lane), members in bus_in.items():
        track = lane_in_tracks[lane].index((p, lane))
        ybus = lane_origin[lane][1] + TRACK * (track + 1)
        drops = []
        for _p, c, j in members:
            b = port_in(c, j)
            xd = gap_x(step_of[c], True) + (track - len(lane_in_tracks[lane]) / 2) * 2.0
            drops.append(xd)
            pts = [(xd, ybus), (xd, b[1]), b]
            add(DrawnEdge(_polyline(pts), f"n{p}", drawn_of[c], **edge_style(c, j)),
                (f"n{p}", drawn_of[c]))
        sx, sy = node_edge_point(p, ybus)
        xs = drops + [sx]
        trunk = [(sx, sy), (sx, ybus)] if abs(sy - ybus) > 0.5 else [(sx, sy)]
        edges.append(DrawnEdge(_polyline(trunk + [(min(xs), ybus)]) + " " + _polyline([(sx, ybus), (max(xs), ybus)]),
                               f"n{p}", lane, bus=True, arrow=False))
    # Buses out: every step of the lane -> one outer tensor.
    for (c, lane), members in bus_out.items():
        track = lane_out_tracks[lane].index((c, lane))
        ybus = lane_origin[lane][1] + lane_h[lane] - TRACK * (track + 1)
        rises = []
        for p, _c, j in members:
            a = port_out(p)
            xr = gap_x(step_of[p], False) + (track - len(lane_out_tracks[lane]) / 2) * 2.0
            rises.append(xr)
            add(DrawnEdge(_polyline([a, (xr, a[1]), (xr, ybus)]), drawn_of[p], f"n{c}",
                          arrow=False, **edge_style(c, j)), (drawn_of[p], f"n{c}"))
        tx_, ty_ = node_edge_point(c, ybus)
        xs = rises + [tx_]
        edges.append(DrawnEdge(_polyline([(min(xs), ybus), (max(xs), ybus)]) + " "
                               + _polyline([(tx_, ybus), (tx_, ty_)]), lane, f"n{c}", bus=True))
    # Outer -> outer edges: dot's own splines.
    for p, c, j, name in outer_edges:
        if name in outer_splines:
            points, tip = outer_splines[name]
            d = _path_from_spline(points, tip, lambda q: q)
        else:
            d = _polyline([node_xy[p][:2], node_xy[c][:2]])
        label = str(j) if len(graph.parents[c]) > 1 else None
        edges.append(DrawnEdge(d, f"n{p}", f"n{c}", label=label, **edge_style(c, j)))

    # ||dL/dh_t|| per lane, from the tensors named h_t.
    state_norms: dict[str, list[tuple[int, float]]] = {}
    for lane, members in lanes.items():
        series = []
        for step in members:
            for pos in step.members:
                if names.get(pos) == f"h_{step.t}" and pos in norms:
                    series.append((step.t, norms[pos]))
        if series:
            state_norms[lane] = series

    width = max([ow] + [f.x + f.w for f in frames]) + 10
    height = max([oh] + [f.y + f.h for f in frames]) + 10 + legend_h
    lane_info = [{"scope": lane, "steps": len(m), "mirrored": mirrored[lane],
                  "x": lane_origin[lane][0], "y": lane_origin[lane][1], "w": lane_w[lane],
                  "h": lane_h[lane]} for lane, m in lanes.items()]
    return UnrolledLayout(width, height, nodes, edges, frames, lane_info, collapse_steps, scale,
                          title, state_norms)

