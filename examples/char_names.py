"""Character-level name generator: RNN, LSTM and GRU side by side on the bundled US first names.

Each name is read one character at a time, framed by an end token: ``<eos> a n n a <eos>``. The
model (Embedding -> recurrent layer -> Linear, ``models.CharLM``) predicts every next character,
trained with cross-entropy; padded positions carry the target -100 and are ignored by the loss.

We report the held-out loss in nats per character for each cell next to a count-based bigram
model (``baselines.bigram_nll``: P(next char | this char) from counts), the bar any recurrent
model must clear, and sample names at several temperatures (low = safe and common, high = varied).

    python examples/char_names.py
    python examples/char_names.py --cells lstm --epochs 5 --hidden 256
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn.baselines import bigram_nll
from tinygrad_rnn.data import CharTokenizer, batches
from tinygrad_rnn.datasets import names
from tinygrad_rnn.generate import generate
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.models import CharLM
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import fit

IGNORE = -100  # cross_entropy's default ignore_index


def encode_names(tokenizer: CharTokenizer, words: list[str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Return the framed id sequences and the padded (inputs, targets): targets are the inputs
    shifted by one, -100 past the end of each name."""
    eos = tokenizer.eos_id
    seqs = [np.concatenate([[eos], tokenizer.encode(w), [eos]]) for w in words]
    width = max(len(s) for s in seqs) - 1
    x = np.full((len(seqs), width), eos, dtype=np.int64)
    y = np.full((len(seqs), width), IGNORE, dtype=np.int64)
    for i, s in enumerate(seqs):
        x[i, :len(s) - 1], y[i, :len(s) - 1] = s[:-1], s[1:]
    return seqs, x, y


def held_out_nll(model: CharLM, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Mean cross-entropy per predicted character (every character weighs the same)."""
    model.eval()
    total = 0.0
    with tg.no_grad():
        for bx, by in batches(x, y, batch_size=batch_size, shuffle=False):
            logits, _ = model(bx)
            total += cross_entropy(logits, by, reduction="sum").item()
    model.train()
    return total / int((y != IGNORE).sum())


def main() -> None:
    p = parser(__doc__.splitlines()[0], "char_names")
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated subset of rnn,lstm,gru")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    args = p.parse_args()

    corpus = names()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(corpus))
    if args.quick:
        order = order[:600]
        args.epochs, args.hidden, args.embed = 2, 32, 16
    n_val = len(order) // 10
    val_words = [corpus[i] for i in order[:n_val]]
    train_words = [corpus[i] for i in order[n_val:]]
    tokenizer = CharTokenizer(specials=("<eos>",)).fit(corpus)
    train_seqs, train_x, train_y = encode_names(tokenizer, train_words)
    val_seqs, val_x, val_y = encode_names(tokenizer, val_words)
    baseline = bigram_nll(train_seqs, val_seqs, tokenizer.vocab_size)
    print(f"{len(train_words)} training names, {len(val_words)} held out, vocabulary {tokenizer.vocab_size}")
    print(f"bigram baseline: {baseline:.4f} nats/char")

    order_rng = np.random.default_rng(args.seed)

    def train_batches():
        for bx, by in batches(train_x, train_y, batch_size=args.batch, seed=order_rng):
            width = int((by != IGNORE).sum(axis=1).max())  # drop columns that are padding everywhere
            yield bx[:, :width], by[:, :width]

    results, curves = {}, {}
    for cell in args.cells.split(","):
        tg.manual_seed(args.seed)
        model = CharLM(tokenizer.vocab_size, embed=args.embed, hidden=args.hidden, cell=cell)
        optimizer = Adam(model.parameters(), lr=args.lr)
        first = held_out_nll(model, val_x, val_y)
        with Timer() as timer:
            history = fit(model, cross_entropy, optimizer, train_batches, epochs=args.epochs,
                          clip=1.0, progress=progress_bar(), compile=not args.no_compile)
        final = held_out_nll(model, val_x, val_y)
        results[cell] = (final, timer.seconds, model)
        curves[cell] = history.train_loss
        report_loss(cell, first, final)
        print(f"{cell:>4}: held-out {final:.4f} nats/char ({timer.seconds:.0f} s, "
              f"{model.num_parameters()} parameters)")

    print(f"\nheld-out loss (nats/char); bigram baseline {baseline:.4f}")
    for cell, (nll, seconds, _) in results.items():
        print(f"  {cell:>4}  {nll:.4f}  ({nll - baseline:+.4f} vs bigram)  [{seconds:.0f} s]")
    for cell, (_, _, model) in results.items():
        print(f"\nsamples from the {cell.upper()}:")
        for temperature in (0.5, 0.8, 1.0, 1.3):
            samples = [generate(model, tokenizer, max_len=20, temperature=temperature, seed=args.seed + k)
                       for k in range(8)]
            print(f"  T={temperature}: " + ", ".join(samples))
    save_curves(args, curves, "epoch", "training loss (nats/char)", "Character-level names")


if __name__ == "__main__":
    main()
