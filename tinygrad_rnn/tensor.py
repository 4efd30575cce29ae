"""The graph node: ``Tensor``, grad modes, scopes and the iterative backward pass.

A Tensor wraps a NumPy array. When an op runs on tensors that require grad, its result records the
op's name, its inputs (``_parents``) and a ``_backward`` closure mapping the output gradient to one
gradient per input. ``backward()`` walks that graph in reverse topological order, found with an
explicit stack so that a 100,000-op chain (a long unrolled RNN) needs no recursion.

The ops themselves live in :mod:`tinygrad_rnn.ops`, which installs them as methods and operators
on ``Tensor``; this module knows nothing about any particular op.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .random import rng

DEFAULT_FLOAT = np.float32

# Module-level switches, read on every op; globals are the cheapest thing Python can look up.
_grad_enabled = True
_anomaly = False
_scope: str | None = None


class _Released:
    """Stands in for the backward closure of a node whose graph was freed by backward()."""

    __slots__ = ()

    def __call__(self, g: np.ndarray) -> tuple:
        raise RuntimeError(
            "Trying to backward through the graph a second time (or through a part of it that was "
            "already freed). Pass retain_graph=True to the first backward(), or detach() the "
            "tensor (e.g. the hidden state between truncated-BPTT chunks)."
        )


RELEASED = _Released()


class SliceGrad:
    """A gradient that is zero except at ``index``: ``grad[index] += value``.

    Slicing ops return this instead of a zero-filled full-size array. The engine collects the
    pieces that reach one tensor and assembles them at once: when they tile it exactly (the four
    gate slices of an LSTM step, or the T time steps taken from a hoisted input projection) with a
    single concatenate, otherwise by adding each into one zero buffer.
    """

    __slots__ = ("index", "value", "advanced", "tile")

    def __init__(self, index: Any, value: np.ndarray, advanced: bool = False,
                 tile: tuple | None = None):
        self.index = index
        self.value = value
        self.advanced = advanced  # integer-array index: repeated entries must accumulate
        # (axis, start, stop, squeezed): index picks start:stop along axis (an int index if squeezed)
        self.tile = tile

    def add_into(self, buffer: np.ndarray) -> None:
        if self.advanced:
            np.add.at(buffer, self.index, self.value)
        else:
            buffer[self.index] += self.value


class OuterGrad:
    """The weight gradient of ``y = a @ b`` left unevaluated: ``dL/db = aᵀ g``.

    A recurrent weight is multiplied at every time step; summing its T pieces as
    ``Σ aₜᵀ gₜ = [a₁; …; a_T]ᵀ [g₁; …; g_T]`` is one large matmul instead of T small ones and
    T additions (what a handwritten BPTT does too).
    """

    __slots__ = ("a", "g")

    def __init__(self, a: np.ndarray, g: np.ndarray):
        self.a = a
        self.g = g


def assemble(pieces: list, like: np.ndarray) -> np.ndarray:
    """Sum of deferred gradient pieces (SliceGrad, OuterGrad, or plain arrays that arrived among
    them) as one fresh dense array shaped like ``like``."""
    outer = [p for p in pieces if type(p) is OuterGrad]
    slices = [p for p in pieces if type(p) is SliceGrad]
    dense = [p for p in pieces if type(p) is np.ndarray]
    result = _assemble_slices(slices, like) if slices else None
    if outer:
        if len(outer) == 1:
            product = outer[0].a.T @ outer[0].g
        else:
            product = np.concatenate([p.a for p in outer]).T @ np.concatenate([p.g for p in outer])
        if product.dtype != like.dtype:
            product = product.astype(like.dtype)
        if result is None:
            result = product
        else:
            result += product
    for array in dense:
        if result is None:
            result = array.astype(like.dtype, copy=True)
        else:
            result += array
    return result


def _assemble_slices(pieces: list, like: np.ndarray) -> np.ndarray:
    tiles = [p.tile for p in pieces]
    if None not in tiles:
        axis = tiles[0][0]
        order = sorted(range(len(pieces)), key=lambda i: tiles[i][1])
        position = 0
        for i in order:
            if tiles[i][0] != axis or tiles[i][1] != position:
                break
            position = tiles[i][2]
        else:
            if position == like.shape[axis]:
                grow = (slice(None),) * axis + (None,)  # re-insert a squeezed axis (a view)
                values = [pieces[i].value[grow] if tiles[i][3] else pieces[i].value for i in order]
                out = np.concatenate(values, axis=axis)
                return out if out.dtype == like.dtype else out.astype(like.dtype)
    buffer = np.zeros(like.shape, dtype=like.dtype)
    for piece in pieces:
        piece.add_into(buffer)
    return buffer


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
    return grad


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    array = np.asarray(data)
    if array.dtype == np.float64 and not isinstance(data, np.generic):
        # Python floats and lists of them default to float32, like torch.tensor.
        array = array.astype(DEFAULT_FLOAT)
    if array.dtype.kind not in "biuf":  # strings, objects, complex: not numbers we support
        raise TypeError(f"Tensor: cannot make a numeric array from {type(data).__name__}")
    return array


class Tensor:
    """An n-dimensional array that can record the ops applied to it for reverse-mode autodiff.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python floats default to float32; NumPy
    arrays keep their dtype (and are not copied). Only floating tensors may require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "_scope",
                 "_retain", "name", "__weakref__")
    __array_priority__ = 1000  # so ndarray OP Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        array = _as_array(data, dtype)
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype {array.dtype}"
            )
        self.data = array
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple = ()
        self._backward: Callable | None = None
        self._op = ""
        self._scope = _scope
        self._retain = False
        self.name: str | None = None

    # ----- basic properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    @property
    def op(self) -> str:
        """Name of the op that produced this tensor ("" for leaves)."""
        return self._op

    @property
    def parents(self) -> tuple:
        """The tensors this one was computed from (empty for leaves and after backward frees it)."""
        return self._parents

    @property
    def scope(self) -> str | None:
        """The ``scope(...)`` path that was open when this tensor was created."""
        return self._scope

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to scalars, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """A new leaf sharing the data, cut from the graph (gradients stop here)."""
        return Tensor(self.data)

    def retain_grad(self) -> "Tensor":
        """Keep this intermediate tensor's gradient in ``.grad`` during backward (for inspection)."""
        if self.requires_grad and self._backward is not None:
            self._retain = True
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: dtype {self.data.dtype} cannot require grad")
        if self._backward is not None:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is not None:
            return self.data.astype(dtype, copy=False)
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator["Tensor"]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, separator=", ",
                               prefix="Tensor(")
        extra = f", dtype={self.data.dtype}"
        if self._op:
            extra += f", op={self._op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError("The truth value of a tensor with more than one element is ambiguous")
        return bool(self.data)

    # ----- backward ---------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · grad into ``.grad`` of every leaf that requires grad.

        ``grad`` defaults to 1 for a one-element tensor and is required (same shape) otherwise.
        The graph is freed afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: tensor does not require grad and has no graph")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad can be implicit only for one-element outputs; got shape "
                    f"{self.shape}, pass grad= of that shape"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad)
            if grad.shape != self.data.shape:
                raise ValueError(
                    f"backward: grad must have the output's shape {self.shape}, got {grad.shape}"
                )
            grad = grad.astype(self.data.dtype, copy=False)
        run_backward([self], [grad], retain_graph)


