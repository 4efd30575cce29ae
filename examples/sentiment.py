"""Sentence sentiment: words -> Embedding(padding_idx=0) -> GRU with lengths -> classifier.

The sentences are generated here from templates with a seeded generator (no download), with
the constructions that defeat a bag of words: negation ("was not good", "did not enjoy"),
"anything but", contrast ("good but the ending was dull": the clause after "but" decides) and
concession ("although X was good, the plot was dull": the main clause decides). Training and
held-out sentences are disjoint.

Sentences in a batch have different lengths, so they are post-padded with id 0 (``data.pad``).
Two things stop the padding from leaking into the prediction: the embedding row of ``<pad>`` is
zero and never trained (``padding_idx=0``), and the recurrent layer gets ``lengths``, so each
sentence's final hidden state ``h_n`` is taken after its own last word, not after the padding.
The script checks this: a sentence scored alone and inside a padded batch gets the same logits.

    python examples/sentiment.py
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.data import WordTokenizer, batches, pad
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.metrics import accuracy
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit

SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending",
            "the cast", "the dialogue", "the story", "the director's work"]
POSITIVE = ["good", "great", "wonderful", "brilliant", "enjoyable", "charming", "moving", "excellent"]
NEGATIVE = ["bad", "boring", "awful", "dull", "terrible", "weak", "predictable", "disappointing"]
LIKE = {"loved": 1, "enjoyed": 1, "liked": 1, "adored": 1, "hated": 0, "disliked": 0}
LIKE_BASE = {"love": 1, "enjoy": 1, "like": 1, "hate": 0, "dislike": 0}
INTENSIFIERS = ["very", "really", "quite", "truly", "rather"]


def make_sentences(rng: np.random.Generator, n: int) -> list[tuple[str, int]]:
    """``n`` distinct (sentence, label) pairs, label 1 = positive, from the templates below."""
    pick = lambda items: items[rng.integers(len(items))]  # noqa: E731

    def adjective() -> tuple[str, int]:
        label = int(rng.integers(2))
        return pick(POSITIVE if label else NEGATIVE), label

    def sentence() -> tuple[str, int]:
        s, s2 = pick(SUBJECTS), pick(SUBJECTS)
        (a, la), (b, lb) = adjective(), adjective()
        template = int(rng.integers(9))
        if template == 0:
            return f"{s} was {a}", la
        if template == 1:
            return f"{s} was not {a}", 1 - la
        if template == 2:
            return f"{s} was {pick(INTENSIFIERS)} {a}", la
        if template == 3:
            verb = pick(list(LIKE))
            return f"i {verb} {s}", LIKE[verb]
        if template == 4:
            verb = pick(list(LIKE_BASE))
            return f"i did not {verb} {s}", 1 - LIKE_BASE[verb]
        if template == 5:
            return f"{s} was {a} but {s2} was {b}", lb
        if template == 6:
            return f"although {s} was {a} , {s2} was {b}", lb
        if template == 7:
            return f"{s} was anything but {a}", 1 - la
        return f"{s} was {a} , although {s2} was {b}", la

    seen: dict[str, int] = {}
    while len(seen) < n:
        text, label = sentence()
        seen.setdefault(text, label)
    return list(seen.items())


def bag_of_words_accuracy(train_ids, train_y, test_ids, test_y, vocab_size: int) -> float:
    """A baseline blind to word order: logistic regression on word counts (NumPy, 500 steps)."""
    def counts(ids):
        c = np.zeros((len(ids), vocab_size))
        np.add.at(c, (np.repeat(np.arange(len(ids)), ids.shape[1]), ids.ravel()), 1.0)
        c[:, WordTokenizer.pad_id] = 1.0   # the pad column doubles as a bias feature
        return c
    X, Xt, w = counts(train_ids), counts(test_ids), np.zeros(vocab_size)
    for _ in range(500):
        p = 1 / (1 + np.exp(-X @ w))
        w -= 0.5 * X.T @ (p - train_y) / len(X)
    return float(np.mean((Xt @ w > 0) == test_y))


class SentenceClassifier(nn.Module):
    """ids (N, L) + lengths (N,) -> logits (N, 2) from each sentence's final hidden state."""

    def __init__(self, vocab_size: int, embed: int, hidden: int, cell: str):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=WordTokenizer.pad_id)
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x, state=None):
        ids, lengths = x
        _, h_n = self.rnn(self.embedding(ids), lengths=lengths)
        if isinstance(h_n, tuple):  # LSTM returns (h_n, c_n)
            h_n = h_n[0]
        return self.head(h_n[-1]), None   # h_n[-1]: the last layer, (N, H)


