"""Parameter initialisation with PyTorch's names and laws (``torch.nn.init``), in place.

For a weight ``(out, in, *k)``: ``fan_in = in * prod(k)``, ``fan_out = out * prod(k)``.

- ``xavier_uniform_``: U(-b, b), ``b = gain * sqrt(6 / (fan_in + fan_out))``;
  ``xavier_normal_``: N(0, std²), ``std = gain * sqrt(2 / (fan_in + fan_out))``.
- ``kaiming_uniform_``: ``std = calculate_gain(nonlinearity, a) / sqrt(fan)``, U(-√3 std, √3 std);
  ``kaiming_normal_``: N(0, std²); ``fan`` is fan_in or fan_out (``mode``).
- ``orthogonal_``: Q of the QR decomposition of a standard normal ``(rows, cols)`` matrix
  (transposed when rows < cols), columns times ``sign(diag R)``, times ``gain``.

Draws come from the library generator (``tinygrad_rnn.manual_seed``). Every function changes
``tensor.data`` in place, keeps its dtype and shape, and returns the tensor.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..random import rng
from ..autograd.tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
]

_LINEAR = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
           "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain: linear/identity/sigmoid 1, tanh 5/3, relu √2, leaky_relu √(2/(1+slope²))
    (slope ``param``, default 0.01), selu 3/4."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: param must be a number (the negative slope), got {param!r}")
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{', '.join(_LINEAR[:3])}, tanh, relu, leaky_relu, selu")


def _check(tensor: Any, fn: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: tensor must be a Tensor (e.g. a Parameter), got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{fn}: tensor must be floating point, got dtype {tensor.dtype}")
    return tensor


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    values = np.asarray(values, dtype=tensor.dtype).reshape(tensor.shape)
    if tensor.data.flags.writeable:
        tensor.data[...] = values      # in place: every holder of this array sees the new values
    else:
        tensor.data = values
    return tensor


def _fans(tensor: Tensor, fn: str) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"{fn}: fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    _check(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    return _fill(tensor, rng().uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std²)."""
    _check(tensor, "normal_")
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, rng().normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    _check(tensor, "constant_")
    return _fill(tensor, np.full(tensor.shape, val))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain √(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _fans(_check(tensor, "xavier_uniform_"), "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, rng().uniform(-bound, bound, size=tensor.shape))


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std²) with std = gain √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_check(tensor, "xavier_normal_"), "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, rng().normal(0.0, std, size=tensor.shape))


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str, fn: str) -> float:
    fan_in, fan_out = _fans(_check(tensor, fn), fn)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{fn}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-√3 std, √3 std) with std = gain(nonlinearity, a) / √fan (He et al., 2015)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return _fill(tensor, rng().uniform(-bound, bound, size=tensor.shape))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain(nonlinearity, a) / √fan."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return _fill(tensor, rng().normal(0.0, std, size=tensor.shape))


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2013): rows or columns orthonormal."""
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs a tensor with at least 2 dimensions, got shape {tensor.shape}")
    rows = tensor.shape[0]
    cols = tensor.size // rows if rows else 0
    flat = rng().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))      # makes the decomposition unique: uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q)
