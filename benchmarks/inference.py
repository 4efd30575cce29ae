"""W2 inference: a forward pass only (no_grad, batch 1), timed side by side in one process.

    python benchmarks/inference.py                 # medians and ratios; torch rows if installed
    python benchmarks/inference.py --repeats 500 --threads 1

The model is W2's: a tanh RNN(3, 32) over T = 20 steps, then Linear(32, 1) on h_T. Rows:

- ``lean-numpy``: the input projection of all steps as one product, then per step
  ``h = tanh(gx[t] + h W_hhᵀ)`` written with ``out=`` into one buffer, then the head: the fewest
  NumPy calls this forward can take (the yardstick);
- ``engine``: ``nn.RNN`` and ``nn.Linear`` called eagerly under ``no_grad()``;
- ``compiled``: the same call inside ``tinygrad_rnn.compile`` (traced once, then replayed);
- ``torch``: ``torch.nn.RNN`` + ``nn.Linear`` under ``torch.no_grad()`` (when torch is installed).

Every row computes the same prediction from the same weights (checked before timing). Each round
times one call of every row, the first row rotating between rounds; medians are printed with
their ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.runtime import keep_freed_memory

I, H, T = 3, 32, 20


def make_weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)
    shapes = {"rnn.weight_ih_l0": (H, I), "rnn.weight_hh_l0": (H, H), "rnn.bias_ih_l0": (H,),
              "rnn.bias_hh_l0": (H,), "head.weight": (1, H), "head.bias": (1,)}
    return {name: rng.uniform(-k, k, shape).astype(np.float32) for name, shape in shapes.items()}


def lean_numpy(w: dict[str, np.ndarray]):
    w_ih_t, w_hh_t = w["rnn.weight_ih_l0"].T.copy(), w["rnn.weight_hh_l0"].T.copy()
    bias = w["rnn.bias_ih_l0"] + w["rnn.bias_hh_l0"]
    head_t, head_b = w["head.weight"].T.copy(), w["head.bias"]
    state = np.empty((1, H), dtype=np.float32)

    def forward(x: np.ndarray) -> np.ndarray:
        gx = x.reshape(T, I) @ w_ih_t
        gx += bias
        h = state
        h[...] = 0.0
        for t in range(T):
            np.matmul(h, w_hh_t, out=h)
            h += gx[t]
            np.tanh(h, out=h)
        return h @ head_t + head_b
    return forward


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(I, H)
        self.head = nn.Linear(H, 1)

    def forward(self, x):
        _, h_n = self.rnn(x)
        return self.head(h_n[0])


def engine(w: dict[str, np.ndarray]):
    model = Model()
    model.load_state_dict(w)
    model.eval()

    def forward(x):
        with tg.no_grad():
            return model(x).data
    return forward


def compiled(w: dict[str, np.ndarray]):
    model = Model()
    model.load_state_dict(w)
    model.eval()

    @tg.compile
    def predict(x):
        with tg.no_grad():
            return model(x)
    return lambda x: predict(x).data


def torch_forward(w: dict[str, np.ndarray]):
    import torch
    rnn, head = torch.nn.RNN(I, H), torch.nn.Linear(H, 1)
    with torch.no_grad():
        for name, p in list(rnn.named_parameters()):
            p.copy_(torch.from_numpy(w[f"rnn.{name}"]))
        head.weight.copy_(torch.from_numpy(w["head.weight"]))
        head.bias.copy_(torch.from_numpy(w["head.bias"]))

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            _, h_n = rnn(torch.from_numpy(x))
            return head(h_n[0]).numpy()
    return forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    keep_freed_memory()
    tg.runtime.set_blas_threads(args.threads)
    w = make_weights(args.seed)
    rows = {"lean-numpy": lean_numpy(w), "engine": engine(w), "compiled": compiled(w)}
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            rows["torch"] = torch_forward(w)
        except ImportError:
            print("torch is not installed: no torch row", file=sys.stderr)
    rng = np.random.default_rng(args.seed + 1)
    inputs = [rng.standard_normal((T, 1, I)).astype(np.float32) for _ in range(8)]
    for x in inputs[:2]:
        reference = rows["lean-numpy"](x)
        for name, fn in rows.items():
            got = np.asarray(fn(x))
            if not np.allclose(got, reference, rtol=1e-4, atol=1e-5):
                print(f"{name} disagrees with lean-numpy: {got} vs {reference}", file=sys.stderr)
                return 1
    names = list(rows)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.warmup + args.repeats):
        x = inputs[r % len(inputs)]
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            start = time.perf_counter()
            rows[name](x)
            if r >= args.warmup:
                times[name].append(time.perf_counter() - start)
    medians = {n: statistics.median(ts) * 1e6 for n, ts in times.items()}
    print(f"W2 inference (RNN({I}, {H}), T={T}, batch 1, float32, forward only), {args.repeats} "
          f"interleaved rounds, {args.threads} thread(s); median microseconds per call:")
    print(f"| implementation | median µs | × lean-numpy |{' × torch |' if 'torch' in medians else ''}")
    print(f"|---|---|---|{'---|' if 'torch' in medians else ''}")
    for n in names:
        line = f"| {n} | {medians[n]:.1f} | {medians[n] / medians['lean-numpy']:.2f} |"
        if "torch" in medians:
            line += f" {medians[n] / medians['torch']:.2f} |"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
