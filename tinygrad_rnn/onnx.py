"""ONNX export: the models this library builds, as ONNX graphs that ONNX Runtime can serve.

``export(model, example_inputs, path)`` runs ``model(*example_inputs)`` once in eval mode with
*traced* values in place of the inputs. The layers the exporter knows (``Linear``, ``Embedding``,
``Dropout``, ``RNN``/``LSTM``/``GRU``) emit ONNX nodes instead of computing; any other module
(``Sequential``, ``CharLM``, your own ``Module``) runs its ordinary ``forward`` on the traced
values, which support the Tensor methods listed in ``Traced``. Anything else is an
:class:`OnnxExportError` naming the layer or the operation.

A recurrent layer becomes one ONNX ``LSTM``/``GRU``/``RNN`` node per layer (both directions in
one node). ONNX stacks the gate blocks in another order than PyTorch (and this library):

    LSTM  PyTorch [i f g o]  ->  ONNX [i o f c]   (blocks 0, 3, 1, 2)
    GRU   PyTorch [r z n]    ->  ONNX [z r h]     (blocks 1, 0, 2), linear_before_reset=1
    RNN   one block, unchanged

and wants ``W (D, G*H, I)``, ``R (D, G*H, H)``, ``B (D, 2*G*H) = [b_ih, b_hh]``. The node's
``Y (T, D, N, H)`` becomes PyTorch's ``(T, N, D*H)`` by a transpose and a reshape. ``lengths``
becomes ONNX's ``sequence_lens`` (the same packed-sequence semantics).

Needs the ``onnx`` extra (``pip install "tinygrad_rnn[onnx]"``); ``onnxruntime`` is only needed to
run the exported file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .nn import GRU, LSTM, RNN, Dropout, Embedding, GRUCell, Linear, LSTMCell, Module, Recurrent, RNNCell
from .autograd.tensor import Tensor, no_grad

__all__ = ["DEFAULT_OPSET", "OnnxExportError", "Traced", "export", "export_checkpoint", "require_onnx"]

#: ONNX opset written by default: every operator used here has had its current form since 14.
DEFAULT_OPSET = 17
MIN_OPSET = 14

# PyTorch gate blocks -> ONNX gate blocks (see the module docstring).
GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}
UNSUPPORTED_LAYERS = (RNNCell, LSTMCell, GRUCell, Recurrent)
SUPPORTED = "Linear, Embedding, Dropout, RNN, LSTM, GRU, and modules composed of them"


class OnnxExportError(ValueError):
    """The model (a layer, an operation or an argument) cannot be expressed in the ONNX graph."""


class UnsupportedAttribute(OnnxExportError, AttributeError):
    """A Tensor attribute the traced values do not have (also an AttributeError, so that
    ``hasattr``/``getattr(x, name, default)`` behave as usual)."""


def require_onnx() -> Any:
    """Import the ``onnx`` package, or explain how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("tinygrad_rnn.onnx needs the 'onnx' package: pip install \"tinygrad_rnn[onnx]\" "
                          "(it also installs onnxruntime, to run the exported file)") from None
    return onnx


