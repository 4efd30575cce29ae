"""PyTorch round trip: the equivalent ``torch.nn`` module of one of ours, and back, same weights.

Parameter names, shapes and gate orders are PyTorch's already (``nn.LSTM``'s ``weight_ih_l0`` is
``torch.nn.LSTM``'s ``weight_ih_l0``), so a conversion builds the module with the same
constructor arguments and copies ``state_dict()`` by name, keeping the dtype (float32 stays
float32). Supported: ``Linear``, ``Embedding``, ``Dropout``, ``RNN``/``LSTM``/``GRU``,
``RNNCell``/``LSTMCell``/``GRUCell``, ``Sequential`` of those, and ``CharLM`` (the CLI's model,
whose PyTorch twin is :class:`TorchCharLM`: same submodule names, same ``forward(x, state)``).

PyTorch is optional (``pip install "tinygrad_rnn[torch]"``): this module imports without it and
every function raises an ImportError saying how to install it.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from . import nn
from .models import CharLM

__all__ = ["TorchCharLM", "from_torch", "require_torch", "state_dict_from_torch", "state_dict_to_torch",
           "to_torch"]


def require_torch() -> Any:
    """Import ``torch``, or explain how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError("tinygrad_rnn.torch_interop needs PyTorch: pip install \"tinygrad_rnn[torch]\" "
                          "(or pip install torch)") from None
    return torch


def state_dict_to_torch(state: Mapping[str, np.ndarray]) -> dict:
    """name -> array becomes name -> torch.Tensor (copies, same dtype)."""
    torch = require_torch()
    return {name: torch.from_numpy(np.array(value, copy=True)) for name, value in state.items()}


def state_dict_from_torch(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """name -> torch.Tensor becomes name -> NumPy array (copies, same dtype, on the CPU)."""
    require_torch()
    return {name: value.detach().cpu().numpy().copy() for name, value in state.items()}


_TORCH_CHARLM: Any = None


def _torch_charlm_class() -> Any:
    """Define :class:`TorchCharLM` on first use (torch is imported only then)."""
    global _TORCH_CHARLM
    if _TORCH_CHARLM is not None:
        return _TORCH_CHARLM
    torch = require_torch()

    class TorchCharLM(torch.nn.Module):
        """PyTorch twin of :class:`tinygrad_rnn.models.CharLM`: Embedding -> RNN/LSTM/GRU
        (batch_first) -> Linear, ``forward(x, state=None) -> (logits, state)``."""

        def __init__(self, vocab_size: int, embed: int = 32, hidden: int = 128, layers: int = 1,
                     cell: str = "lstm", dropout: float = 0.0):
            super().__init__()
            cells = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
            if cell not in cells:
                raise ValueError(f"TorchCharLM: cell must be one of {sorted(cells)}, got {cell!r}")
            self.config = dict(vocab_size=vocab_size, embed=embed, hidden=hidden, layers=layers, cell=cell,
                               dropout=float(dropout))
            self.embedding = torch.nn.Embedding(vocab_size, embed)
            self.rnn = cells[cell](embed, hidden, num_layers=layers, batch_first=True, dropout=dropout)
            self.head = torch.nn.Linear(hidden, vocab_size)

        def forward(self, x: Any, state: Any = None) -> tuple:
            out, state = self.rnn(self.embedding(x), state)
            return self.head(out), state

    # picklable as tinygrad_rnn.torch_interop.TorchCharLM (found through the module __getattr__)
    TorchCharLM.__module__, TorchCharLM.__qualname__ = __name__, "TorchCharLM"
    _TORCH_CHARLM = TorchCharLM
    return TorchCharLM


def __getattr__(name: str) -> Any:
    if name == "TorchCharLM":
        return _torch_charlm_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _recurrent_kwargs(m: Any) -> dict:
    kwargs = dict(num_layers=m.num_layers, bias=bool(m.bias), batch_first=m.batch_first,
                  dropout=float(m.dropout), bidirectional=m.bidirectional)
    if getattr(m, "proj_size", 0):
        kwargs["proj_size"] = m.proj_size
    return kwargs


def _cell_bias(m: Any) -> bool:
    return m.bias_ih is not None


def _children(m: Any) -> list:
    return list(m.children())


def to_torch(module: nn.Module) -> Any:
    """The equivalent ``torch.nn`` module with copies of ``module``'s weights (same dtype and
    training mode). Raises TypeError naming a module that has no PyTorch equivalent here."""
    torch = require_torch()
    tnn = torch.nn
    if not isinstance(module, nn.Module):
        raise TypeError(f"to_torch: expected a tinygrad_rnn Module, got {type(module).__name__}")
    if isinstance(module, CharLM):
        theirs = _torch_charlm_class()(**module.config)
    elif isinstance(module, nn.Sequential):
        theirs = tnn.Sequential(*[to_torch(child) for child in _children(module)])
    elif isinstance(module, nn.Linear):
        theirs = tnn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    elif isinstance(module, nn.Embedding):
        theirs = tnn.Embedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx)
    elif isinstance(module, nn.Dropout):
        theirs = tnn.Dropout(module.p)
    elif isinstance(module, (nn.RNN, nn.RNNCell)) and module.nonlinearity not in ("tanh", "relu"):
        raise TypeError(f"to_torch: {type(module).__name__}(nonlinearity={module.nonlinearity!r}) has no PyTorch "
                        "equivalent (PyTorch has 'tanh' and 'relu'); move the weights with state_dict_to_torch")
    elif isinstance(module, nn.RNN):
        theirs = tnn.RNN(module.input_size, module.hidden_size, nonlinearity=module.nonlinearity,
                         **_recurrent_kwargs(module))
    elif isinstance(module, (nn.LSTM, nn.GRU)):
        cls = tnn.LSTM if isinstance(module, nn.LSTM) else tnn.GRU
        theirs = cls(module.input_size, module.hidden_size, **_recurrent_kwargs(module))
    elif isinstance(module, nn.RNNCell):
        theirs = tnn.RNNCell(module.input_size, module.hidden_size, bias=_cell_bias(module),
                             nonlinearity=module.nonlinearity)
    elif isinstance(module, (nn.LSTMCell, nn.GRUCell)):
        cls = tnn.LSTMCell if isinstance(module, nn.LSTMCell) else tnn.GRUCell
        theirs = cls(module.input_size, module.hidden_size, bias=_cell_bias(module))
    else:
        raise TypeError(f"to_torch: {type(module).__name__} has no PyTorch equivalent here (supported: Linear, "
                        "Embedding, Dropout, RNN, LSTM, GRU, their cells, Sequential, CharLM); convert its "
                        "submodules one by one, or move the weights with state_dict_to_torch")
    state = module.state_dict()
    dtypes = {v.dtype for v in state.values()}
    if len(dtypes) > 1:
        raise TypeError(f"to_torch: {type(module).__name__} mixes parameter dtypes {sorted(map(str, dtypes))}")
    if dtypes:
        theirs.to(torch.from_numpy(np.zeros(0, dtype=dtypes.pop())).dtype)
    theirs.load_state_dict(state_dict_to_torch(state), strict=True)
    theirs.train(module.training)
    return theirs


