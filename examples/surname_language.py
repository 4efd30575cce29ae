"""Surname -> language: sequence classification with RNN, GRU and LSTM compared.

Each surname is read character by character (Embedding with a zero ``<pad>`` row, recurrent
layer with ``lengths`` so padding is skipped) and classified from its final hidden state into one
of 11 languages. The classes are unbalanced: Polish alone is over a third of the names, so
always answering "Polish" already scores the majority-class baseline printed below. Accuracy
alone flatters a model that leans on the big class, hence the per-language recall and the
confusion matrix (rows: true language, columns: predicted) for the best cell.

    python examples/surname_language.py
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.data import CharTokenizer, batches, pad
from tinygrad_rnn.datasets import surnames
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.metrics import accuracy
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SurnameClassifier(nn.Module):
    """ids (N, L) + lengths (N,) -> logits (N, classes) from the final hidden state of each name."""

    def __init__(self, vocab_size: int, classes: int, cell: str, embed: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.rnn = nn.LastOutput(CELLS[cell](embed, hidden, batch_first=True))  # each name's last step
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        ids, lengths = x
        return self.head(self.rnn(self.embedding(ids), lengths=lengths))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (truth, predicted), 1)
    return m


def main() -> None:
    p = parser(__doc__.splitlines()[0], "surname_language")
    p.add_argument("--cells", default="rnn,gru,lstm", help="comma-separated subset of rnn,lstm,gru")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embed", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args()

    pairs = surnames()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(pairs))
    if args.quick:
        order = order[:800]
        args.epochs, args.hidden, args.embed = 3, 16, 8
    languages = sorted({lang for _, lang in pairs})
    tokenizer = CharTokenizer(specials=("<pad>",)).fit(name for name, _ in pairs)  # <pad> is id 0
    ids, lengths = pad(tokenizer.encode([pairs[i][0] for i in order]))
    labels = np.asarray([languages.index(pairs[i][1]) for i in order], dtype=np.int64)
    n_test = len(order) // 5
    test_x, test_y = (ids[:n_test], lengths[:n_test]), labels[:n_test]
    train_ids, train_len, train_y = ids[n_test:], lengths[n_test:], labels[n_test:]

    counts = np.bincount(train_y, minlength=len(languages))
    majority = int(np.argmax(counts))
    majority_acc = float(np.mean(test_y == majority))
    print(f"{len(train_y)} training / {n_test} held-out surnames, {len(languages)} languages")
    print("training counts: " + ", ".join(f"{lang} {c}" for lang, c in zip(languages, counts)))
    print(f"majority-class baseline (always {languages[majority]}): {majority_acc:.1%} held-out accuracy")

    order_rng = np.random.default_rng(args.seed)

    def train_batches():
        for bx, bl, by in batches(train_ids, train_len, train_y, batch_size=64, seed=order_rng):
            yield (bx[:, :bl.max()], bl), by

    test_data = [(test_x, test_y)]
    results, curves = {}, {}
    for cell in args.cells.split(","):
        tg.manual_seed(args.seed)
        model = SurnameClassifier(tokenizer.vocab_size, len(languages), cell, args.embed, args.hidden)
        optimizer = Adam(model.parameters(), lr=args.lr)
        first, _ = evaluate(model, cross_entropy, test_data)
        with Timer() as timer:
            history = fit(model, cross_entropy, optimizer, train_batches, val_data=test_data,
                          epochs=args.epochs, clip=1.0, metric=accuracy, progress=progress_bar(),
                          compile=not args.no_compile)
        report_loss(cell, first, history.val_loss[-1])
        results[cell] = (history.val_metric[-1], timer.seconds, model)
        curves[cell] = history.val_loss
        print(f"{cell:>4}: held-out accuracy {history.val_metric[-1]:.1%} ({timer.seconds:.0f} s)")

    print(f"\nheld-out accuracy after {args.epochs} epochs (majority class: {majority_acc:.1%})")
    for cell, (acc, seconds, _) in results.items():
        print(f"  {cell:>4}  {acc:.1%}  [{seconds:.0f} s]")

    best = max(results, key=lambda c: results[c][0])
    model = results[best][2]
    model.eval()
    with tg.no_grad():
        predicted = model(test_x).numpy().argmax(-1)
    matrix = confusion_matrix(test_y, predicted, len(languages))
    short = [lang[:4] for lang in languages]
    print(f"\nconfusion matrix of the {best.upper()} (rows: true, columns: predicted), recall per language")
    print(" " * 12 + "".join(f"{s:>5}" for s in short) + "  recall")
    for k, lang in enumerate(languages):
        recall = matrix[k, k] / max(matrix[k].sum(), 1)
        print(f"{lang:<12}" + "".join(f"{v:>5}" for v in matrix[k]) + f"  {recall:6.1%}")
    save_curves(args, curves, "epoch", "held-out cross-entropy", "Surname -> language")


if __name__ == "__main__":
    main()