# ----- the graph under construction ------------------------------------------------------------------
class GraphBuilder:
    """Nodes, initializers and unique value names of one ONNX graph."""

    def __init__(self, onnx: Any, param_names: Mapping[int, str]):
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: dict[str, np.ndarray] = {}
        self.param_names = param_names  # id(Parameter) -> qualified state_dict name
        self.counter = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    def node(self, op_type: str, inputs: Sequence[str], outputs: int | Sequence[str] = 1, **attrs: Any) -> list[str]:
        names = [self.fresh(op_type) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, name=self.fresh(f"n_{op_type}"),
                                                     **attrs))
        return names

    def initializer(self, array: np.ndarray, name: str | None = None, hint: str = "const") -> str:
        name = name or self.fresh(hint)
        self.initializers[name] = np.array(array, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        return name

    def ints(self, values: Sequence[int], hint: str = "ints") -> str:
        return self.initializer(np.asarray(values, dtype=np.int64), hint=hint)

    def param(self, tensor: Tensor, hint: str = "param") -> str:
        """A model parameter under its state_dict name (once), any other tensor as a constant."""
        name = self.param_names.get(id(tensor))
        if name is not None:
            if name not in self.initializers:
                self.initializers[name] = np.array(tensor.data, order="C")
            return name
        return self.initializer(np.asarray(tensor.data), hint=hint)


def _broadcast(a: tuple, b: tuple) -> tuple:
    """NumPy broadcasting of shapes whose entries are ints, dim names (str) or None (unknown)."""
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif isinstance(x, int) and isinstance(y, int):
            raise OnnxExportError(f"ONNX export: shapes {a} and {b} do not broadcast")
        else:
            out.append(x if isinstance(x, int) else y if isinstance(y, int) else None)
    return tuple(reversed(out))


class Traced:
    """A value of the graph being built, standing in for a Tensor while the model's forward runs.

    Supported: ``shape``, ``ndim``, ``dtype``, ``+ - * /`` and unary ``-`` with scalars, arrays,
    Tensors and other traced values, ``@``, indexing with ints, slices, ``None`` and ``...``,
    ``tanh``, ``sigmoid``, ``relu``, ``exp``, ``log``, ``softmax(axis)``, ``log_softmax(axis)``,
    ``reshape``, ``transpose``, ``permute``, ``unsqueeze``, ``squeeze(axis)``. Dimensions are ints,
    names of dynamic axes, or None where the exporter does not know them.
    """

    __slots__ = ("graph", "name", "shape", "dtype")

    def __init__(self, graph: GraphBuilder, name: str, shape: Sequence[Any], dtype: Any):
        self.graph, self.name, self.shape, self.dtype = graph, name, tuple(shape), np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Traced({self.name}, shape={self.shape}, dtype={self.dtype})"

    def derived(self, name: str, shape: Sequence[Any], dtype: Any = None) -> "Traced":
        return Traced(self.graph, name, shape, self.dtype if dtype is None else dtype)

    def unary(self, op_type: str, **attrs: Any) -> "Traced":
        (out,) = self.graph.node(op_type, [self.name], **attrs)
        return self.derived(out, self.shape)

    # ----- activations and elementwise maths --------------------------------------------------------
    def tanh(self) -> "Traced":
        return self.unary("Tanh")

    def sigmoid(self) -> "Traced":
        return self.unary("Sigmoid")

    def relu(self) -> "Traced":
        return self.unary("Relu")

    def exp(self) -> "Traced":
        return self.unary("Exp")

    def log(self) -> "Traced":
        return self.unary("Log")

    def softmax(self, axis: int = -1) -> "Traced":
        return self.unary("Softmax", axis=int(axis))

    def log_softmax(self, axis: int = -1) -> "Traced":
        return self.unary("LogSoftmax", axis=int(axis))

    def __neg__(self) -> "Traced":
        return self.unary("Neg")

    def operand(self, other: Any, op: str) -> "Traced":
        """Another operand of a binary op as a traced value (constants become initializers)."""
        if isinstance(other, Traced):
            value = other
        elif isinstance(other, (bool, np.bool_)):
            raise OnnxExportError(f"ONNX export: '{op}' with a bool operand is not supported")
        elif isinstance(other, (int, float, np.integer, np.floating)):
            value = self.derived(self.graph.initializer(np.asarray(other, dtype=self.dtype)), ())
        elif isinstance(other, (Tensor, np.ndarray)):
            array = np.asarray(other.data if isinstance(other, Tensor) else other)
            name = self.graph.param(other) if isinstance(other, Tensor) else self.graph.initializer(array)
            value = self.derived(name, array.shape, array.dtype)
        else:
            raise OnnxExportError(f"ONNX export: '{op}' with a {type(other).__name__} operand is not supported")
        if value.dtype != self.dtype:
            raise OnnxExportError(f"ONNX export: '{op}' mixes dtypes {self.dtype} and {value.dtype}")
        return value

    def binary(self, op_type: str, other: Any, symbol: str, reverse: bool = False) -> "Traced":
        other = self.operand(other, symbol)
        a, b = (other, self) if reverse else (self, other)
        (out,) = self.graph.node(op_type, [a.name, b.name])
        return self.derived(out, _broadcast(a.shape, b.shape))

    def __add__(self, other: Any) -> "Traced":
        return self.binary("Add", other, "+")

    def __radd__(self, other: Any) -> "Traced":
        return self.binary("Add", other, "+", reverse=True)

    def __sub__(self, other: Any) -> "Traced":
        return self.binary("Sub", other, "-")

    def __rsub__(self, other: Any) -> "Traced":
        return self.binary("Sub", other, "-", reverse=True)

    def __mul__(self, other: Any) -> "Traced":
        return self.binary("Mul", other, "*")

    def __rmul__(self, other: Any) -> "Traced":
        return self.binary("Mul", other, "*", reverse=True)

    def __truediv__(self, other: Any) -> "Traced":
        return self.binary("Div", other, "/")

    def __rtruediv__(self, other: Any) -> "Traced":
        return self.binary("Div", other, "/", reverse=True)

    def matmul(self, other: Any, reverse: bool = False) -> "Traced":
        other = self.operand(other, "@")
        a, b = (other, self) if reverse else (self, other)
        if a.ndim < 2 or b.ndim < 2:
            raise OnnxExportError(f"ONNX export: '@' needs operands of at least 2 dimensions, got {a.shape} and {b.shape}")
        if isinstance(a.shape[-1], int) and isinstance(b.shape[-2], int) and a.shape[-1] != b.shape[-2]:
            raise OnnxExportError(f"ONNX export: '@' of shapes {a.shape} and {b.shape}: inner sizes differ")
        (out,) = self.graph.node("MatMul", [a.name, b.name])
        batch = _broadcast(a.shape[:-2], b.shape[:-2])
        return self.derived(out, (*batch, a.shape[-2], b.shape[-1]))

    def __matmul__(self, other: Any) -> "Traced":
        return self.matmul(other)

    def __rmatmul__(self, other: Any) -> "Traced":
        return self.matmul(other, reverse=True)

    # ----- shapes ---------------------------------------------------------------------------------
    def axis(self, axis: int, ndim: int | None = None) -> int:
        ndim = self.ndim if ndim is None else ndim
        if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
            raise OnnxExportError(f"ONNX export: axis {axis!r} is out of range for shape {self.shape}")
        return int(axis) % ndim

    def reshape(self, *shape: Any) -> "Traced":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if not all(isinstance(s, (int, np.integer)) for s in shape) or 0 in shape:
            raise OnnxExportError(f"ONNX export: reshape needs nonzero int sizes, got {shape}")
        (out,) = self.graph.node("Reshape", [self.name, self.graph.ints(shape, "shape")])
        known = [int(s) for s in shape]
        if -1 in known and all(isinstance(s, int) for s in self.shape):
            rest = int(np.prod([s for s in known if s != -1]))
            known[known.index(-1)] = int(np.prod(self.shape)) // rest
        return self.derived(out, [None if s == -1 else s for s in known])

    def permute(self, *dims: Any) -> "Traced":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        perm = [self.axis(d) for d in dims]
        if sorted(perm) != list(range(self.ndim)):
            raise OnnxExportError(f"ONNX export: permute({dims}) is not a permutation of {self.ndim} axes")
        (out,) = self.graph.node("Transpose", [self.name], perm=perm)
        return self.derived(out, [self.shape[p] for p in perm])

    def transpose(self, dim0: int = -2, dim1: int = -1) -> "Traced":
        perm = list(range(self.ndim))
        a, b = self.axis(dim0), self.axis(dim1)
        perm[a], perm[b] = perm[b], perm[a]
        return self.permute(*perm)

    @property
    def T(self) -> "Traced":  # noqa: N802 - Tensor's name
        return self.permute(*reversed(range(self.ndim)))

    def unsqueeze(self, axis: int) -> "Traced":
        axis = self.axis(axis, self.ndim + 1)
        (out,) = self.graph.node("Unsqueeze", [self.name, self.graph.ints([axis], "axes")])
        return self.derived(out, (*self.shape[:axis], 1, *self.shape[axis:]))

    def squeeze(self, axis: int) -> "Traced":
        axis = self.axis(axis)
        if isinstance(self.shape[axis], int) and self.shape[axis] != 1:
            raise OnnxExportError(f"ONNX export: cannot squeeze axis {axis} of shape {self.shape}")
        (out,) = self.graph.node("Squeeze", [self.name, self.graph.ints([axis], "axes")])
        return self.derived(out, self.shape[:axis] + self.shape[axis + 1:])

    def __getitem__(self, index: Any) -> "Traced":
        index = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis for i in index):
            if sum(i is Ellipsis for i in index) > 1:
                raise OnnxExportError("ONNX export: an index may hold one '...'")
            at = next(k for k, i in enumerate(index) if i is Ellipsis)
            used = sum(1 for i in index if i is not None and i is not Ellipsis)
            index = index[:at] + (slice(None),) * (self.ndim - used) + index[at + 1:]
        if sum(1 for i in index if i is not None) > self.ndim:
            raise OnnxExportError(f"ONNX export: too many indices {index} for shape {self.shape}")
        value, axis = self, 0
        for item in index:
            if item is None:
                value = value.unsqueeze(axis)
                axis += 1
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                size = value.shape[axis]
                if isinstance(size, int) and not -size <= item < size:
                    raise OnnxExportError(f"ONNX export: index {item} is out of range for axis {axis} of {value.shape}")
                scalar = value.graph.initializer(np.asarray(item, dtype=np.int64), hint="index")
                (out,) = value.graph.node("Gather", [value.name, scalar], axis=axis)
                value = value.derived(out, value.shape[:axis] + value.shape[axis + 1:])
            elif isinstance(item, slice):
                value = value.sliced(axis, item)
                axis += 1
            else:
                raise OnnxExportError(f"ONNX export: indexing with {type(item).__name__} is not supported "
                                      "(ints, slices, None and ... are)")
        return value

    def sliced(self, axis: int, item: slice) -> "Traced":
        if item == slice(None):
            return self
        step = 1 if item.step is None else int(item.step)
        if step == 0:
            raise OnnxExportError("ONNX export: slice step cannot be zero")
        big = np.iinfo(np.int64).max
        start = item.start if item.start is not None else (0 if step > 0 else -1)
        stop = item.stop if item.stop is not None else (big if step > 0 else -big)
        size = self.shape[axis]
        new = len(range(size)[item]) if isinstance(size, int) else None
        g = self.graph
        (out,) = g.node("Slice", [self.name, g.ints([start]), g.ints([stop]), g.ints([axis]), g.ints([step])])
        return self.derived(out, self.shape[:axis] + (new,) + self.shape[axis + 1:])

    # ----- what cannot be traced ------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle/NumPy protocol probes
            raise AttributeError(name)
        raise UnsupportedAttribute(f"ONNX export: Tensor.{name} is not supported on traced values "
                              f"(see tinygrad_rnn.onnx.Traced for what is)")

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise OnnxExportError("ONNX export: the model's forward converts a traced value to a NumPy array; "
                              "its values are not known while exporting")

    def __bool__(self) -> bool:
        raise OnnxExportError("ONNX export: the model's forward branches on a tensor's value "
                              "(data-dependent control flow cannot be exported)")

    def __len__(self) -> int:
        if isinstance(self.shape[0], int):
            return self.shape[0]
        raise OnnxExportError("ONNX export: len() of a dynamic axis is not known while exporting")

    def __iter__(self):
        raise OnnxExportError("ONNX export: iterating over a tensor is not supported (index it instead)")


