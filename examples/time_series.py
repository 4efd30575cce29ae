"""Per-step regression with a vanilla RNN: a synthetic linear series, then yearly sunspots.

The model reads a sequence and predicts one number at every step (``Linear`` on each hidden
state), trained with mean squared error.

(a) Synthetic: inputs x_t ~ N(0, I₂) and target y_t = 0.5·x_t[0] − 0.3·x_t[1] + 0.8·x_{t−1}[0]
    + 0.4·x_{t−2}[1], a fixed linear combination of the current and the two previous inputs. A
    model that only sees x_t can do no better than MSE 0.8² + 0.4² = 0.80; the RNN must remember.
(b) Sunspots (yearly means 1700-2008): train on the past, then forecast each of the last
    ``--test-years`` years one step ahead (from the observed values before it). Values are
    normalised with the training mean and standard deviation; errors are reported in sunspot
    units next to the naive forecast "next year = this year".

    python examples/time_series.py
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss, save_curves

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.data import batches
from tinygrad_rnn.datasets import sunspots
from tinygrad_rnn.losses import mse_loss
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.train import evaluate, fit

WEIGHTS_NOW = np.array([0.5, -0.3])   # on x_t
WEIGHT_LAG1 = 0.8                      # on x_{t-1}[0]
WEIGHT_LAG2 = 0.4                      # on x_{t-2}[1]


class PerStepRegressor(nn.Module):
    """RNN over (N, T, F) -> Linear on every hidden state -> (N, T) predictions."""

    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.rnn = nn.RNN(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, state=None):
        out, h = self.rnn(x, state)
        return self.head(out).reshape(out.shape[0], out.shape[1]), h


def f32(a: np.ndarray) -> tg.Tensor:
    return tg.Tensor(np.asarray(a, dtype=np.float32))


def errors(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    d = pred - target
    return {"MSE": float(np.mean(d ** 2)), "MAE": float(np.mean(np.abs(d))),
            "RMSE": float(np.sqrt(np.mean(d ** 2)))}


def print_errors(rows: dict[str, dict[str, float]]) -> None:
    print(f"  {'':<22}{'MSE':>10}{'MAE':>9}{'RMSE':>9}")
    for name, e in rows.items():
        cells = [f"{e[k]:.3f}" if k in e else "-" for k in ("MSE", "MAE", "RMSE")]
        print(f"  {name:<22}{cells[0]:>10}{cells[1]:>9}{cells[2]:>9}")


def synthetic(n: int, T: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, T, 2))
    y = x @ WEIGHTS_NOW
    y[:, 1:] += WEIGHT_LAG1 * x[:, :-1, 0]
    y[:, 2:] += WEIGHT_LAG2 * x[:, :-2, 1]
    return x, y


def train(model, train_xy, test_xy, epochs, lr, seed, loss_fn=mse_loss, compile=True):  # noqa: A002
    """fit() over shuffled mini-batches of 32; returns (test loss before, history)."""
    optimizer = Adam(model.parameters(), lr=lr)
    order_rng = np.random.default_rng(seed)
    train_data = lambda: ((f32(x), f32(y)) for x, y in batches(*train_xy, batch_size=32, seed=order_rng))  # noqa: E731
    test_data = [(f32(test_xy[0]), f32(test_xy[1]))]
    first, _ = evaluate(model, loss_fn, test_data)
    history = fit(model, loss_fn, optimizer, train_data, val_data=test_data, epochs=epochs,
                  clip=1.0, progress=progress_bar(), compile=compile)
    return first, history


def part_a(args) -> list[float]:
    print("(a) synthetic linear series, vanilla RNN")
    rng = np.random.default_rng(args.seed)
    n_train, T = (128, 20) if args.quick else (1024, 40)
    train_xy, test_xy = synthetic(n_train, T, rng), synthetic(256, T, rng)
    tg.manual_seed(args.seed)
    model = PerStepRegressor(2, args.hidden)
    first, history = train(model, train_xy, test_xy, 3 if args.quick else 30, 5e-3, args.seed,
                           compile=not args.no_compile)
    report_loss("synthetic", first, history.val_loss[-1])
    with tg.no_grad():
        pred = model(f32(test_xy[0]))[0].numpy()
    y = test_xy[1]
    print_errors({
        "RNN": errors(pred, y),
        "predict 0 (the mean)": errors(np.zeros_like(y), y),
        "last value y[t-1]": errors(y[:, :-1], y[:, 1:]),
        "best memoryless": {"MSE": WEIGHT_LAG1 ** 2 + WEIGHT_LAG2 ** 2,
                            "RMSE": float(np.hypot(WEIGHT_LAG1, WEIGHT_LAG2))},
    })
    return history.val_loss


def part_b(args) -> list[float]:
    years, values = sunspots()
    split = len(values) - args.test_years
    mean, std = values[:split].mean(), values[:split].std()
    z = (values - mean) / std
    print(f"\n(b) sunspots: train on {years[0]}-{years[split - 1]}, "
          f"forecast {years[split]}-{years[-1]} one year ahead")
    # Training windows: input z[s..s+W-1], target z[s+1..s+W], all inside the training years.
    W = 40
    starts = np.arange(0, split - W)
    train_xy = (np.stack([z[s:s + W] for s in starts])[..., None], np.stack([z[s + 1:s + W + 1] for s in starts]))
    # Test: read the whole series up to the year before each forecast, score the last test_years.
    full_x, full_y = z[None, :-1, None], z[None, 1:]
    k = args.test_years
    tail_mse = lambda out, y: mse_loss(out[:, -k:], y[:, -k:])  # noqa: E731
    tg.manual_seed(args.seed)
    model = PerStepRegressor(1, args.hidden)
    first, history = train(model, train_xy, (full_x, full_y), 5 if args.quick else 150, 5e-3,
                           args.seed, loss_fn=tail_mse, compile=not args.no_compile)
    report_loss("sunspots", first, history.val_loss[-1])
    with tg.no_grad():
        pred = model(f32(full_x))[0].numpy()[0, -k:] * std + mean
    truth = values[-k:]
    print_errors({"RNN": errors(pred, truth), "last value": errors(values[-k - 1:-1], truth),
                  "training mean": errors(np.full(k, mean), truth)})
    return history.val_loss


def main() -> None:
    p = parser(__doc__.splitlines()[0], "time_series")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--test-years", type=int, default=40)
    args = p.parse_args()
    with Timer() as timer:
        curves = {"synthetic (a)": part_a(args), "sunspots (b)": part_b(args)}
    print(f"wall time: {timer.seconds:.1f} s")
    save_curves(args, curves, "epoch", "test MSE (normalised)", "Vanilla RNN regression")


if __name__ == "__main__":
    main()
