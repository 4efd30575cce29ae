"""Ready-made models built from the nn layers: a character/token language model."""
from __future__ import annotations

from typing import Any

from .autograd import ops
from .nn import GRU, LSTM, RNN, Embedding, Linear, Module
from .nn.layers import check_size
from .autograd.tensor import Tensor

__all__ = ["CharLM", "CELLS", "detach_state", "flatten_logits"]

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class CharLM(Module):
    """Embedding -> recurrent layer(s) -> Linear: logits for the next token at every position.

    ``model(x, state=None) -> (logits, state)`` with ``x`` integer ids ``(N, L)`` (batch first) and
    ``logits`` ``(N, L, vocab_size)``; ``state`` is the recurrent layer's final state, to be fed
    back (detached) for truncated BPTT or when sampling one token at a time.
    """

    def __init__(self, vocab_size: int, embed: int = 32, hidden: int = 128, layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"CharLM: cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.config = dict(vocab_size=check_size(vocab_size, "vocab_size", "CharLM"),
                           embed=check_size(embed, "embed", "CharLM"),
                           hidden=check_size(hidden, "hidden", "CharLM"),
                           layers=check_size(layers, "layers", "CharLM"), cell=cell,
                           dropout=float(dropout))
        self.embedding = Embedding(vocab_size, embed)
        self.rnn = CELLS[cell](embed, hidden, num_layers=layers, batch_first=True, dropout=dropout)
        self.head = Linear(hidden, vocab_size)

    def forward(self, x: Any, state: Any = None) -> tuple[Tensor, Any]:
        out, state = self.rnn(self.embedding(x), state)
        return self.head(out), state


def detach_state(state: Any) -> Any:
    """Cut a recurrent state (a Tensor or a tuple of them) from its graph: truncated BPTT."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(detach_state(s) for s in state)


def flatten_logits(logits: Tensor) -> Tensor:
    """(N, L, C) -> (N*L, C)."""
    return ops.reshape(logits, -1, logits.shape[-1])