def topological_order(roots: Sequence[Tensor], needs_grad_only: bool = True) -> list[Tensor]:
    """Every tensor the roots depend on, each after all of its parents (iterative DFS).

    ``needs_grad_only`` skips constants (inputs that do not require grad), which backward never
    visits. The order only depends on the graph's structure, so graph dumps are deterministic.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
        # Each entry: a node and an iterator over its parents; the first parent is finished first,
        # which gives creation-like numbering.
        stack = [(root, iter(root._parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if id(parent) not in visited and (parent.requires_grad or not needs_grad_only):
                    visited.add(id(parent))
                    stack.append((parent, iter(parent._parents)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def run_backward(roots: Sequence[Tensor], grads: Sequence[np.ndarray], retain_graph: bool) -> None:
    """The backward pass over several roots at once, each seeded with its gradient."""
    order = topological_order(roots)
    pending: dict[int, np.ndarray] = {}
    owned: set[int] = set()  # buffers this pass allocated itself, so safe to add into in place
    for root, g in zip(roots, grads):
        _accumulate(pending, owned, root, g)
    anomaly = _anomaly
    for node in reversed(order):
        key = id(node)
        g = pending.pop(key, None)
        if type(g) is list:
            g = assemble(g, node.data)
            owned.add(key)
        backward = node._backward
        if backward is None:  # a leaf that requires grad
            if g is not None:
                if node.grad is None:
                    node.grad = g if key in owned else g.copy()
                else:
                    node.grad += g
            continue
        if g is not None:
            if node._retain:
                node.grad = g.copy() if node.grad is None else node.grad + g
            parent_grads = backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if anomaly:
                    _check_finite(node, pg, "backward")
                _accumulate(pending, owned, parent, pg)
        if not retain_graph:
            node._backward = RELEASED
            node._parents = ()


def _accumulate(pending: dict, owned: set, node: Tensor, g: Any) -> None:
    key = id(node)
    data = node.data
    buffer = pending.get(key)
    kind = type(g)
    if kind is SliceGrad or kind is OuterGrad:
        # Deferred: collected in a list and summed once when the node is reached.
        if buffer is None:
            pending[key] = [g]
        elif type(buffer) is list:
            buffer.append(g)
        else:
            pending[key] = [buffer, g]
        return
    if kind is not np.ndarray:  # NumPy turns 0-d results into scalars
        g = np.asarray(g)
    if g.shape != data.shape:
        g = unbroadcast(g, data.shape)
    if g.dtype != data.dtype:
        g = g.astype(data.dtype)
    if buffer is None:
        pending[key] = g
    elif type(buffer) is list:
        buffer.append(g)
    elif key in owned:
        buffer += g
    else:
        pending[key] = np.asarray(buffer + g)
        owned.add(key)


def _check_finite(node: Tensor, array: Any, phase: str) -> None:
    if type(array) is SliceGrad:
        array = array.value
    elif type(array) is OuterGrad:
        array = array.a.T @ array.g
    if not np.all(np.isfinite(array)):
        shapes = ", ".join(str(p.shape) for p in node._parents)
        raise FloatingPointError(
            f"detect_anomaly: op '{node._op}' produced a non-finite value in its {phase} "
            f"(input shapes: {shapes}; scope: {node._scope})"
        )


# ----- node construction (used by ops) ---------------------------------------------------------
def needs_grad(*tensors: Tensor) -> bool:
    """True when grad mode is on and some input requires grad: only then is a node recorded."""
    if not _grad_enabled:
        return False
    for t in tensors:
        if t.requires_grad:
            return True
    return False


_new = object.__new__


def constant(data: np.ndarray) -> Tensor:
    """Wrap an op's result that needs no graph (no input requires grad, or grad mode is off)."""
    if type(data) is not np.ndarray:  # NumPy turns 0-d results into scalars
        data = np.asarray(data)
    t = _new(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = False
    t._parents = ()
    t._backward = None
    t._op = ""
    t._scope = _scope
    t._retain = False
    t.name = None
    return t


def record(data: np.ndarray, op: str, parents: tuple, backward: Callable) -> Tensor:
    """Wrap an op's result as a graph node: ``backward(g)`` returns one gradient per parent."""
    if type(data) is not np.ndarray:
        data = np.asarray(data)
    t = _new(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = True
    t._parents = parents
    t._backward = backward
    t._op = op
    t._scope = _scope
    t._retain = False
    t.name = None
    if _anomaly:
        _check_finite(t, data, "forward")
    return t


def release(*tensors: Tensor) -> None:
    """Drop the values of intermediate tensors that no backward reads, keeping their shape and
    dtype (all the engine needs of them): a read-only zero-strided view replaces ``.data``.

    The graph's nodes are its tensors, so every intermediate would otherwise stay in memory
    until backward reaches it. Only for tensors a caller never receives, e.g. the gate
    pre-activations inside a recurrent step (still reachable by walking ``.parents``, where they
    now read as zeros). The elementary ops' backward closures capture the arrays they read, so
    releasing a tensor whose values one of them needs only drops this tensor's reference; the
    fused cells (``nn/fused.py``) read their weight and state tensors' ``.data`` at backward time,
    so those must never be released. Leaves and constants are left alone, and so are arrays
    whose buffer is under ``RELEASE_MIN_BYTES``: freeing those saves less than it costs.
    """
    for t in tensors:
        data = t.data
        buffer = data if data.base is None else data.base
        if t._backward is not None and buffer.nbytes >= RELEASE_MIN_BYTES:
            view = np.ndarray(data.shape, dtype=data.dtype, buffer=_ZERO_BYTES,
                              strides=(0,) * data.ndim)
            view.flags.writeable = False
            t.data = view


RELEASE_MIN_BYTES = 64 * 1024
_ZERO_BYTES = np.zeros(16, dtype=np.uint8)  # enough for one element of any dtype


# ----- modes ------------------------------------------------------------------------------------
class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator: no graph is recorded inside."""

    def __init__(self) -> None:
        # A stack, not one slot: a decorator re-enters the same instance on every (recursive) call.
        self._previous: list[bool] = []

    def __enter__(self) -> "no_grad":
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = False
        return self

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


class enable_grad(contextlib.ContextDecorator):
    """Turn graph recording back on inside a ``no_grad`` block."""

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> "enable_grad":
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = True
        return self

    def __exit__(self, *exc: Any) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


def is_grad_enabled() -> bool:
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
    return _scope


# ----- factories --------------------------------------------------------------------------------
def _shape_arg(shape: tuple, fn: str) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{fn}: shape must be non-negative ints, got {shape}")
    return tuple(int(n) for n in shape)


def zeros(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_arg(shape, "zeros"), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_arg(shape, "ones"), dtype=dtype), requires_grad=requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = DEFAULT_FLOAT,
         requires_grad: bool = False) -> Tensor:
    shape = _shape_arg((shape,) if isinstance(shape, (int, np.integer)) else tuple(shape), "full")
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    array = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and array.dtype.kind == "f":
        dtype = DEFAULT_FLOAT
    return Tensor(array if dtype is None else array.astype(dtype), requires_grad=requires_grad)


def randn(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    array = rng().standard_normal(_shape_arg(shape, "randn")).astype(dtype, copy=False)
    return Tensor(array, requires_grad=requires_grad)


def rand(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    array = rng().random(_shape_arg(shape, "rand")).astype(dtype, copy=False)
    return Tensor(array, requires_grad=requires_grad)


def zeros_like(t: Tensor | np.ndarray, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


def ones_like(t: Tensor | np.ndarray, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)
