"""Feed-forward building blocks: Linear, Embedding, Dropout, Sequential."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import ops
from ..random import rng
from ..autograd.tensor import DEFAULT_FLOAT, Tensor
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "Dropout", "Sequential", "check_size", "uniform", "as_input"]


def check_size(value: Any, name: str, owner: str, minimum: int = 1) -> int:
    """Validate a size argument: an int >= minimum."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value}")
    return int(value)


def uniform(shape: tuple, bound: float) -> Parameter:
    """A parameter drawn i.i.d. from U(-bound, bound) with the library generator."""
    return Parameter(rng().uniform(-bound, bound, size=shape).astype(DEFAULT_FLOAT))


def as_input(x: Any, owner: str) -> Tensor:
    """Accept a Tensor or an array as a module input."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError(f"{owner}: input must be a Tensor or np.ndarray, got {type(x).__name__}")


class Linear(Module):
    """y = x Wᵀ + b with W (out, in) and b (out,), both from U(-1/√in, 1/√in) as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = check_size(in_features, "in_features", "Linear")
        self.out_features = check_size(out_features, "out_features", "Linear")
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = uniform((self.out_features, self.in_features), bound)
        self.bias = uniform((self.out_features,), bound) if bias else None

    def forward(self, x: Any) -> Tensor:
        x = as_input(x, "Linear")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input.shape[-1] must equal in_features={self.in_features}, got shape {x.shape}"
            )
        if x.dtype != self.weight.dtype:
            raise TypeError(f"Linear: input dtype {x.dtype} differs from the weights' {self.weight.dtype}")
        if self.bias is None:
            return ops.matmul(x, ops.T(self.weight))
        if x.ndim == 2:
            return ops.addmm(self.bias, x, ops.T(self.weight))
        # (..., in) -> one (rows, in) product: one weight gradient matmul, not one per batch row
        rows = ops.reshape(x, -1, self.in_features)
        y = ops.addmm(self.bias, rows, ops.T(self.weight))
        return ops.reshape(y, *x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: y = W[idx]; W from N(0, 1), the ``padding_idx`` row zero and never updated."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings = check_size(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = check_size(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if (not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool)
                    or not -self.num_embeddings <= padding_idx < self.num_embeddings):
                raise ValueError(
                    f"Embedding: padding_idx must be an int in [-{self.num_embeddings}, "
                    f"{self.num_embeddings}), got {padding_idx!r}"
                )
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        weight = rng().standard_normal((self.num_embeddings, self.embedding_dim)).astype(DEFAULT_FLOAT)
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.weight = Parameter(weight)

    def forward(self, indices: Any) -> Tensor:
        return ops.embedding(self.weight, indices, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}"


class Dropout(Module):
    """Inverted dropout in training mode (zero with probability p, scale by 1/(1-p)); identity in eval."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        numeric = isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool)
        if not numeric or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x: Any) -> Tensor:
        return ops.dropout(as_input(x, "Dropout"), self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied one after the other, registered as "0", "1", ... like PyTorch.

    Sequence layers fit in as in Keras: a recurrent layer (``nn.LSTM``, ``nn.Recurrent``, ...) passes
    on its output sequence, not its ``(output, state)`` pair; wrap it in ``nn.LastOutput`` to pass
    on each sequence's last output. ``forward(x, mask=None)``: a ``mask`` (True where a step is
    data) goes to every sequence layer until a ``LastOutput`` removes the time axis.
    ``fit``/``evaluate``/``predict`` train and run the model on NumPy arrays (see
    :mod:`tinygrad_rnn.train.array_training`).
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} must be a Module, got {type(m).__name__}")
            setattr(self, str(i), m)

    def forward(self, x: Any, mask: Any = None) -> Any:
        for m in self._modules.values():
            if mask is not None and getattr(m, "takes_mask", False):
                x = m(x, mask=mask)
                if not getattr(m, "returns_state", False):
                    mask = None          # the time axis is gone
            else:
                x = m(x)
            if getattr(m, "returns_state", False):
                x = x[0]
        return x

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
        """Train on arrays, Keras-style: see :func:`tinygrad_rnn.train.array_training.fit_arrays`."""
        from ..train.array_training import fit_arrays
        return fit_arrays(self, X, y, **kwargs)

    def evaluate(self, X: Any, y: Any, **kwargs: Any) -> float:
        """Mean loss on arrays: see :func:`tinygrad_rnn.train.array_training.evaluate_arrays`."""
        from ..train.array_training import evaluate_arrays
        return evaluate_arrays(self, X, y, **kwargs)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Outputs for arrays, as one array: see :func:`tinygrad_rnn.train.array_training.predict_arrays`."""
        from ..train.array_training import predict_arrays
        return predict_arrays(self, X, **kwargs)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)