def from_torch(module: Any) -> nn.Module:
    """Ours from a ``torch.nn`` module (the inverse of :func:`to_torch`), same weights, dtype and
    training mode. Raises TypeError naming a module that has no equivalent here."""
    torch = require_torch()
    tnn = torch.nn
    if not isinstance(module, tnn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, _torch_charlm_class()):
        ours = CharLM(**module.config)
    elif isinstance(module, tnn.Sequential):
        ours = nn.Sequential(*[from_torch(child) for child in module.children()])
    elif isinstance(module, tnn.Linear):
        ours = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    elif isinstance(module, tnn.Embedding):
        if module.max_norm is not None:
            raise TypeError("from_torch: Embedding(max_norm=...) has no equivalent here")
        ours = nn.Embedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx)
    elif isinstance(module, tnn.Dropout):
        ours = nn.Dropout(module.p)
    elif isinstance(module, (tnn.RNN, tnn.LSTM, tnn.GRU)):
        kwargs = dict(num_layers=module.num_layers, bias=module.bias, batch_first=module.batch_first,
                      dropout=float(module.dropout), bidirectional=module.bidirectional)
        if getattr(module, "proj_size", 0):
            kwargs["proj_size"] = module.proj_size
        if isinstance(module, tnn.LSTM):
            cls = nn.LSTM
        elif isinstance(module, tnn.GRU):
            cls = nn.GRU
        else:
            cls, kwargs["nonlinearity"] = nn.RNN, module.nonlinearity
        try:
            ours = cls(module.input_size, module.hidden_size, **kwargs)
        except TypeError as exc:  # e.g. proj_size on a version of nn.LSTM without it
            raise TypeError(f"from_torch: {type(module).__name__} with {kwargs} has no equivalent here ({exc})") from None
    elif isinstance(module, tnn.RNNCell):
        ours = nn.RNNCell(module.input_size, module.hidden_size, bias=module.bias, nonlinearity=module.nonlinearity)
    elif isinstance(module, (tnn.LSTMCell, tnn.GRUCell)):
        cls = nn.LSTMCell if isinstance(module, tnn.LSTMCell) else nn.GRUCell
        ours = cls(module.input_size, module.hidden_size, bias=module.bias)
    else:
        raise TypeError(f"from_torch: {type(module).__name__} has no equivalent in tinygrad_rnn here (supported: "
                        "Linear, Embedding, Dropout, RNN, LSTM, GRU, their cells, Sequential, TorchCharLM); move "
                        "the weights with state_dict_from_torch")
    state = state_dict_from_torch(module.state_dict())
    dtypes = {v.dtype for v in state.values()}
    if len(dtypes) > 1:
        raise TypeError(f"from_torch: {type(module).__name__} mixes parameter dtypes {sorted(map(str, dtypes))}")
    if dtypes:
        dtype = dtypes.pop()
        if dtype.kind != "f" or dtype.itemsize < 4:
            raise TypeError(f"from_torch: parameters must be float32 or float64, got {dtype}")
        ours.to(dtype)
    ours.load_state_dict(state, strict=True)
    ours.train(module.training)
    return ours
