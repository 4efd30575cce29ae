"""The autograd engine: graph nodes, the op mechanism, the backward walk, and grad modes.

A differentiable op is a plain function over NumPy arrays that returns its result and a
``backward`` function, side by side (see :func:`op`)::

    @op()
    def tanh(x):
        '''y = tanh x;  dL/dx = g (1 - y²).'''
        y = np.tanh(x)
        return y, lambda g: (g * (1.0 - y * y),)

``backward`` maps the gradient of the output (one array per output) to **one dense array (or
None) per input**, at the input's shape or at the broadcast shape of the output. Nothing else:
no deferred pieces, no special gradient types. When an input requires grad, :func:`apply`
records a :class:`Node` holding the op's name, its input tensors and ``backward``; every result
tensor points at that node. ``Tensor.backward()`` then walks the nodes in reverse topological
order (:func:`run_backward`), found with an explicit stack, so a 100,000-node chain needs no
recursion. :func:`unbroadcast` is the one place that sums a broadcast gradient back.

This module knows nothing about particular ops or layers. ``tinygrad_rnn.compile`` observes it
through one hook (``set_tracer``): every op application, backward walk and marked side effect
(:func:`effect`, e.g. an optimizer step) is reported while a trace is being recorded.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import inspect
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor

__all__ = [
    "Node", "apply", "detect_anomaly", "effect", "enable_grad", "is_grad_enabled", "no_grad", "op",
    "run_backward", "scope", "current_scope", "graph_tensors", "node_order", "unbroadcast",
    "set_tracer", "get_tracer", "live_node_count", "constant", "promote_operands", "as_operands",
    "tensor_list", "register_tensor_class",
]

# Module-level switches, read on every op; globals are the cheapest thing Python can look up.
_grad_enabled = True
_anomaly = False
_scope: str | None = None
_tracer: Any = None          # set by tinygrad_rnn.compile while it records a trace
_Tensor: Any = None          # the Tensor class, registered by tensor.py (which imports this module)


# ----- graph nodes ------------------------------------------------------------------------------
class Node:
    """One application of an op that some gradient may flow through.

    ``inputs`` are the argument tensors, ``backward(g)`` (``backward(g0, g1, ...)`` for an op with
    several outputs) returns one gradient per input, ``out_meta`` lists ``(shape, dtype)`` of each
    output (a missing output gradient is then zeros). ``retained`` maps an output index to the
    tensor whose ``.grad`` should be kept (``Tensor.retain_grad``).
    """

    __slots__ = ("op", "inputs", "backward", "out_meta", "retained", "__weakref__")

    def __init__(self, op: str, inputs: tuple, backward: Callable, out_meta: tuple):
        self.op = op
        self.inputs = inputs
        self.backward = backward
        self.out_meta = out_meta
        self.retained: dict | None = None

    def output_grads(self, grads: list) -> list:
        """The gradients of this node's outputs (several), zeros where none arrived (None)."""
        return [np.zeros(shape, dtype) if g is None else g
                for g, (shape, dtype) in zip(grads, self.out_meta)]

    @property
    def freed(self) -> bool:
        """True once a backward walk without ``retain_graph`` has released this node."""
        return self.backward is _released

    def __repr__(self) -> str:
        return f"<Node {self.op}>"


def _released(*grads: Any) -> tuple:
    raise RuntimeError(
        "Trying to backward through the graph a second time (or through a part of it that was "
        "already freed). Pass retain_graph=True to the first backward(), or detach() the tensor "
        "(e.g. the hidden state between truncated-BPTT chunks)."
    )