# ----- the layers ---------------------------------------------------------------------------------
def _expect_traced(value: Any, layer: str, what: str = "input") -> Traced:
    if not isinstance(value, Traced):
        raise OnnxExportError(f"ONNX export: {layer} {what} must come from the model's inputs, "
                              f"got {type(value).__name__}")
    return value


def _linear(m: Linear, path: str, x: Any) -> Traced:
    x = _expect_traced(x, f"Linear '{path}'")
    if x.ndim == 0 or (isinstance(x.shape[-1], int) and x.shape[-1] != m.in_features):
        raise OnnxExportError(f"ONNX export: Linear '{path}' expects {m.in_features} input features, got shape {x.shape}")
    if x.dtype != m.weight.dtype:
        raise OnnxExportError(f"ONNX export: Linear '{path}' input dtype {x.dtype} differs from its weights' {m.weight.dtype}")
    g = x.graph
    w = g.param(m.weight)
    shape = (*x.shape[:-1], m.out_features)
    if x.ndim == 2:  # Gemm computes x Wᵀ + b in one node
        inputs = [x.name, w] + ([g.param(m.bias)] if m.bias is not None else [])
        (out,) = g.node("Gemm", inputs, transB=1)
        return x.derived(out, shape)
    (wt,) = g.node("Transpose", [w], perm=[1, 0])
    (out,) = g.node("MatMul", [x.name, wt])
    if m.bias is not None:
        (out,) = g.node("Add", [out, g.param(m.bias)])
    return x.derived(out, shape)


