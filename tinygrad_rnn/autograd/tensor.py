"""``Tensor``: a NumPy array that can record the ops applied to it, and the tensor factories.

Every method and operator of a tensor is defined in the class below, each one line that calls the
op of the same name in :mod:`tinygrad_rnn.autograd.ops` (where its forward and backward live side by
side). The graph and the backward walk are :mod:`tinygrad_rnn.autograd.engine`.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import engine
from .engine import (  # noqa: F401  (re-exported: the engine's public names, as before)
    current_scope, detect_anomaly, enable_grad, is_grad_enabled, no_grad, run_backward, scope,
    unbroadcast,
)
from ..random import rng

__all__ = [
    "DEFAULT_FLOAT", "Tensor", "arange", "full", "ones", "ones_like", "rand", "randn", "zeros",
    "zeros_like", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "scope",
]

DEFAULT_FLOAT = np.float32


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        _tracer_reads_value(data, "Tensor(tensor)")  # a copy a compiled replay could not update
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
    Comparisons (``==``, ``<``, ...) are elementwise and give boolean tensors, as in PyTorch;
    hashing stays by identity, so tensors work as set members and dict keys.
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "output_index", "scope", "name",
                 "__weakref__")
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
        self.grad_fn: engine.Node | None = None  # the node of the op that produced it (None: a leaf)
        self.output_index = 0                     # which output of that op it is (chunk has several)
        self.scope = engine.current_scope()       # the scope(...) path open when it was made
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
        return self.grad_fn is None

    @property
    def op(self) -> str:
        """Name of the op that produced this tensor ("" for leaves)."""
        return "" if self.grad_fn is None else self.grad_fn.op

    @property
    def parents(self) -> tuple:
        """The tensors this one was computed from (empty for leaves and after backward frees it)."""
        return () if self.grad_fn is None else self.grad_fn.inputs

    @property
    def retains_grad(self) -> bool:
        """True for an intermediate tensor that keeps its ``.grad`` (see :meth:`retain_grad`)."""
        node = self.grad_fn
        return node is not None and bool(node.retained) and node.retained.get(self.output_index) is self

    def numpy(self) -> np.ndarray:
        _tracer_reads_value(self, "numpy()")
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        return self._scalar("item()")

    def __float__(self) -> float:
        return float(self._scalar("float()"))

    def __int__(self) -> int:
        return int(self._scalar("int()"))

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got dtype {self.dtype}")
        return int(self._scalar("index"))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"The truth value of a tensor with more than one element is ambiguous (shape "
                f"{self.shape}); use .any() or .all() of the NumPy array, or compare elementwise"
            )
        return bool(self._scalar("bool()"))

    def _scalar(self, what: str) -> Any:
        if self.data.size != 1:
            raise ValueError(f"{what}: only one-element tensors convert to Python scalars, got shape {self.shape}")
        _tracer_reads_value(self, what)
        return self.data.reshape(()).item()

    def detach(self) -> "Tensor":
        """A new leaf sharing the data, cut from the graph (gradients stop here)."""
        return ops.detach(self)

    def retain_grad(self) -> "Tensor":
        """Keep this intermediate tensor's gradient in ``.grad`` during backward (for inspection)."""
        node = self.grad_fn
        if self.requires_grad and node is not None:
            if node.retained is None:
                node.retained = {}
            node.retained[self.output_index] = self
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: dtype {self.data.dtype} cannot require grad")
        if self.grad_fn is not None:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        _tracer_reads_value(self, "np.asarray(tensor)")
        if dtype is not None:
            return self.data.astype(dtype, copy=False)
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator["Tensor"]:
        return iter(ops.unbind(self, 0)) if self.ndim else iter(())

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, threshold=20, separator=", ",
                               prefix="Tensor(")
        extra = f", dtype={self.data.dtype}"
        if self.grad_fn is not None:
            extra += f", op={self.grad_fn.op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

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
        engine.run_backward([self], [grad], retain_graph)

    # ----- arithmetic and comparison operators (tinygrad_rnn.ops) -----------------------------
    def __add__(self, other: Any) -> "Tensor": return ops.add(self, other)
    def __radd__(self, other: Any) -> "Tensor": return ops.add(other, self)
    def __sub__(self, other: Any) -> "Tensor": return ops.sub(self, other)
    def __rsub__(self, other: Any) -> "Tensor": return ops.sub(other, self)
    def __mul__(self, other: Any) -> "Tensor": return ops.mul(self, other)
    def __rmul__(self, other: Any) -> "Tensor": return ops.mul(other, self)
    def __truediv__(self, other: Any) -> "Tensor": return ops.div(self, other)
    def __rtruediv__(self, other: Any) -> "Tensor": return ops.div(other, self)
    def __pow__(self, exponent: Any) -> "Tensor": return ops.pow(self, exponent)
    def __rpow__(self, base: Any) -> "Tensor": return ops.pow(base, self)
    def __matmul__(self, other: Any) -> "Tensor": return ops.matmul(self, other)
    def __rmatmul__(self, other: Any) -> "Tensor": return ops.matmul(other, self)
    def __neg__(self) -> "Tensor": return ops.neg(self)
    def __getitem__(self, index: Any) -> "Tensor": return ops.getitem(self, index)
    def __eq__(self, other: Any) -> "Tensor": return ops.eq(self, other)  # type: ignore[override]
    def __ne__(self, other: Any) -> "Tensor": return ops.ne(self, other)  # type: ignore[override]
    def __lt__(self, other: Any) -> "Tensor": return ops.lt(self, other)
    def __le__(self, other: Any) -> "Tensor": return ops.le(self, other)
    def __gt__(self, other: Any) -> "Tensor": return ops.gt(self, other)
    def __ge__(self, other: Any) -> "Tensor": return ops.ge(self, other)

    # ----- ops as methods (tinygrad_rnn.ops) --------------------------------------------------
    def add(self, other: Any) -> "Tensor": return ops.add(self, other)
    def sub(self, other: Any) -> "Tensor": return ops.sub(self, other)
    def mul(self, other: Any) -> "Tensor": return ops.mul(self, other)
    def div(self, other: Any) -> "Tensor": return ops.div(self, other)
    def neg(self) -> "Tensor": return ops.neg(self)
    def pow(self, exponent: Any) -> "Tensor": return ops.pow(self, exponent)
    def matmul(self, other: Any) -> "Tensor": return ops.matmul(self, other)
    def addmm(self, a: Any, b: Any) -> "Tensor": return ops.addmm(self, a, b)
    def exp(self) -> "Tensor": return ops.exp(self)
    def log(self) -> "Tensor": return ops.log(self)
    def tanh(self) -> "Tensor": return ops.tanh(self)
    def sigmoid(self) -> "Tensor": return ops.sigmoid(self)
    def relu(self) -> "Tensor": return ops.relu(self)
    def abs(self) -> "Tensor": return ops.abs(self)
    def clip(self, lo: float | None = None, hi: float | None = None) -> "Tensor": return ops.clip(self, lo, hi)
    def maximum(self, other: Any) -> "Tensor": return ops.maximum(self, other)
    def minimum(self, other: Any) -> "Tensor": return ops.minimum(self, other)
    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor": return ops.sum(self, axis, keepdims)
    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor": return ops.mean(self, axis, keepdims)
    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor": return ops.max(self, axis, keepdims)
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> "Tensor": return ops.argmax(self, axis, keepdims)
    def argmin(self, axis: int | None = None, keepdims: bool = False) -> "Tensor": return ops.argmin(self, axis, keepdims)
    def logsumexp(self, axis: int = -1, keepdims: bool = False) -> "Tensor": return ops.logsumexp(self, axis, keepdims)
    def softmax(self, axis: int = -1) -> "Tensor": return ops.softmax(self, axis)
    def log_softmax(self, axis: int = -1) -> "Tensor": return ops.log_softmax(self, axis)
    def reshape(self, *shape: Any) -> "Tensor": return ops.reshape(self, *shape)
    def permute(self, *dims: Any) -> "Tensor": return ops.permute(self, *dims)
    def transpose(self, dim0: int = -2, dim1: int = -1) -> "Tensor": return ops.transpose(self, dim0, dim1)
    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor": return ops.flatten(self, start_dim, end_dim)
    def squeeze(self, axis: Any = None) -> "Tensor": return ops.squeeze(self, axis)
    def unsqueeze(self, axis: int) -> "Tensor": return ops.unsqueeze(self, axis)
    def split(self, split_size_or_sections: Any, axis: int = 0) -> tuple: return ops.split(self, split_size_or_sections, axis)
    def chunk(self, chunks: int, axis: int = 0) -> tuple: return ops.chunk(self, chunks, axis)
    def unbind(self, axis: int = 0) -> tuple: return ops.unbind(self, axis)
    def astype(self, dtype: Any) -> "Tensor": return ops.astype(self, dtype)

    @property
    def T(self) -> "Tensor":
        """All axes reversed (for a matrix, the transpose)."""
        return ops.T(self)


