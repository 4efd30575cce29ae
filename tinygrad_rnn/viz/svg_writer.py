"""SVG text of an :class:`~.unrolled.UnrolledLayout`, written directly (no Graphviz involved), and
``to_svg``, the scalable counterpart of ``to_dot`` + ``render``.

Structure of the SVG (stable, so tests and scripts can read it): a ``<g class="legend">``; one
``<g class="lane">`` per layer/direction; one ``<g class="cluster step" id="step-<scope>"
data-scope data-lane data-t>`` per time step, holding a ``<title>`` (the scope path), the nodes of
the step and the edges inside it; one ``<g class="node <kind>" id="n<i>">`` per drawn tensor
(ids as in ``to_dot``) or ``s<k>`` per collapsed step; one ``<path class="edge" data-src
data-dst>`` per drawn edge (parallel edges merged into one with a ``×count`` label when steps are
collapsed); ``<path class="bus">`` for the shared trunks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .render import write_text_atomic
from .style import LEGEND, STYLES
from .unrolled import DrawnEdge, DrawnNode, UnrolledLayout, layout_unrolled

__all__ = ["SVGGraph", "layout_to_svg", "to_svg"]

LEGEND_HEIGHT = 64.0
FONT = "Helvetica, Arial, sans-serif"


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _shape(kind: str, x: float, y: float, w: float, h: float) -> str:
    """The outline of a node of ``kind`` centred at (x, y)."""
    fill = STYLES[kind]["fillcolor"]
    left, top = x - w / 2, y - h / 2
    common = f'fill="{fill}" stroke="#444444" stroke-width="1"'
    shape = STYLES[kind]["shape"]
    if shape == "ellipse":
        return f'<ellipse cx="{_f(x)}" cy="{_f(y)}" rx="{_f(w / 2)}" ry="{_f(h / 2)}" {common}/>'
    if shape == "note":
        c = min(8.0, h / 3)
        pts = [(left, top), (left + w - c, top), (left + w, top + c), (left + w, top + h), (left, top + h)]
        return ('<polygon points="' + " ".join(f"{_f(a)},{_f(b)}" for a, b in pts) + f'" {common}/>'
                f'<polyline points="{_f(left + w - c)},{_f(top)} {_f(left + w - c)},{_f(top + c)} '
                f'{_f(left + w)},{_f(top + c)}" fill="none" stroke="#444444"/>')
    if shape == "doubleoctagon":
        out = []
        for inset in (0.0, 3.0):
            l, t, ww, hh = left + inset, top + inset, w - 2 * inset, h - 2 * inset
            c = min(ww, hh) * 0.25
            pts = [(l + c, t), (l + ww - c, t), (l + ww, t + c), (l + ww, t + hh - c), (l + ww - c, t + hh),
                   (l + c, t + hh), (l, t + hh - c), (l, t + c)]
            fill_attr = common if inset == 0 else 'fill="none" stroke="#444444" stroke-width="1"'
            out.append('<polygon points="' + " ".join(f"{_f(a)},{_f(b)}" for a, b in pts) + f'" {fill_attr}/>')
        return "".join(out)
    if shape == "box3d":
        return (f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(w)}" height="{_f(h)}" {common}/>'
                f'<polyline points="{_f(left + 3)},{_f(top)} {_f(left + 3)},{_f(top - 3)} '
                f'{_f(left + w + 3)},{_f(top - 3)} {_f(left + w + 3)},{_f(top + h - 3)} {_f(left + w)},{_f(top + h - 3)}" '
                f'fill="none" stroke="#444444"/>')
    return f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(w)}" height="{_f(h)}" rx="5" {common}/>'


def _text(lines: list[str], x: float, y: float, size: float = 10.0, anchor: str = "middle",
          extra: str = "") -> str:
    top = y - (len(lines) - 1) * (size + 2) / 2
    out = []
    for k, line in enumerate(lines):
        out.append(f'<text x="{_f(x)}" y="{_f(top + k * (size + 2) + size * 0.35)}" '
                   f'text-anchor="{anchor}" font-size="{_f(size)}"{extra}>{escape(line)}</text>')
    return "".join(out)


def node_svg(node: DrawnNode) -> str:
    label = "\n".join(node.lines)
    return (f'<g class="node {node.kind}" id="{node.id}"><title>{escape(label)}</title>'
            + _shape(node.kind, node.x, node.y, node.w, node.h) + _text(node.lines, node.x, node.y) + "</g>")


def edge_svg(edge: DrawnEdge) -> str:
    cls = "bus" if edge.bus else "edge"
    attrs = (f'class="{cls}" d="{edge.d}" data-src="{escape(edge.src)}" data-dst="{escape(edge.dst)}" '
             f'fill="none" stroke="{edge.colour}" stroke-width="{_f(edge.width)}"')
    if edge.dashed:
        attrs += ' stroke-dasharray="4,3"'
    if edge.arrow and not edge.bus or (edge.bus and edge.arrow):
        attrs += ' marker-end="url(#arrow)"'
    out = f"<path {attrs}/>"
    if edge.label:
        # the label sits at the path's end, just before the arrow
        last = edge.d.replace("M", " ").replace("L", " ").replace("C", " ").split()[-1]
        x, y = (float(v) for v in last.split(","))
        out += f'<text class="edge-label" x="{_f(x - 10)}" y="{_f(y - 3)}" font-size="8">{escape(edge.label)}</text>'
    return out


def _legend(layout: UnrolledLayout) -> str:
    out = ['<g class="legend">']
    x = 10.0
    y = 22.0
    entries = list(LEGEND) + ([("step", "time step (op counts)")] if layout.collapsed else [])
    for kind, text in entries:
        text = text.replace("\\n", " ")
        w = len(text) * 5.4 + 14
        out.append(_shape(kind, x + w / 2, y, w, 20) + _text([text], x + w / 2, y))
        x += w + 10
    notes = ("gates i f g o (LSTM), gx_/gh_ r z n (GRU); states h_t, c_t; lines along a lane: "
             "a weight or projection used at every step")
    out.append(_text([notes], 10, y + 24, 9, "start"))
    if layout.scale is not None:
        lo, hi = layout.scale.lo, layout.scale.hi
        gx = 10.0
        out.append(f'<text x="{_f(gx)}" y="{_f(y + 42)}" font-size="9">edge colour = |grad| along the edge: '
                   f'{10 ** lo:.2e}</text>')
        bar_x = gx + 200
        for k in range(20):
            norm = 10 ** (lo + (hi - lo) * k / 19)
            out.append(f'<rect x="{_f(bar_x + k * 6)}" y="{_f(y + 34)}" width="6" height="9" '
                       f'fill="{layout.scale.hex_colour(norm)}"/>')
        out.append(f'<text x="{_f(bar_x + 126)}" y="{_f(y + 42)}" font-size="9">{10 ** hi:.2e} '
                   '(grey dashed: none)</text>')
    out.append("</g>")
    return "".join(out)


def layout_to_svg(layout: UnrolledLayout, interactive: bool = False) -> str:
    """The SVG document of ``layout``. ``interactive`` adds, per step, a summary box drawn over
    the step (for the HTML viewer, which hides either the summary or the detail)."""
    width, height = layout.width + 20, layout.height + LEGEND_HEIGHT
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
            f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="{FONT}">')
    parts = [head,
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
             'fill="#555555"/></marker></defs>',
             f'<rect width="100%" height="100%" fill="white"/>']
    if layout.title:
        parts.append(f"<title>{escape(layout.title)}</title>")
    parts.append(_legend(layout))
    parts.append(f'<g class="graph" transform="translate(10,{_f(LEGEND_HEIGHT)})">')
    for lane in layout.lanes:
        parts.append(f'<g class="lane" id={quoteattr("lane-" + lane["scope"])}><title>{escape(lane["scope"])}</title>'
                     f'<rect x="{_f(lane["x"] - 4)}" y="{_f(lane["y"])}" width="{_f(lane["w"] + 8)}" '
                     f'height="{_f(lane["h"])}" fill="none" stroke="#d0d0d0" stroke-dasharray="2,2"/>'
                     f'<text x="{_f(lane["x"])}" y="{_f(lane["y"] - 3)}" font-size="10" fill="#666666">'
                     f'{escape(lane["scope"])} ({lane["steps"]} steps'
                     f'{", drawn right to left" if lane["mirrored"] else ""})</text></g>')
    by_step: dict[str | None, list[str]] = {}
    for edge in layout.edges:
        by_step.setdefault(edge.step, []).append(edge_svg(edge))
    nodes_by_step: dict[str | None, list[str]] = {}
    for node in layout.nodes:
        nodes_by_step.setdefault(node.step, []).append(node_svg(node))
    parts.extend(by_step.get(None, []))
    for frame in layout.steps:
        attrs = (f'class="cluster step" id={quoteattr("step-" + frame.scope)} data-scope={quoteattr(frame.scope)} '
                 f'data-lane={quoteattr(frame.lane)} data-t="{frame.t}"')
        parts.append(f"<g {attrs}><title>{escape(frame.scope)}</title>")
        if not layout.collapsed:
            parts.append(f'<rect x="{_f(frame.x)}" y="{_f(frame.y)}" width="{_f(frame.w)}" height="{_f(frame.h)}" '
                         f'rx="6" fill="#f6f6f6" stroke="#9e9e9e"/>'
                         f'<text x="{_f(frame.x + 5)}" y="{_f(frame.y + 11)}" font-size="10">{escape(frame.scope)}</text>')
        parts.append('<g class="detail">' + "".join(by_step.get(frame.scope, []))
                     + "".join(nodes_by_step.get(frame.scope, [])) + "</g>")
        if interactive and not layout.collapsed:
            lines = [frame.scope] + frame.summary[1:]
            parts.append(f'<g class="summary"><rect x="{_f(frame.x)}" y="{_f(frame.y)}" width="{_f(frame.w)}" '
                         f'height="{_f(frame.h)}" rx="6" fill="{STYLES["step"]["fillcolor"]}" stroke="#9e9e9e"/>'
                         + _text(lines, frame.x + frame.w / 2, frame.y + frame.h / 2, 11) + "</g>")
        parts.append("</g>")
    parts.extend(nodes_by_step.get(None, []))
    parts.append("</g></svg>")
    return "\n".join(parts) + "\n"


class SVGGraph:
    """SVG text (``.source``) of the linear-in-T layout; ``save(path)`` writes it atomically, and
    Jupyter shows it inline (``_repr_svg_``)."""

    def __init__(self, source: str, layout: UnrolledLayout):
        self.source = source
        self.layout = layout

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix != ".svg":
            path = path.with_name(path.name + ".svg")
        return write_text_atomic(path, self.source)

    def _repr_svg_(self) -> str:
        return self.source

    def __str__(self) -> str:
        return self.source


def to_svg(*roots: Any, params: Any = None, show_shapes: bool = True, show_grads: bool = False,
           collapse_steps: bool = False) -> SVGGraph:
    """The graph of ``roots`` drawn with the linear-in-T layout (see ``viz.unrolled``): the
    counterpart of ``render(to_dot(...))`` for long sequences, same arguments as ``to_dot``.
    Runs Graphviz's ``dot`` only on one step per distinct step structure."""
    layout = layout_unrolled(*roots, params=params, show_grads=show_grads,
                             collapse_steps=collapse_steps, show_shapes=show_shapes)
    return SVGGraph(layout_to_svg(layout), layout)