def _embedding(m: Embedding, path: str, indices: Any) -> Traced:
    idx = _expect_traced(indices, f"Embedding '{path}'", "indices")
    if idx.dtype.kind not in "iu":
        raise OnnxExportError(f"ONNX export: Embedding '{path}' needs integer indices, got dtype {idx.dtype}")
    g = idx.graph
    (out,) = g.node("Gather", [g.param(m.weight), idx.name], axis=0)
    return idx.derived(out, (*idx.shape, m.embedding_dim), m.weight.dtype)


def _dropout(m: Dropout, path: str, x: Any) -> Any:
    return x  # exported in eval mode, where dropout is the identity


def _state_input(value: Any, g: GraphBuilder, layer: str, what: str, dtype: np.dtype, batched: bool) -> Traced | None:
    if value is None:
        return None
    if isinstance(value, (Tensor, np.ndarray)):  # a constant initial state
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        value = Traced(g, g.initializer(array, hint=what), array.shape, array.dtype)
    value = _expect_traced(value, layer, what)
    if value.dtype != dtype:
        raise OnnxExportError(f"ONNX export: {layer} {what} dtype {value.dtype} differs from the parameters' {dtype}")
    if value.ndim != (3 if batched else 2):
        raise OnnxExportError(f"ONNX export: {layer} {what} must have {3 if batched else 2} dimensions, got {value.shape}")
    return value if batched else value.unsqueeze(1)


