"""Character language model on a text file, trained with truncated BPTT over contiguous streams.

The corpus (``--data FILE``, or by default the Python standard library's own source code) is cut
into ``--batch`` long contiguous streams (``data.lm_batches``); each training step reads the next
``--seq-len`` characters of every stream. The final LSTM state of one chunk, detached from its
graph, is the initial state of the next (``fit(..., stateful=True)``): the model carries context
across chunk boundaries while gradients stop there, so memory use is bounded by ``--seq-len``.
Gradients are clipped to a global norm of 1 (``--clip``), the usual guard against the occasional
exploding step in recurrent nets.

After every epoch we print the held-out loss (nats/char, the last 10% of the corpus, next to a
bigram baseline) and a sample continuing ``--prime``.

    python examples/char_text.py
    python examples/char_text.py --data my_book.txt --epochs 20 --hidden 512
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn.baselines import bigram_nll
from tinygrad_rnn.data import CharTokenizer, lm_batches
from tinygrad_rnn.datasets import load_text, python_source
from tinygrad_rnn.generate import generate
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.models import CharLM
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit


def main() -> None:
    p = parser(__doc__.splitlines()[0], "char_text")
    p.add_argument("--data", help="a UTF-8 text file (default: the Python standard library source)")
    p.add_argument("--max-chars", type=int, default=300_000, help="use at most this many characters")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=48)
    p.add_argument("--batch", type=int, default=32, help="number of parallel streams")
    p.add_argument("--seq-len", type=int, default=64, help="truncated-BPTT window (characters)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0, help="max global gradient norm")
    p.add_argument("--prime", default=None, help="text to continue when sampling")
    p.add_argument("--sample-len", type=int, default=300)
    args = p.parse_args()
    if args.quick:
        args.max_chars, args.epochs, args.hidden, args.embed = 6_000, 2, 32, 16
        args.batch, args.seq_len, args.sample_len = 8, 16, 60

    text = load_text(args.data)[: args.max_chars] if args.data else python_source(args.max_chars)
    prime = args.prime if args.prime is not None else ("def " if not args.data else text.split()[0])
    tokenizer = CharTokenizer(unknown="unk").fit(text)
    ids = tokenizer.encode(text)
    split = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:split], ids[split:]
    baseline = bigram_nll([train_ids], [val_ids], tokenizer.vocab_size)
    print(f"{len(text):,} characters ({'stdlib source' if not args.data else args.data}), "
          f"vocabulary {tokenizer.vocab_size}; bigram baseline {baseline:.4f} nats/char on held-out text")

    train_data = lambda: lm_batches(train_ids, args.batch, args.seq_len)  # noqa: E731
    val_data = lambda: lm_batches(val_ids, 4, args.seq_len)  # noqa: E731
    tg.manual_seed(args.seed)
    model = CharLM(tokenizer.vocab_size, embed=args.embed, hidden=args.hidden, cell="lstm")
    optimizer = Adam(model.parameters(), lr=args.lr)
    first, _ = evaluate(model, cross_entropy, val_data, stateful=True)
    print(f"before training: held-out {first:.4f} nats/char")
    train_curve, val_curve = [], []
    with Timer() as timer:
        for epoch in range(args.epochs):
            # One fit call per epoch so we can print a sample in between; the state is carried
            # (detached) from chunk to chunk within the epoch.
            history = fit(model, cross_entropy, optimizer, train_data, val_data=val_data, epochs=1,
                          clip=args.clip, stateful=True, progress=progress_bar(), compile=not args.no_compile)
            train_curve += history.train_loss
            val_curve += history.val_loss
            sample = generate(model, tokenizer, prime=prime, max_len=args.sample_len,
                              temperature=0.8, seed=args.seed + epoch)
            print(f"\nepoch {epoch + 1}/{args.epochs}: train {train_curve[-1]:.4f}, "
                  f"held-out {val_curve[-1]:.4f} nats/char ({timer.seconds:.0f} s)")
            print("-" * 60 + "\n" + prime + sample + "\n" + "-" * 60)
    report_loss("lstm", first, val_curve[-1])
    print(f"held-out {val_curve[-1]:.4f} nats/char vs bigram {baseline:.4f}; wall time {timer.seconds:.0f} s")
    save_curves(args, {"train": train_curve, "held-out": val_curve}, "epoch", "loss (nats/char)",
                "Character LM, truncated BPTT")


if __name__ == "__main__":
    main()