def live_node_count() -> int:
    """How many graph nodes are alive in the process (a leak check: after every training step
    this returns to the same number). Counted by the garbage collector, so it costs nothing
    while the engine runs."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Node)


# ----- the op mechanism -------------------------------------------------------------------------
def op(name: str | None = None, inputs: int | str = 1, differentiable: bool = True,
       promote: bool = True, floats: bool = False) -> Callable[[Callable], Callable]:
    """Turn an array function ``forward(*arrays, *args, **kwargs) -> (result, backward)`` into an
    op on tensors.

    ``inputs`` is how many leading arguments are tensors (``"list"``: the first argument is a list
    of them); the rest are passed through unchanged (axes, shapes, flags). Operands that are not
    tensors (Python numbers, arrays) become constants; with ``promote`` they are cast to the
    floating dtype of the tensor operands, and mixing float32 with float64 tensors is an error.
    A forward that declares a ``needs`` parameter receives a tuple of flags, one per input,
    saying which inputs need a gradient, so its backward can skip the others. A result that is a
    tuple of arrays gives one tensor per element (``chunk``); ``differentiable=False`` ops
    (comparisons, ``argmax``) never record a node. ``floats`` marks an op whose result is always
    floating (``tanh``, ``exp``, true division): integer and bool operands with no float beside
    them are cast to the default float (float32), as PyTorch does, by the ``astype`` op so a trace
    sees it. The returned function keeps the array function as ``.forward``.
    """
    def decorate(forward: Callable) -> Callable:
        op_name = name or forward.__name__
        wants_needs = "needs" in inspect.signature(forward).parameters
        lift = promote_operands if promote else as_operands
        if inputs == "list":
            # forward(*arrays, axis=0): options given by position go to its keyword-only parameters
            options = [p.name for p in inspect.signature(forward).parameters.values()
                       if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "needs"]

            def wrapper(tensors: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
                if args:
                    kwargs = dict(zip(options, args), **kwargs)
                return apply(forward, lift(tensor_list(tensors, op_name), op_name), (), kwargs,
                             op_name, wants_needs, differentiable)
        elif inputs == 1:
            def wrapper(x: Any, *args: Any, **kwargs: Any) -> Any:
                if type(x) is not _Tensor:
                    x = as_operands((x,), op_name)[0]
                if floats and x.data.dtype.kind != "f":
                    x = _astype(x, _default_float())
                return apply(forward, (x,), args, kwargs, op_name, wants_needs, differentiable)
        else:
            count = int(inputs)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if len(args) < count:
                    raise TypeError(f"{op_name}: expected {count} tensor arguments, got {len(args)}")
                operands = args[:count]
                if floats and not any(isinstance(a, _Tensor) and a.data.dtype.kind == "f" for a in operands):
                    # no float tensor: integer tensors become float32, then numbers follow them
                    operands = [_astype(a, _default_float()) if isinstance(a, _Tensor) else a for a in operands]
                return apply(forward, lift(operands, op_name), args[count:], kwargs, op_name,
                             wants_needs, differentiable)
        functools.update_wrapper(wrapper, forward)
        wrapper.forward = forward  # type: ignore[attr-defined]
        return wrapper
    return decorate


def apply(forward: Callable, tensors: tuple, args: tuple, kwargs: dict, name: str,
          wants_needs: bool = False, differentiable: bool = True) -> Any:
    """Run ``forward`` on the tensors' arrays and wrap the result; record a node if a gradient
    can flow (grad mode on and some input requires grad)."""
    grad = False
    if differentiable and _grad_enabled:
        for t in tensors:
            if t.requires_grad:
                grad = True
                break
    if wants_needs:
        kwargs = dict(kwargs, needs=tuple(t.requires_grad for t in tensors) if grad
                      else (False,) * len(tensors))
    out, backward = forward(*[t.data for t in tensors], *args, **kwargs)
    many = type(out) is tuple
    if many:
        outs = [_wrap(y) for y in out]
    else:
        outs = _wrap(out)
        grad = grad and outs.data.dtype.kind == "f"  # e.g. astype to int: no gradient flows
    if grad:
        meta = tuple((y.shape, y.dtype) for y in outs) if many else None
        node = Node(name, tensors, backward, meta)
        if many:
            for i, t in enumerate(outs):
                t.requires_grad = t.data.dtype.kind == "f"
                t.grad_fn = node
                t.output_index = i
        else:
            outs.requires_grad = True
            outs.grad_fn = node
        if _anomaly:
            for t in (outs if many else (outs,)):
                _check_finite(node, t.data, "forward")
    if _tracer is not None:
        _tracer.on_op(forward, tensors, args, kwargs, outs, many)
    return tuple(outs) if many else outs


def _wrap(y: Any) -> "Tensor":
    """A fresh tensor around an op's result (no graph yet; NumPy's 0-d scalars become arrays)."""
    if type(y) is not np.ndarray:
        y = np.asarray(y)
    t = _new(_Tensor)
    t.data = y
    t.grad = None
    t.requires_grad = False
    t.grad_fn = None
    t.output_index = 0
    t.scope = _scope
    t.name = None
    return t


_new = object.__new__


def constant(data: Any) -> "Tensor":
    """A tensor that needs no graph (an operand that was a number or an array)."""
    return _wrap(data)


def as_operands(items: Sequence[Any], name: str) -> tuple:
    """Check that every item of ``items`` is a Tensor, array or number (argument ``name`` in the error) and return them as a tuple."""
    out = []
    for x in items:
        if not isinstance(x, _Tensor):
            x = _operand_array(x, None, name)
        out.append(x)
    return tuple(out)


def _operand_array(x: Any, like: np.dtype | None, name: str) -> "Tensor":
    """A number or array operand as a constant tensor, cast to the float dtype ``like`` if given
    (so ``x * 0.5`` or ``x + np.ones(3)`` never upcasts a float32 tensor)."""
    kind = type(x)
    if like is not None and (kind is float or kind is int):   # the common `x * 0.5`
        try:
            return constant(np.array(x, dtype=like))
        except OverflowError:  # an int beyond every float: 10**400
            raise ValueError(f"{name}: the operand {kind.__name__} is too large for {like}") from None
    if not isinstance(x, (int, float, bool, np.number, np.bool_, np.ndarray, list, tuple)):
        raise TypeError(f"{name}: unsupported operand type {kind.__name__}")
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: cannot use {kind.__name__} as a numeric operand")
    if like is not None:
        array = array.astype(like, copy=False)
    return constant(array)


def promote_operands(items: Sequence[Any], name: str) -> tuple:
    """Operands of one op: tensors as they are, numbers and arrays as constants of the tensors'
    floating dtype, integer tensors cast (by the ``astype`` op, so a trace sees it) to it."""
    floats = {x.data.dtype for x in items if isinstance(x, _Tensor) and x.data.dtype.kind == "f"}
    if len(floats) > 1:
        a, b = sorted(floats, key=str)
        raise TypeError(f"{name}: dtype mismatch between tensors, {a} and {b}; convert one with .astype()")
    like = floats.pop() if floats else None
    out = []
    for x in items:
        if isinstance(x, _Tensor):
            if like is not None and x.data.dtype.kind != "f":
                x = _astype(x, like)
        else:
            if not any(isinstance(y, _Tensor) for y in items):
                raise TypeError(f"{name}: expected at least one Tensor operand")
            x = _operand_array(x, like, name)
        out.append(x)
    return tuple(out)


def _default_float() -> Any:
    from .tensor import DEFAULT_FLOAT  # tensor.py imports this module
    return DEFAULT_FLOAT


def _astype(x: "Tensor", dtype: np.dtype) -> "Tensor":
    from .ops import astype  # the op lives with the shape ops; imported late to avoid a cycle
    return astype(x, dtype)


def tensor_list(tensors: Any, name: str) -> list:
    """Check that ``tensors`` is a list or tuple of tensors (argument ``name`` in the error) and return it as a list."""
    if isinstance(tensors, _Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor")
    return list(tensors)


# ----- side effects a trace must replay ---------------------------------------------------------
def effect(fn: Callable) -> Callable:
    """Mark a function that changes state outside the graph (an optimizer step, ``zero_grad``,
    gradient clipping) so that ``tinygrad_rnn.compile`` records the call and repeats it on
    replay. Outside a trace this is a plain call."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _tracer is None:
            return fn(*args, **kwargs)
        return _tracer.on_effect(fn, args, kwargs)
    return wrapper