def _tracer_reads_value(t: Tensor, what: str) -> None:
    """Inside ``tinygrad_rnn.compile``'s trace, reading a traced value into Python is an error."""
    tracer = engine.get_tracer()
    if tracer is not None:
        tracer.on_value_read(t, what)


engine.register_tensor_class(Tensor)


# ----- factories --------------------------------------------------------------------------------
def _shape_arg(shape: tuple, fn: str) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{fn}: shape must be non-negative ints, got {shape}")
    return tuple(int(n) for n in shape)


def zeros(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given shape (``zeros(2, 3)`` or ``zeros((2, 3))``), float32 unless ``dtype``."""
    return Tensor(np.zeros(_shape_arg(shape, "zeros"), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given shape (``ones(2, 3)`` or ``ones((2, 3))``), float32 unless ``dtype``."""
    return Tensor(np.ones(_shape_arg(shape, "ones"), dtype=dtype), requires_grad=requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = DEFAULT_FLOAT,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``, float32 unless ``dtype``."""
    shape = _shape_arg((shape,) if isinstance(shape, (int, np.integer)) else tuple(shape), "full")
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in ``[start, stop)`` with ``step``, as ``np.arange``; floats default to float32."""
    array = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and array.dtype.kind == "f":
        dtype = DEFAULT_FLOAT
    return Tensor(array if dtype is None else array.astype(dtype), requires_grad=requires_grad)


def randn(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """Standard normal samples, N(0, 1), from the library's generator (``manual_seed``)."""
    array = rng().standard_normal(_shape_arg(shape, "randn")).astype(dtype, copy=False)
    return Tensor(array, requires_grad=requires_grad)


def rand(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the library's generator (``manual_seed``)."""
    array = rng().random(_shape_arg(shape, "rand")).astype(dtype, copy=False)
    return Tensor(array, requires_grad=requires_grad)


def zeros_like(t: Tensor | np.ndarray, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and dtype, unless ``dtype``) of ``t``."""
    return Tensor(np.zeros_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


def ones_like(t: Tensor | np.ndarray, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and dtype, unless ``dtype``) of ``t``."""
    return Tensor(np.ones_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


from . import ops  # noqa: E402  (the ops import Tensor from this module; bound last to break the cycle)
