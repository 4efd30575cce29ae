"""How nodes and edges look in every view (DOT, SVG, HTML): node styles, the gradient colour
scale, and the small text formatters the labels share."""
from __future__ import annotations

import colorsys
import math
from typing import Iterable

from ..autograd.tensor import Tensor

__all__ = [
    "LEGEND", "STYLES", "ColourScale", "escape_dot", "format_norm", "hsv_to_hex", "shape_text",
]

STYLES: dict[str, dict[str, str]] = {
    "parameter": {"shape": "ellipse", "style": "filled", "fillcolor": "#c6dbef"},
    "input": {"shape": "note", "style": "filled", "fillcolor": "#e0e0e0"},
    "intermediate": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff4cc"},
    "output": {"shape": "doubleoctagon", "style": "filled", "fillcolor": "#fcae91"},
    "step": {"shape": "box3d", "style": "filled", "fillcolor": "#fdd49e"},
}
# (kind, legend text with \n line breaks)
LEGEND = (
    ("parameter", "parameter\\n(leaf, requires grad)"),
    ("input", "input / constant"),
    ("intermediate", "op result"),
    ("output", "output (root)"),
)


def escape_dot(text: str) -> str:
    """Make free text safe inside a DOT string (the graphviz package escapes the quotes)."""
    return text.replace("\\", "\\\\")


def shape_text(t: Tensor) -> str:
    """A node label's shape and dtype, e.g. ``(3, 4) float32`` (``scalar float32`` for 0-d)."""
    shape = "scalar" if len(t.shape) == 0 else "(" + ", ".join(str(n) for n in t.shape) + ")"
    return f"{shape} {t.dtype}"


def format_norm(norm: float) -> str:
    """A gradient norm as a label line, ``|grad| 1.23e-02``."""
    return f"|grad| {norm:.2e}"


def hsv_to_hex(h: float, s: float, v: float) -> str:
    """An HSV colour (each in [0, 1]) as a ``#rrggbb`` string."""
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return "#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255))


class ColourScale:
    """Log-scale map of gradient norms to colours: hue from blue (smallest) to red (largest).

    fraction(v) = (log10 v - log10 v_min) / (log10 v_max - log10 v_min), hue = 0.667 (1 - fraction).
    """

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

    def hue(self, norm: float) -> float:
        return 0.667 * (1.0 - self.fraction(norm))

    def colour(self, norm: float) -> str:
        """Graphviz "H S V" colour text."""
        if math.isnan(norm):
            return "black"
        return f"{self.hue(norm):.3f} 0.850 0.850"

    def hex_colour(self, norm: float) -> str:
        """The same colour as ``#rrggbb`` (for SVG and HTML)."""
        if math.isnan(norm):
            return "#000000"
        return hsv_to_hex(round(self.hue(norm), 3), 0.85, 0.85)

    def edge_attrs(self, norm: float) -> dict[str, str]:
        if norm == 0:
            return {"color": "#bdbdbd", "style": "dashed"}
        frac = 1.0 if math.isnan(norm) else self.fraction(norm)
        return {"color": self.colour(norm), "penwidth": f"{1.0 + 2.0 * frac:.2f}"}
