"""Re-export of :mod:`tinygrad_rnn.autograd.engine`, where this code now lives.

``tinygrad_rnn.engine`` keeps working (package layout of issue 19): every name below is the same
object as in ``tinygrad_rnn.autograd.engine``; nothing is copied."""
from .autograd.engine import (  # noqa: F401  (re-exported)
    apply, as_operands, constant, current_scope, detect_anomaly, effect, enable_grad, get_tracer,
    graph_tensors, is_grad_enabled, live_node_count, no_grad, Node, node_order, op,
    promote_operands, register_tensor_class, run_backward, scope, set_tracer, tensor_list,
    unbroadcast,
)

__all__ = [
    "Node", "apply", "detect_anomaly", "effect", "enable_grad", "is_grad_enabled", "no_grad", "op",
    "run_backward", "scope", "current_scope", "graph_tensors", "node_order", "unbroadcast",
    "set_tracer", "get_tracer", "live_node_count", "constant", "promote_operands", "as_operands",
    "tensor_list", "register_tensor_class",
]