def register_tensor_class(cls: type) -> None:
    """Called once by ``tinygrad_rnn.tensor``: the class this module wraps op results in."""
    global _Tensor
    _Tensor = cls


def set_tracer(tracer: Any) -> Any:
    """Install the object told about every op, backward walk and effect (None: stop); returns the
    previous one. Used by ``tinygrad_rnn.compile``."""
    global _tracer
    previous, _tracer = _tracer, tracer
    return previous


def get_tracer() -> Any:
    """The tracer ``tg.compile`` installs while it records a step, or None during eager execution."""
    return _tracer


# ----- the backward walk ------------------------------------------------------------------------
def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient back to ``shape`` after broadcasting.

    If ``y = f(broadcast(x))`` then ``dL/dx`` is ``dL/dy`` summed over the axes broadcasting added
    (leading ones) and over the axes where ``x`` had size 1. This is the one place that undoes
    broadcasting; ops never do it themselves.
    """
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:  # a 0-d input broadcast against a 1-element array, and similar
        grad = grad.reshape(shape)
    return np.asarray(grad)


def node_order(roots: Sequence["Tensor"]) -> list[Node]:
    """Every node the roots depend on, each after all the nodes of its inputs (iterative DFS).
    The order depends only on the graph's structure, so graph dumps are deterministic."""
    order: list[Node] = []
    visited: set[int] = set()
    for root in roots:
        node = root.grad_fn
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        # Each entry: a node and an iterator over its inputs; the first input is finished first.
        stack = [(node, iter(node.inputs))]
        while stack:
            current, inputs = stack[-1]
            for t in inputs:
                parent = t.grad_fn
                if parent is not None and id(parent) not in visited:
                    visited.add(id(parent))
                    stack.append((parent, iter(parent.inputs)))
                    break
            else:
                stack.pop()
                order.append(current)
    return order


def graph_tensors(roots: Sequence["Tensor"]) -> list["Tensor"]:
    """Every tensor the roots depend on (constants and leaves included), each after its inputs,
    for graph dumps; an op with several outputs contributes those the roots reach."""
    order: list = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(root.parents))]
        while stack:
            t, parents = stack[-1]
            for p in parents:
                if id(p) not in visited:
                    visited.add(id(p))
                    stack.append((p, iter(p.parents)))
                    break
            else:
                stack.pop()
                order.append(t)
    return order


