"""Word-level next-token prediction: Embedding -> LSTM -> Linear, with Adam, loss and accuracy
per epoch on training and held-out sentences, padded positions excluded.

The sentences come from a small seeded grammar with number agreement across a clause:

    the dog that the farmers chase sleeps .     the dogs near the cat sleep quietly .

The main verb must agree with the FIRST noun, several words back, while the nearest noun may
disagree with it: a bigram model (next word from the current word alone) cannot know which form
comes next, the LSTM can. Sentences in a batch are post-padded; the targets at padded positions
are -100, so ``losses.cross_entropy`` and ``metrics.accuracy`` both skip them (``ignore_index``)
and a model gets no credit for "predicting" padding.

    python examples/next_token_accuracy.py
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn.data import WordTokenizer, batches, pad
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.metrics import accuracy
from tinygrad_rnn.models import CharLM
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit

IGNORE = -100
NOUNS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("child", "children"),
         ("teacher", "teachers"), ("farmer", "farmers")]
TRANSITIVE = [("sees", "see"), ("chases", "chase"), ("likes", "like"), ("follows", "follow")]
INTRANSITIVE = [("sleeps", "sleep"), ("runs", "run"), ("sings", "sing"), ("waits", "wait")]
ADVERBS = ["quietly", "often", "again"]


def make_sentence(rng: np.random.Generator) -> str:
    """the N1 [that the N2 V2 | near the N2] V1 [adverb] .   (V1 agrees with N1, V2 with N2)"""
    pick = lambda items: items[rng.integers(len(items))]  # noqa: E731
    n1, n2 = int(rng.integers(2)), int(rng.integers(2))    # 0 singular, 1 plural
    words = ["the", pick(NOUNS)[n1]]
    middle = int(rng.integers(3))
    if middle == 1:
        words += ["that", "the", pick(NOUNS)[n2], pick(TRANSITIVE)[n2]]
    elif middle == 2:
        words += ["near", "the", pick(NOUNS)[n2]]
    words.append(pick(INTRANSITIVE)[n1])
    if rng.random() < 0.3:
        words.append(pick(ADVERBS))
    return " ".join(words + ["."])


def bigram_accuracy(train_x, train_y, test_x, test_y, vocab_size: int) -> float:
    """Accuracy of always predicting the most frequent successor of the current word."""
    counts = np.zeros((vocab_size, vocab_size))
    keep = train_y != IGNORE
    np.add.at(counts, (train_x[keep], train_y[keep]), 1)
    keep = test_y != IGNORE
    return float(np.mean(counts.argmax(1)[test_x[keep]] == test_y[keep]))


def main() -> None:
    p = parser(__doc__.splitlines()[0], "next_token_accuracy")
    p.add_argument("--sentences", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args()
    if args.quick:
        args.sentences, args.epochs, args.hidden, args.embed = 300, 2, 16, 8

    rng = np.random.default_rng(args.seed)
    sentences = [make_sentence(rng) for _ in range(args.sentences)]
    n_train = int(len(sentences) * 0.8)
    tokenizer = WordTokenizer().fit(sentences[:n_train])
    ids, lengths = pad([tokenizer.encode(s) for s in sentences])
    x = ids[:, :-1]                                   # inputs: every word but the last
    y = np.where(np.arange(1, ids.shape[1]) < lengths[:, None], ids[:, 1:], IGNORE)  # next words
    train_x, train_y, test_x, test_y = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    print(f"{n_train} training / {len(sentences) - n_train} held-out sentences, "
          f"vocabulary {tokenizer.vocab_size}, e.g. {sentences[0]!r}")
    bigram = bigram_accuracy(train_x, train_y, test_x, test_y, tokenizer.vocab_size)
    print(f"bigram baseline: held-out next-token accuracy {bigram:.1%} (padding excluded)")

    order_rng = np.random.default_rng(args.seed)
    train_batches = lambda: batches(train_x, train_y, batch_size=32, seed=order_rng)  # noqa: E731
    train_eval = [(train_x, train_y)]
    test_data = [(test_x, test_y)]
    tg.manual_seed(args.seed)
    # CharLM is Embedding -> LSTM -> Linear over any token ids, here words.
    model = CharLM(tokenizer.vocab_size, embed=args.embed, hidden=args.hidden, cell="lstm")
    optimizer = Adam(model.parameters(), lr=args.lr)

    first, first_acc = evaluate(model, cross_entropy, test_data, metric=accuracy)
    curves = {"train loss": [], "held-out loss": []}
    print(f"\n{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val loss':>8}  {'val acc':>7}")
    print(f"{0:>5}  {'':>10}  {'':>9}  {first:8.4f}  {first_acc:7.1%}")
    with Timer() as timer:
        for epoch in range(1, args.epochs + 1):
            history = fit(model, cross_entropy, optimizer, train_batches, val_data=test_data,
                          epochs=1, clip=1.0, metric=accuracy, progress=progress_bar(),
                          compile=not args.no_compile)
            train_loss, train_acc = evaluate(model, cross_entropy, train_eval, metric=accuracy)
            curves["train loss"].append(train_loss)
            curves["held-out loss"].append(history.val_loss[-1])
            print(f"{epoch:>5}  {train_loss:10.4f}  {train_acc:9.1%}  {history.val_loss[-1]:8.4f}  "
                  f"{history.val_metric[-1]:7.1%}")
    report_loss("lstm", first, curves["held-out loss"][-1])
    print(f"held-out next-token accuracy {history.val_metric[-1]:.1%} vs bigram {bigram:.1%} "
          f"({timer.seconds:.0f} s)")

    # Where the bigram model must guess: the main verb after a clause ("the dogs near the cat ?").
    # Agreement is right when the model puts more probability on the verb forms of the right number.
    singular = [tokenizer.token_to_id(sg) for sg, _ in INTRANSITIVE]
    plural = [tokenizer.token_to_id(pl) for _, pl in INTRANSITIVE]
    model.eval()
    with tg.no_grad():
        probs = model(test_x)[0].softmax(-1).numpy()
    rows, cols = np.nonzero(np.isin(test_y, singular + plural) & (np.arange(test_y.shape[1]) > 1))
    says_plural = probs[rows, cols][:, plural].sum(-1) > probs[rows, cols][:, singular].sum(-1)
    agreement = np.mean(says_plural == np.isin(test_y[rows, cols], plural))
    print(f"main verb after a clause: right number (singular/plural) in {agreement:.1%} of "
          f"{len(rows)} held-out sentences (a bigram model cannot see the subject: ~50%)")
    save_curves(args, curves, "epoch", "cross-entropy (padding excluded)", "Next-token prediction")


if __name__ == "__main__":
    main()