def main() -> None:
    p = parser(__doc__.splitlines()[0], "sentiment")
    p.add_argument("--sentences", type=int, default=800, help="distinct sentences generated")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--cell", default="gru", choices=["rnn", "lstm", "gru"])
    p.add_argument("--hidden", type=int, default=48)
    p.add_argument("--embed", type=int, default=24)
    p.add_argument("--lr", type=float, default=5e-3)
    args = p.parse_args()
    if args.quick:
        args.sentences, args.epochs, args.hidden, args.embed = 200, 4, 16, 8

    rng = np.random.default_rng(args.seed)
    data = make_sentences(rng, args.sentences)
    n_train = int(len(data) * 0.75)
    train, held_out = data[:n_train], data[n_train:]
    tokenizer = WordTokenizer().fit(text for text, _ in train)

    def encode(pairs):
        ids, lengths = pad([tokenizer.encode(t) for t, _ in pairs])
        return ids, lengths, np.asarray([label for _, label in pairs], dtype=np.int64)

    train_ids, train_len, train_y = encode(train)
    test_ids, test_len, test_y = encode(held_out)
    majority = max(test_y.mean(), 1 - test_y.mean())
    print(f"{len(train)} training / {len(held_out)} held-out sentences, vocabulary {tokenizer.vocab_size}; "
          f"e.g. {held_out[0][0]!r} -> {held_out[0][1]}")
    bow = bag_of_words_accuracy(train_ids, train_y, test_ids, test_y, tokenizer.vocab_size)
    print(f"held-out baselines: majority class {majority:.1%}, bag-of-words logistic regression {bow:.1%}")

    order_rng = np.random.default_rng(args.seed)

    def train_batches():
        for ids, lengths, y in batches(train_ids, train_len, train_y, batch_size=32, seed=order_rng):
            yield (ids[:, :lengths.max()], lengths), y

    test_data = [((test_ids, test_len), test_y)]
    tg.manual_seed(args.seed)
    model = SentenceClassifier(tokenizer.vocab_size, args.embed, args.hidden, args.cell)
    optimizer = Adam(model.parameters(), lr=args.lr)
    first, first_acc = evaluate(model, cross_entropy, test_data, metric=accuracy)
    with Timer() as timer:
        history = fit(model, cross_entropy, optimizer, train_batches, val_data=test_data,
                      epochs=args.epochs, clip=1.0, metric=accuracy, progress=progress_bar(),
                      compile=not args.no_compile)
    report_loss(args.cell, first, history.val_loss[-1])
    print(f"held-out accuracy {history.val_metric[-1]:.1%} (before training {first_acc:.1%}, "
          f"majority class {majority:.1%}, bag of words {bow:.1%}) after {args.epochs} epochs, {timer.seconds:.0f} s")

    # Padding must not leak: one sentence alone vs. the same sentence padded inside the batch.
    model.eval()
    with tg.no_grad():
        batch_logits = model((test_ids, test_len))[0].numpy()
        k = int(np.argmin(test_len))   # the shortest sentence carries the most padding
        alone = model((test_ids[k:k + 1, :test_len[k]], test_len[k:k + 1]))[0].numpy()
        predictions = batch_logits.argmax(-1)
    print(f"padding check: |logits alone - logits in padded batch| = {np.abs(alone - batch_logits[k]).max():.1e}")

    print("\nsome held-out sentences (prediction, truth):")
    for (text, label), guess in list(zip(held_out, predictions))[:12]:
        print(f"  {'pos' if guess else 'neg'} {'ok ' if guess == label else 'XX '} {text}")
    save_curves(args, {"train": history.train_loss, "held-out": history.val_loss}, "epoch",
                "cross-entropy", "Sentence sentiment")


if __name__ == "__main__":
    main()
