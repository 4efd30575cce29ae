"""Pictures of computation graphs, unrolled RNNs included, and gradient flow through time.

Three views of the same graph:

- ``to_dot`` (+ ``render``): Graphviz DOT, laid out by ``dot`` globally. Any graph; best for small
  ones (a few unrolled steps), where dot's own placement is the most readable.
- ``to_svg``: the linear-in-T layout (``viz.unrolled``): one step laid out once by ``dot`` and
  repeated along the time axis; seconds for thousands of steps.
- ``to_html``: one self-contained HTML page with pan and zoom, steps that expand on click, the
  facts of a tensor on click, and a strip chart of ``||dL/dh_t||`` over t.
- ``schedule_text``: what ``tinygrad_rnn.compile`` captured of a function (its ops with shapes and
  scopes, effects, backward walks) and what the compiler's passes made of it.

Drawing conventions shared by the views:

- One node per tensor. An op result is a rounded box labelled with the op name (and shape and
  dtype); a leaf is labelled with its name. Parameters (leaves that require grad) are blue
  ellipses, inputs and constants grey notes, intermediates yellow boxes, and the outputs (the
  roots) red double octagons; a legend repeats the styles.
- Names that teach: parameters by their ``params`` name (e.g. ``dict(model.named_parameters())``)
  or ``tensor.name``; the outputs of an LSTM's gate split ``i f g o`` and a GRU's ``gx_r`` ...
  ``gh_n``; states carried from step to step ``h_t`` (the one multiplied by W_hh) and ``c_t``.
- Edges run from an argument to the op result, in argument order. An op with several arguments
  labels each edge with the argument's index, so ``x * x`` shows two edges, ``0`` and ``1``.
- Node ids are ``n<i>`` with ``i`` the tensor's position in the topological order, which depends
  on the graph's structure only, so the output of the same script is byte-identical between runs.
- Every ``scope(...)`` path becomes a cluster labelled with the path, nested like the path.
  ``collapse_steps=True`` draws each time-step scope (a path whose last part is ``t<k>``) as a
  single node labelled with its op counts, ``t3: addmm×1 split×4 ...``, with deduplicated edges.
- ``show_grads=True`` adds ``|grad|`` (the Frobenius norm of ``.grad``) to every tensor that has
  one, and colours every edge by the norm of the gradient that flowed along it (the op's
  vector-Jacobian product for that argument, recomputed from the result's ``.grad``), on a log
  scale from blue (the smallest in the graph) to red (the largest); an edge that carried an
  exactly zero gradient is grey and dashed. Intermediate tensors keep their gradient only when
  asked: call :func:`retain_grads` before ``backward(retain_graph=True)``.

All graph walks are iterative, so a graph of 100,000 ops needs no deep recursion. The package
imports without the ``graphviz`` Python package; only ``to_dot`` needs it.
"""
from .dot_writer import RANKDIRS, to_dot
from .gradient_flow import gradient_flow, step_grad_norms
from .html_writer import HTMLGraph, to_html
from .plotting import plot_gradient_flow
from .render import (
    DOT_MAX_NODES, DOT_MAX_STEP_BOXES, INSTALL_HINT, GraphTooLargeForDot, GraphvizNotFound, render,
)
from .schedule import schedule_text
from .stats import graph_stats, retain_grads
from .style import STYLES
from .svg_writer import SVGGraph, to_svg
from .unrolled import UnrolledLayout, layout_unrolled

__all__ = [
    "DOT_MAX_NODES", "DOT_MAX_STEP_BOXES", "GraphTooLargeForDot", "GraphvizNotFound", "HTMLGraph",
    "INSTALL_HINT", "RANKDIRS", "STYLES", "SVGGraph", "UnrolledLayout", "gradient_flow",
    "graph_stats", "layout_unrolled", "plot_gradient_flow", "render", "retain_grads", "schedule_text",
    "step_grad_norms", "to_dot", "to_html", "to_svg",
]