def run_backward(roots: Sequence["Tensor"], grads: Sequence[np.ndarray], retain_graph: bool) -> None:
    """Accumulate ``Σ_k grads[k] · d roots[k] / d leaf`` into the ``.grad`` of every leaf that
    requires grad, walking the nodes in reverse topological order.

    ``pending`` holds, per node, the gradient of its output (a list, one per output, for an op
    with several) and, per leaf, the gradient gathered so far. A node's gradient is complete when
    the walk reaches it, because every node that consumes its outputs comes later in the order.
    """
    if _tracer is not None:
        _tracer.on_backward(roots, grads, retain_graph)
    order = node_order(roots)
    pending: dict[int, Any] = {}
    leaves: dict[int, Any] = {}
    for root, g in zip(roots, grads):
        _accumulate(pending, leaves, root, g)
    for node in reversed(order):
        g = pending.pop(id(node), None)
        if g is not None:
            if node.out_meta is not None:  # several outputs: zeros where no gradient arrived
                g = node.output_grads(g)
                if node.retained:
                    for i, t in node.retained.items():
                        t.grad = g[i].copy() if t.grad is None else t.grad + g[i]
                input_grads = node.backward(*g)
            else:
                if node.retained:
                    t = node.retained[0]
                    t.grad = g.copy() if t.grad is None else t.grad + g
                input_grads = node.backward(g)
            for t, gi in zip(node.inputs, input_grads):
                if gi is not None and t.requires_grad:
                    if _anomaly:
                        _check_finite(node, gi, "backward")
                    _accumulate(pending, leaves, t, gi)
        if not retain_graph:
            node.backward = _released
            node.inputs = ()
    for t, (g, fresh) in leaves.values():
        if t.grad is None:
            t.grad = g if fresh else g.copy()
        else:
            t.grad += g


def _accumulate(pending: dict, leaves: dict, t: "Tensor", g: Any) -> None:
    """Add gradient ``g`` for tensor ``t``: summed back to its shape, cast to its dtype."""
    if type(g) is not np.ndarray:  # NumPy turns 0-d results into scalars
        g = np.asarray(g)
    data = t.data
    if g.shape != data.shape:
        g = unbroadcast(g, data.shape)
    if g.dtype != data.dtype:
        g = g.astype(data.dtype)
    node = t.grad_fn
    if node is None:  # a leaf: gathered, then added into .grad once the walk is over
        key = id(t)
        entry = leaves.get(key)
        # `fresh`: the array is ours alone (a sum we made), so .grad may take it without a copy
        leaves[key] = (t, (g, False)) if entry is None else (t, (np.asarray(entry[1][0] + g), True))
        return
    key = id(node)
    if node.out_meta is None:
        buffer = pending.get(key)
        pending[key] = g if buffer is None else np.asarray(buffer + g)
    else:
        slots = pending.get(key)
        if slots is None:
            slots = pending[key] = [None] * len(node.out_meta)
        i = t.output_index
        slots[i] = g if slots[i] is None else np.asarray(slots[i] + g)


def _check_finite(node: Node, array: np.ndarray, phase: str) -> None:
    if not np.all(np.isfinite(array)):
        shapes = ", ".join(str(t.shape) for t in node.inputs)
        scope_name = next((t.scope for t in node.inputs if t.scope), None)
        raise FloatingPointError(
            f"detect_anomaly: op '{node.op}' produced a non-finite value in its {phase} "
            f"(input shapes: {shapes}; scope: {scope_name})"
        )


# ----- modes ------------------------------------------------------------------------------------
class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator: no graph is recorded inside."""

    _value = False

    def __init__(self) -> None:
        # A stack, not one slot: a decorator re-enters the same instance on every (recursive) call.
        self._previous: list[bool] = []

    def __enter__(self) -> "no_grad":
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = self._value
        return self

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


class enable_grad(no_grad):
    """Turn graph recording back on inside a ``no_grad`` block."""

    _value = True


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``: whether ops record the graph for ``backward``."""
    return _grad_enabled


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise ``FloatingPointError`` at the first op whose result or gradient has NaN or inf."""
    global _anomaly
    previous = _anomaly
    _anomaly = True
    try:
        yield
    finally:
        _anomaly = previous


@contextlib.contextmanager
def scope(name: str) -> Iterator[str]:
    """Tag every tensor created inside with ``outer/name``; graph dumps draw scopes as clusters."""
    global _scope
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"scope: name must be a non-empty string without '/', got {name!r}")
    previous = _scope
    _scope = name if previous is None else f"{previous}/{name}"
    try:
        yield _scope
    finally:
        _scope = previous


def current_scope() -> str | None:
    """The name set by the innermost ``scope(...)`` (graph dumps group nodes by it), or None."""
    return _scope