def _stacked(m: Module, layer: int, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """ONNX's W (D, G*H, I), R (D, G*H, H) and B (D, 2*G*H) for one layer, gates reordered."""
    h = m.hidden_size
    order = GATE_ORDER[kind]

    def reorder(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[k * h:(k + 1) * h] for k in order], axis=0)

    suffixes = ("", "_reverse") if m.bidirectional else ("",)
    get = lambda name, sfx: getattr(m, f"{name}_l{layer}{sfx}").data  # noqa: E731
    w = np.stack([reorder(get("weight_ih", s)) for s in suffixes])
    r = np.stack([reorder(get("weight_hh", s)) for s in suffixes])
    b = None
    if m.bias:
        b = np.stack([np.concatenate([reorder(get("bias_ih", s)), reorder(get("bias_hh", s))]) for s in suffixes])
    return w, r, b


def _recurrent(m: Module, path: str, x: Any, hx: Any = None, lengths: Any = None) -> tuple:
    kind = "LSTM" if isinstance(m, LSTM) else "GRU" if isinstance(m, GRU) else "RNN"
    layer = f"{kind} '{path}'"
    if getattr(m, "proj_size", 0):
        raise OnnxExportError(f"ONNX export: {layer} has proj_size={m.proj_size}; ONNX's LSTM operator has no "
                              "projection, so LSTM(proj_size>0) is not supported")
    x = _expect_traced(x, layer)
    dtype = m.weight_ih_l0.dtype
    if x.ndim not in (2, 3):
        raise OnnxExportError(f"ONNX export: {layer} expects a 2-D or 3-D input, got shape {x.shape}")
    if isinstance(x.shape[-1], int) and x.shape[-1] != m.input_size:
        raise OnnxExportError(f"ONNX export: {layer} expects {m.input_size} input features, got shape {x.shape}")
    if x.dtype != dtype:
        raise OnnxExportError(f"ONNX export: {layer} input dtype {x.dtype} differs from the parameters' {dtype}")
    if dtype != np.float32:  # the ONNX standard allows double; ONNX Runtime's kernels do not
        raise OnnxExportError(f"ONNX export: {layer} has {dtype} parameters, but ONNX Runtime runs LSTM/GRU/RNN "
                              "in float32 only; export a float32 copy (model.float())")
    g = x.graph
    batched = x.ndim == 3
    seq = x if not batched else x.transpose(0, 1) if m.batch_first else x
    if not batched:
        seq = seq.unsqueeze(1)
    steps, batch = seq.shape[0], seq.shape[1]
    if kind == "LSTM":
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise OnnxExportError(f"ONNX export: {layer} hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
        h0, c0 = hx if hx is not None else (None, None)
        c0 = _state_input(c0, g, layer, "c_0", dtype, batched)
    else:
        h0, c0 = hx, None
    h0 = _state_input(h0, g, layer, "h_0" if kind == "LSTM" else "hx", dtype, batched)
    seq_lens = ""
    if lengths is not None:
        if isinstance(lengths, (Tensor, np.ndarray, list, tuple)):
            array = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
            if array.dtype.kind not in "iu" or array.ndim != 1:
                raise OnnxExportError(f"ONNX export: {layer} lengths must be a 1-D sequence of ints, got {array!r}")
            seq_lens = g.initializer(array.astype(np.int32), hint="sequence_lens")
        else:
            lengths = _expect_traced(lengths, layer, "lengths")
            if lengths.dtype.kind not in "iu" or lengths.ndim != 1:
                raise OnnxExportError(f"ONNX export: {layer} lengths must be a 1-D integer input, got {lengths}")
            (seq_lens,) = g.node("Cast", [lengths.name], to=g.onnx.TensorProto.INT32)

    d, h = m.num_directions, m.hidden_size
    attrs: dict[str, Any] = dict(hidden_size=h, direction="bidirectional" if d == 2 else "forward")
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # PyTorch's GRU: b_hn inside the reset product
    if kind == "RNN":
        if m.nonlinearity not in ("tanh", "relu", "sigmoid"):
            raise OnnxExportError(f"ONNX export: {layer} has a callable nonlinearity; only 'tanh', 'relu' and "
                                  "'sigmoid' have an ONNX RNN activation")
        attrs["activations"] = [{"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}[m.nonlinearity]] * d

    def states_of(layer_index: int, state: Traced | None) -> str:
        if state is None:
            return ""
        if m.num_layers == 1:
            return state.name
        start = layer_index * d
        (out,) = g.node("Slice", [state.name, g.ints([start]), g.ints([start + d]), g.ints([0])])
        return out

    layer_input, finals_h, finals_c = seq, [], []
    for k in range(m.num_layers):
        w, r, b = _stacked(m, k, kind)
        inputs = [layer_input.name, g.initializer(w, f"{path}.W_l{k}" if path else f"W_l{k}"),
                  g.initializer(r, f"{path}.R_l{k}" if path else f"R_l{k}"),
                  g.initializer(b, f"{path}.B_l{k}" if path else f"B_l{k}") if b is not None else "",
                  seq_lens, states_of(k, h0)]
        if kind == "LSTM":
            inputs.append(states_of(k, c0))
        while inputs and inputs[-1] == "":  # optional inputs left out at the end
            inputs.pop()
        outs = g.node(kind, inputs, 3 if kind == "LSTM" else 2, **attrs)
        y = layer_input.derived(outs[0], (steps, d, batch, h))  # (T, D, N, H)
        if d == 1:
            y = y.squeeze(1)
        else:
            y = y.permute(0, 2, 1, 3)
            (flat,) = g.node("Reshape", [y.name, g.ints([0, 0, -1], "shape")])
            y = y.derived(flat, (steps, batch, d * h))
        layer_input = y
        finals_h.append(outs[1])
        if kind == "LSTM":
            finals_c.append(outs[2])

    def final(names: list[str]) -> Traced:
        if len(names) > 1:
            (name,) = g.node("Concat", names, axis=0)
        else:
            name = names[0]
        state = seq.derived(name, (d * m.num_layers, batch, h))
        return state if batched else state.squeeze(1)

    output = layer_input
    if not batched:
        output = output.squeeze(1)
    elif m.batch_first:
        output = output.transpose(0, 1)
    if kind == "LSTM":
        return output, (final(finals_h), final(finals_c))
    return output, final(finals_h)


EMITTERS: dict[type, Callable] = {Linear: _linear, Embedding: _embedding, Dropout: _dropout,
                                  RNN: _recurrent, LSTM: _recurrent, GRU: _recurrent}


def _emitter_for(module: Module) -> Callable | None:
    for cls in type(module).__mro__:
        if cls in EMITTERS:
            return EMITTERS[cls]
    return None


# ----- export ---------------------------------------------------------------------------------------
def _flatten(value: Any, where: str) -> list:
    """The leaves (arrays, Tensors, None) of nested tuples/lists, in order."""
    if isinstance(value, (tuple, list)):
        return [leaf for i, v in enumerate(value) for leaf in _flatten(v, f"{where}[{i}]")]
    if value is None or isinstance(value, (np.ndarray, Tensor, Traced)):
        return [value]
    raise TypeError(f"export: {where} must be an np.ndarray, a Tensor, None or a tuple of them, "
                    f"got {type(value).__name__}")


def _rebuild(value: Any, leaves: list) -> Any:
    """``value``'s nesting with its leaves taken from ``leaves`` (consumed in order)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_rebuild(v, leaves) for v in value)
    return leaves.pop(0)


def _auto_dynamic_axes(array: np.ndarray) -> list[int]:
    """Default dynamic axes: every axis of an integer input (ids: batch, time), every axis but the
    last (the feature or hidden size, fixed by the weights) of a floating one."""
    return list(range(array.ndim)) if array.dtype.kind in "iub" else list(range(array.ndim - 1))


def _axes_spec(spec: Any, ndim: int, name: str) -> dict[int, str]:
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, (list, tuple)):
        items = [(axis, None) for axis in spec]
    else:
        raise TypeError(f"export: dynamic_axes['{name}'] must be a dict {{axis: name}} or a list of axes, "
                        f"got {type(spec).__name__}")
    out = {}
    for axis, label in items:
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -ndim <= axis < ndim:
            raise ValueError(f"export: dynamic_axes['{name}'] names axis {axis!r}, but '{name}' has {ndim} axes")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"export: dynamic_axes['{name}'][{axis}] must be a str name, got {type(label).__name__}")
        out[int(axis) % ndim] = label or f"{name}_dim{int(axis) % ndim}"
    return out


def _names(given: Sequence[str] | None, count: int, prefix: str, argument: str) -> list[str]:
    if given is None:
        return [f"{prefix}_{i}" for i in range(count)]
    given = list(given)
    if len(given) != count or not all(isinstance(n, str) and n for n in given):
        raise ValueError(f"export: {argument} must be {count} non-empty strings (one per "
                         f"{'input array' if prefix == 'input' else 'output'}), got {given!r}")
    if len(set(given)) != count:
        raise ValueError(f"export: {argument} must be distinct, got {given!r}")
    return given


def _write_atomic(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(model: Module, example_inputs: Any, path: str | os.PathLike | None = None, *,
           dynamic_axes: Mapping[str, Any] | None = None, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, opset_version: int = DEFAULT_OPSET,
           metadata: Mapping[str, Any] | None = None) -> Any:
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the ``onnx.ModelProto``.

    ``example_inputs`` is what the model is called with (``model(*example_inputs)``; a single
    array or Tensor means one argument): arrays or Tensors, ``None`` (e.g. a zero initial state)
    and nested tuples of them (``(x, (h_0, c_0))``). Each array becomes one graph input, named by
    ``input_names`` (default ``input_0, input_1, ...``); the model's outputs (flattened the same
    way) are named by ``output_names`` (default ``output_0, ...``). The example values only give
    shapes and dtypes: nothing is computed.

    ``dynamic_axes`` maps input/output names to the axes of variable size, as a list of axes or
    ``{axis: "name"}``; axes not listed are fixed to the example's sizes. Without it, every axis of
    integer inputs and every axis but the last of floating inputs is dynamic (so batch and
    sequence length are free, features fixed). The model is traced in eval mode (dropout off) and
    its training flags are restored afterwards. ``metadata`` (JSON-serialisable values) is stored
    in the model's ``metadata_props``.
    """
    onnx = require_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"export: model must be a tinygrad_rnn Module, got {type(model).__name__}")
    if not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= onnx.defs.onnx_opset_version():
        raise ValueError(f"export: opset_version must be an int in [{MIN_OPSET}, {onnx.defs.onnx_opset_version()}], "
                         f"got {opset_version!r}")
    args = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    args = tuple(args)
    leaves = _flatten(args, "example_inputs")
    arrays = [None if v is None else np.asarray(v.data if isinstance(v, Tensor) else v) for v in leaves]
    names = _names(input_names, sum(a is not None for a in arrays), "input", "input_names")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"export: metadata must be a dict, got {type(metadata).__name__}")
    dynamic_axes = dict(dynamic_axes) if dynamic_axes is not None else None
    for key in dynamic_axes or {}:
        if not isinstance(key, str):
            raise TypeError(f"export: dynamic_axes keys must be input/output names, got {key!r}")

    params = {id(p): name for name, p in model.named_parameters()}
    g = GraphBuilder(onnx, params)
    graph_inputs, traced_leaves, it = [], [], iter(names)
    for array in arrays:
        if array is None:
            traced_leaves.append(None)
            continue
        if array.dtype.kind not in "iuf" or array.dtype.itemsize < 4 and array.dtype.kind == "f":
            raise TypeError(f"export: example inputs must be int or float32/float64 arrays, got dtype {array.dtype}")
        name = next(it)
        if dynamic_axes is None:
            axes = {a: f"{name}_dim{a}" for a in _auto_dynamic_axes(array)}
        else:
            axes = _axes_spec(dynamic_axes.get(name, {}), array.ndim, name)
        shape = tuple(axes.get(a, int(n)) for a, n in enumerate(array.shape))
        graph_inputs.append((name, array.dtype, shape))
        traced_leaves.append(Traced(g, name, shape, array.dtype))
    traced_args = _rebuild(args, traced_leaves)

    outputs = _trace(model, traced_args)
    out_leaves = _flatten(outputs, "the model's output")
    if not out_leaves or not all(isinstance(v, Traced) for v in out_leaves):
        kinds = [type(v).__name__ for v in out_leaves]
        raise OnnxExportError(f"ONNX export: the model must return values computed from its inputs, got {kinds}")
    out_names = _names(output_names, len(out_leaves), "output", "output_names")
    unknown = set(dynamic_axes or {}) - set(names) - set(out_names)
    if unknown:
        raise ValueError(f"export: dynamic_axes names {sorted(unknown)}, which are neither inputs {names} "
                         f"nor outputs {out_names}")
    for value, name in zip(out_leaves, out_names):
        g.node("Identity", [value.name], [name])

    helper = onnx.helper

    def value_info(name: str, dtype: np.dtype, shape: Sequence[Any], rename: Mapping[int, str]) -> Any:
        dims = [rename.get(a, s) for a, s in enumerate(shape)]
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), dims)

    out_infos = []
    for value, name in zip(out_leaves, out_names):
        rename = _axes_spec(dynamic_axes[name], value.ndim, name) if dynamic_axes and name in dynamic_axes else {}
        out_infos.append(value_info(name, value.dtype, value.shape, rename))
    graph = helper.make_graph(
        g.nodes, type(model).__name__, [value_info(n, d, s, {}) for n, d, s in graph_inputs], out_infos,
        initializer=[onnx.numpy_helper.from_array(a, name) for name, a in g.initializers.items()])
    opsets = [helper.make_opsetid("", opset_version)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="tinygrad_rnn",
                              ir_version=helper.find_min_ir_version_for(opsets))
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        _write_atomic(Path(path), proto.SerializeToString())
    return proto


