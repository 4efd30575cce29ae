"""Next-symbol prediction on the embedded Reber grammar (Hochreiter & Schmidhuber, 1997).

A string is ``B a r a E`` where ``a`` is T or P and ``r`` is a Reber string (``B ... E``, with
loops, so of any length). Most next symbols are a coin flip between two legal choices, but the
symbol after the inner string's final E must repeat the ``a`` seen right after the first B, many
steps earlier: only a net that carries that one bit across the whole inner string predicts it.

The model reads one-hot symbols and predicts the next one at every step (cross-entropy; padded
positions are ignored). On held-out strings we report
  * the fraction whose final T/P is predicted correctly (argmax), the long-range test, and
  * the fraction where every prediction is a legal next symbol (``datasets.reber_next_symbols``).
A model without memory of ``a`` gets the final T/P right half of the time.

    python examples/embedded_reber.py
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.data import batches
from tinygrad_rnn.datasets import embedded_reber, reber_next_symbols
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit

ALPHABET = "BTSXPVE"
IGNORE = -100
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class NextSymbol(nn.Module):
    """One-hot symbols (N, L, 7) -> recurrent layer -> Linear: logits (N, L, 7) for the next symbol."""

    def __init__(self, cell: str, hidden: int):
        super().__init__()
        self.rnn = CELLS[cell](len(ALPHABET), hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(ALPHABET))

    def forward(self, x, state=None):
        out, _ = self.rnn(x)
        return self.head(out), None


def encode(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One-hot inputs (all symbols but the last) and next-symbol targets, -100 past each end."""
    width = max(len(s) for s in strings) - 1
    x = np.zeros((len(strings), width, len(ALPHABET)), dtype=np.float32)
    y = np.full((len(strings), width), IGNORE, dtype=np.int64)
    for n, s in enumerate(strings):
        ids = [ALPHABET.index(ch) for ch in s]
        x[n, np.arange(len(ids) - 1), ids[:-1]] = 1.0
        y[n, :len(ids) - 1] = ids[1:]
    return x, y


def final_symbol_accuracy(logits, y) -> float:
    """Accuracy of the prediction of the second-to-last symbol (the outer T/P)."""
    y = np.asarray(y)
    position = (y != IGNORE).sum(axis=1) - 2   # target there is the outer T/P, then comes the final E
    rows = np.arange(len(y))
    predicted = logits.numpy()[rows, position].argmax(-1)
    return float(np.mean(predicted == y[rows, position]))


def all_legal_fraction(model, strings: list[str], x: np.ndarray) -> float:
    """Fraction of strings where the argmax at every position is a symbol the grammar allows."""
    with tg.no_grad():
        predicted = model(tg.Tensor(x))[0].numpy().argmax(-1)
    good = 0
    for n, s in enumerate(strings):
        allowed = reber_next_symbols(s)[:-1]   # after the final E nothing is predicted
        good += all(ALPHABET[predicted[n, t]] in allowed[t] for t in range(len(s) - 1))
    return good / len(strings)


def main() -> None:
    p = parser(__doc__.splitlines()[0], "embedded_reber")
    p.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated subset of rnn,lstm,gru")
    p.add_argument("--train", type=int, default=2000, help="training strings")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2)
    args = p.parse_args()
    if args.quick:
        args.train, args.epochs, args.hidden = 200, 3, 8

    train_strings = embedded_reber(args.train, seed=args.seed)
    test_strings = embedded_reber(1000, seed=args.seed + 1)
    train_x, train_y = encode(train_strings)
    test_x, test_y = encode(test_strings)
    print(f"{len(train_strings)} training strings, {len(test_strings)} held out "
          f"(lengths {min(map(len, test_strings))}-{max(map(len, test_strings))})")
    test_data = [(tg.Tensor(test_x), test_y)]

    curves, results = {}, {}
    for cell in args.cells.split(","):
        tg.manual_seed(args.seed)
        model = NextSymbol(cell, args.hidden)
        optimizer = Adam(model.parameters(), lr=args.lr)
        order_rng = np.random.default_rng(args.seed)

        def train_batches():
            for bx, by in batches(train_x, train_y, batch_size=32, seed=order_rng):
                width = int((by != IGNORE).sum(axis=1).max())
                yield tg.Tensor(bx[:, :width]), by[:, :width]

        first, _ = evaluate(model, cross_entropy, test_data)
        with Timer() as timer:
            history = fit(model, cross_entropy, optimizer, train_batches, val_data=test_data,
                          epochs=args.epochs, clip=1.0, metric=final_symbol_accuracy,
                          progress=progress_bar(), compile=not args.no_compile)
        report_loss(cell, first, history.val_loss[-1])
        final_acc = history.val_metric[-1]
        legal = all_legal_fraction(model, test_strings, test_x)
        results[cell] = (history.val_loss[-1], final_acc, legal, timer.seconds)
        curves[cell] = history.val_loss
        print(f"{cell:>4}: final T/P correct on {final_acc:.1%} of held-out strings, "
              f"every prediction legal on {legal:.1%} ({timer.seconds:.0f} s)")

    print(f"\nheld-out results after {args.epochs} epochs (memoryless guess of the final T/P: 50%)")
    print(f"  {'cell':>4}  {'loss':>7}  {'final T/P':>9}  {'all legal':>9}")
    for cell, (loss, acc, legal, seconds) in results.items():
        print(f"  {cell:>4}  {loss:7.4f}  {acc:9.1%}  {legal:9.1%}   [{seconds:.0f} s]")
    save_curves(args, curves, "epoch", "held-out loss (nats/symbol)", "Embedded Reber grammar")


if __name__ == "__main__":
    main()
