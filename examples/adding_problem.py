"""The adding problem: can a recurrent net remember two numbers across T steps?

Each input is a sequence of T pairs (value, marker): values are drawn from U[0, 1] and the marker
is 1 at exactly two steps (one in each half of the sequence). The target is the sum of the two
marked values, read from the final hidden state. Predicting the constant 1 (the mean of the sum)
gives MSE = Var(U1 + U2) = 2/12 = 1/6 ≈ 0.167: a model must beat that to have learnt anything, and
getting below 0.01 means it really carries the two values across the sequence.

LSTM and GRU get there at T = 100 with a few thousand Adam steps; a tanh RNN usually stays near the
baseline at that length (its gradient through 100 steps vanishes). Every step draws a fresh batch.

    python examples/adding_problem.py                  # T=100, the three cells
    python examples/adding_problem.py --T 50 --steps 2000 --cells lstm
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.datasets import adding_problem
from tinygrad_rnn.losses import mse_loss
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit

BASELINE_MSE = 1 / 6
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class LastStepRegressor(nn.Module):
    """Recurrent layer over (N, T, 2) -> Linear on the last hidden state -> one number per sequence."""

    def __init__(self, cell: str, hidden: int):
        super().__init__()
        self.rnn = CELLS[cell](2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, state=None):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).reshape(-1), None


def as_batch(x: np.ndarray, y: np.ndarray) -> tuple[tg.Tensor, tg.Tensor]:
    return tg.Tensor(x.astype(np.float32)), tg.Tensor(y.astype(np.float32))


def main() -> None:
    p = parser(__doc__.splitlines()[0], "adding_problem")
    p.add_argument("--T", type=int, default=100, help="sequence length")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps per model")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated subset of rnn,lstm,gru")
    args = p.parse_args()
    if args.quick:
        args.T, args.steps, args.hidden = 8, 100, 8
    eval_every = max(args.steps // (4 if args.quick else 20), 1)

    test = [as_batch(*adding_problem(200 if args.quick else 1000, args.T, seed=args.seed + 10_000))]
    print(f"adding problem, T={args.T}: baseline MSE (always predict 1) = {BASELINE_MSE:.4f}")
    curves, results = {}, {}
    for cell in args.cells.split(","):
        tg.manual_seed(args.seed)
        model = LastStepRegressor(cell, args.hidden)
        optimizer = Adam(model.parameters(), lr=args.lr)
        data_rng = np.random.default_rng(args.seed)

        def train_chunk():  # eval_every fresh batches = one "epoch" of fit
            for _ in range(eval_every):
                yield as_batch(*adding_problem(args.batch, args.T, seed=int(data_rng.integers(2**31))))

        first, _ = evaluate(model, mse_loss, test)
        with Timer() as timer:
            history = fit(model, mse_loss, optimizer, train_chunk, val_data=test,
                          epochs=-(-args.steps // eval_every), max_steps=args.steps, clip=1.0,
                          progress=progress_bar(), compile=not args.no_compile)
        final = history.val_loss[-1]
        curves[cell] = history.val_loss
        results[cell] = (final, timer.seconds)
        report_loss(cell, first, final)
        print(f"{cell:>4}: test MSE {final:.4f} after {history.steps} steps ({timer.seconds:.0f} s)")

    print(f"\nT={args.T}, {args.steps} steps, hidden {args.hidden}; baseline MSE {BASELINE_MSE:.4f}")
    for cell, (mse, seconds) in results.items():
        verdict = "solved (< 0.01)" if mse < 0.01 else ("beats baseline" if mse < BASELINE_MSE * 0.9 else "~baseline")
        print(f"  {cell:>4}  test MSE {mse:.4f}  {verdict}  [{seconds:.0f} s]")
    save_curves(args, curves, f"evaluation (every {eval_every} steps)", "test MSE",
                f"Adding problem, T={args.T}")


if __name__ == "__main__":
    main()
