"""Surname -> language with recurrent cells you write yourself, run through ``nn.Recurrent``.

Each cell below is a few lines: one ``Linear`` over ``cat([x, h])`` and the cell's equations (a
vanilla RNN with a sigmoid, a GRU, an LSTM). A cell only has to say how big its state is
(``state_size``), how wide its output is (``output_size``), how to make a first state
(``initial_state``) and how to take one step (``step``). ``nn.Recurrent`` then gives it two layers,
both directions and variable ``lengths`` (padding never touches the state), and
``nn.LastOutput`` reads each name's last output in each direction.

    python examples/custom_cells.py
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn import nn, ops
from tinygrad_rnn.data import CharTokenizer, batches, pad
from tinygrad_rnn.datasets import surnames
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.metrics import accuracy
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit


class Cell(nn.Module):
    """What the three cells share: sizes, a zero first state, one Linear over cat([x, h])."""

    states = 1   # how many (N, hidden) tensors the state holds
    blocks = 1   # how many hidden-sized blocks the Linear computes

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.linear = nn.Linear(input_size + hidden_size, self.blocks * hidden_size)

    @property
    def state_size(self) -> tuple[int, ...]:
        return (self.hidden_size,) * self.states

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def initial_state(self, batch: int, dtype) -> tuple:
        return tuple(tg.zeros(batch, self.hidden_size, dtype=dtype) for _ in range(self.states))


class SigmoidRNNCell(Cell):
    """h' = σ(W [x, h] + b)"""

    def step(self, x, state):
        h = self.linear(ops.cat([x, state[0]], axis=-1)).sigmoid()
        return h, (h,)


class MyGRUCell(Cell):
    """r, z = σ(W_rz [x, h] + b); n = tanh(W_n [x, r ⊙ h] + b_n); h' = (1 - z) ⊙ n + z ⊙ h"""

    blocks = 2

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.candidate = nn.Linear(input_size + hidden_size, hidden_size)

    def step(self, x, state):
        h = state[0]
        r, z = ops.chunk(self.linear(ops.cat([x, h], axis=-1)).sigmoid(), 2, axis=-1)
        n = self.candidate(ops.cat([x, r * h], axis=-1)).tanh()
        h = (1 - z) * n + z * h
        return h, (h,)


class MyLSTMCell(Cell):
    """i, f, g, o = W [x, h] + b; c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g); h' = σ(o) ⊙ tanh(c')"""

    states, blocks = 2, 4

    def step(self, x, state):
        h, c = state
        i, f, g, o = ops.chunk(self.linear(ops.cat([x, h], axis=-1)), 4, axis=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        return h, (h, c)


CELLS = {"rnn": SigmoidRNNCell, "gru": MyGRUCell, "lstm": MyLSTMCell}


class NameClassifier(nn.Module):
    """(ids (N, L), lengths (N,)) -> logits (N, languages)."""

    def __init__(self, vocab_size: int, classes: int, cell: type, embed: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.encoder = nn.LastOutput(nn.Recurrent(lambda width: cell(width, hidden), num_layers=2,
                                                  bidirectional=True, batch_first=True, input_size=embed))
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        ids, lengths = x
        return self.head(self.encoder(self.embedding(ids), lengths=lengths))


def main() -> None:
    p = parser(__doc__.splitlines()[0], "custom_cells")
    p.add_argument("--cells", default="rnn,gru,lstm", help="comma-separated subset of rnn,gru,lstm")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--embed", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args()

    pairs = surnames()
    order = np.random.default_rng(args.seed).permutation(len(pairs))
    if args.quick:
        order = order[:600]
        args.epochs, args.hidden, args.embed = 2, 8, 8
    languages = sorted({lang for _, lang in pairs})
    tokenizer = CharTokenizer(specials=("<pad>",), lower=True).fit(name for name, _ in pairs)
    ids, lengths = pad(tokenizer.encode([pairs[i][0] for i in order]))
    labels = np.asarray([languages.index(pairs[i][1]) for i in order], dtype=np.int64)
    n_test = len(order) // 5
    test_data = [((ids[:n_test], lengths[:n_test]), labels[:n_test])]
    order_rng = np.random.default_rng(args.seed)

    def train_batches():
        for bx, bl, by in batches(ids[n_test:], lengths[n_test:], labels[n_test:], batch_size=64, seed=order_rng):
            yield (bx[:, :bl.max()], bl), by

    curves = {}
    for name in args.cells.split(","):
        tg.manual_seed(args.seed)
        model = NameClassifier(tokenizer.vocab_size, len(languages), CELLS[name], args.embed, args.hidden)
        first, _ = evaluate(model, cross_entropy, test_data)
        with Timer() as timer:
            history = fit(model, cross_entropy, Adam(model.parameters(), lr=args.lr), train_batches,
                          val_data=test_data, epochs=args.epochs, clip=1.0, metric=accuracy,
                          progress=progress_bar(), compile=not args.no_compile)
        report_loss(name, first, history.val_loss[-1])
        print(f"{name:>4}: {model.num_parameters()} parameters, held-out accuracy "
              f"{history.val_metric[-1]:.1%} ({timer.seconds:.0f} s)")
        curves[name] = history.val_loss
    save_curves(args, curves, "epoch", "held-out cross-entropy", "Surname -> language, your own cells")


if __name__ == "__main__":
    main()
