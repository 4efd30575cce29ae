"""Keras-style ``fit``/``predict`` on arrays: next-value regression on a synthetic series.

The series is a sum of two sines with noise. Each sample is a window of ``--window`` values and
its target the value that follows. The model is an ``nn.Sequential``: an RNN whose nonlinearity
is a command-line argument (``tanh``, ``relu`` or ``sigmoid``), ``nn.LastOutput`` to keep only the
last step, and a ``Linear`` head. ``fit`` holds out the last 20% of the training windows for
validation, stops early when the validation loss stops improving (keeping the best weights),
and ``predict`` forecasts the held-out end of the series, compared with "next = last".

    python examples/fit_predict_series.py --activation tanh
"""
from __future__ import annotations

import numpy as np

from _common import Timer, parser, progress_bar, report_loss

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.callbacks import EarlyStopping


def windows(series: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """X (N, width, 1) of consecutive values and y (N, 1), the value after each window."""
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], width)[..., None]
    return X.astype(np.float32), series[width:, None].astype(np.float32)


def main() -> None:
    p = parser(__doc__.splitlines()[0], "fit_predict_series")
    p.add_argument("--activation", default="tanh", choices=["tanh", "relu", "sigmoid"])
    p.add_argument("--window", type=int, default=24)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args()
    steps = 2000
    if args.quick:
        steps, args.epochs, args.hidden, args.window = 400, 4, 8, 12

    rng = np.random.default_rng(args.seed)
    t = np.arange(steps)
    series = np.sin(2 * np.pi * t / 50) + 0.5 * np.sin(2 * np.pi * t / 17) + 0.1 * rng.standard_normal(steps)
    X, y = windows(series, args.window)
    n_test = len(X) // 5
    X_train, y_train, X_test, y_test = X[:-n_test], y[:-n_test], X[-n_test:], y[-n_test:]

    tg.manual_seed(args.seed)
    model = nn.Sequential(
        nn.LastOutput(nn.RNN(1, args.hidden, nonlinearity=args.activation, batch_first=True)),
        nn.Linear(args.hidden, 1),
    )
    first = model.evaluate(X_test, y_test, loss="mse")
    with Timer() as timer:
        history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.2,
                            callbacks=[EarlyStopping(patience=5, restore_best_weights=True)],
                            progress=progress_bar(), plot=None if args.no_plot else args.plot,
                            compile=not args.no_compile)
    forecast = model.predict(X_test)
    final = float(np.mean((forecast - y_test) ** 2))
    naive = float(np.mean((X_test[:, -1] - y_test) ** 2))
    report_loss(args.activation, first, final)
    print(f"{args.activation}: {len(history.train_loss)} epochs in {timer.seconds:.1f} s; held-out MSE "
          f"{final:.4f}, naive 'next = last' {naive:.4f}; forecast shape {forecast.shape}")


if __name__ == "__main__":
    main()