def _trace(model: Module, args: tuple) -> Any:
    """Run ``model(*args)`` in eval mode with the known layers emitting ONNX nodes."""
    modes = {id(m): m.training for m in model.modules()}
    patched = []

    def emitting(module: Module, path: str, emit: Callable) -> Callable:
        return lambda *a, **k: emit(module, path, *a, **k)

    def refusing(module: Module, path: str) -> Callable:
        def forward(*a: Any, **k: Any) -> Any:
            raise OnnxExportError(f"ONNX export: {type(module).__name__} '{path}' is not supported "
                                  f"(supported: {SUPPORTED}); use the sequence layer (nn.RNN/LSTM/GRU)")
        return forward

    def guarded(module: Module, path: str, forward: Callable) -> Callable:
        def run(*a: Any, **k: Any) -> Any:
            try:
                return forward(*a, **k)
            except OnnxExportError:
                raise
            except Exception as exc:  # an op on a traced value that the exporter cannot express
                raise OnnxExportError(f"ONNX export: {type(module).__name__} '{path or type(module).__name__}' "
                                      f"uses an operation the exporter does not support: "
                                      f"{type(exc).__name__}: {exc}") from exc
        return run

    try:
        model.eval()
        for path, module in model.named_modules():
            emit = _emitter_for(module)
            if emit is not None:
                new = emitting(module, path or type(module).__name__, emit)
            elif isinstance(module, UNSUPPORTED_LAYERS):
                new = refusing(module, path or type(module).__name__)
            else:
                new = guarded(module, path, module.forward)
            object.__setattr__(module, "forward", new)  # instance attribute: shadows the class's forward
            patched.append(module)
        with no_grad():
            return model(*args)
    finally:
        for module in patched:
            module.__dict__.pop("forward", None)
        for m in model.modules():
            object.__setattr__(m, "training", modes.get(id(m), m.training))


# ----- the CLI's character model --------------------------------------------------------------------
def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, *, with_state: bool = False,
                      opset_version: int = DEFAULT_OPSET) -> Any:
    """Export the ``CharLM`` checkpoint written by ``tinygrad-rnn train`` (``tinygrad-rnn export``).

    Graph: ``input_ids (batch, sequence) int64 -> logits (batch, sequence, vocab)``, ``h_n`` (and
    ``c_n`` for an LSTM) ``(layers, batch, hidden)``; the next-character distribution after a
    prefix is ``softmax(logits[:, -1])``. With ``with_state`` the graph also takes ``h_0`` (and
    ``c_0``), so a server can feed one character at a time and pass the state back. The metadata
    holds ``config``, ``vocab`` (a JSON list: id -> token), ``tokenizer`` (``CharTokenizer.to_dict()``)
    and ``mode`` (``names``: start from ``<eos>`` and stop at it; ``text``).
    """
    from .train import checkpoints as io
    from .data.text import CharTokenizer
    from .models import CharLM

    meta = io.read(checkpoint).metadata
    config = dict(meta.get("config") or {})
    if config.pop("model", None) != "CharLM":
        raise ValueError(f"export: {checkpoint} is not a CharLM checkpoint written by 'tinygrad-rnn train'")
    if not isinstance(meta.get("tokenizer"), dict):
        raise ValueError(f"export: {checkpoint} holds no tokenizer; it was not written by 'tinygrad-rnn train'")
    tokenizer = CharTokenizer.from_dict(meta["tokenizer"])
    model = CharLM(**config)
    io.load(checkpoint, model=model)
    lstm = config.get("cell") == "lstm"
    layers, hidden = model.config["layers"], model.config["hidden"]
    ids = np.full((1, 2), tokenizer.eos_id, dtype=np.int64)
    state_names = ["h_0", "c_0"] if lstm else ["h_0"]
    state = None
    if with_state:
        zeros = [np.zeros((layers, 1, hidden), dtype=model.head.weight.dtype) for _ in state_names]
        state = tuple(zeros) if lstm else zeros[0]
    outputs = ["logits", "h_n", "c_n"] if lstm else ["logits", "h_n"]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"},
            **{name: {1: "batch"} for name in outputs[1:] + (state_names if with_state else [])}}
    extra = meta.get("extra") or {}
    return export(model, (ids, state), path, input_names=["input_ids"] + (state_names if with_state else []),
                  output_names=outputs, dynamic_axes=axes, opset_version=opset_version,
                  metadata={"config": {"model": "CharLM", **model.config}, "vocab": tokenizer.vocab,
                            "tokenizer": tokenizer.to_dict(),
                            "mode": extra.get("mode", "names"), "source": str(checkpoint)})
