"""See backpropagation through time: draw an unrolled LSTM, then measure how gradients decay.

Part 1 builds a one-layer LSTM over 3 time steps with tiny sizes, backpropagates a loss on the
last output, and writes ``lstm_unrolled.dot`` and ``lstm_unrolled.svg``: one cluster per time step
(``lstm/l0/fwd/t0`` ...), every tensor labelled with its shape and gradient norm, edges coloured
by the gradient they carried (blue small, red large; grey dashed: none).

Part 2 measures ``||dL/dh_t||`` for a loss on the last step only of a 50-step sequence, so the
gradient can reach earlier states only through the recurrence, for a vanilla tanh RNN and an
LSTM, and prints the norms every 5 steps (and saves ``gradient_flow.png`` if matplotlib is
installed)::

    python examples/visualize_unrolled.py --out /tmp/viz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.nn import LSTM, RNN


def draw_unrolled_lstm(out_dir: Path, seed: int) -> None:
    tg.manual_seed(seed)
    lstm = LSTM(input_size=2, hidden_size=3)
    x = tg.Tensor(np.random.default_rng(seed).standard_normal((3, 1, 2)).astype(np.float32))
    output, _ = lstm(x)
    loss = (output[-1] ** 2).sum()
    viz.retain_grads(loss)               # keep every intermediate gradient for the labels
    loss.backward(retain_graph=True)     # keep the graph so it can be drawn afterwards
    dot = viz.to_dot(loss, params=dict(lstm.named_parameters()), show_grads=True)
    stats = viz.graph_stats(loss)
    print(f"LSTM unrolled over 3 steps: {stats['nodes']} tensors, {stats['edges']} edges, "
          f"depth {stats['depth']}; ops per step: {stats['scopes']['lstm/l0/fwd/t0']}")
    svg = out_dir / "lstm_unrolled.svg"
    try:
        viz.render(dot, svg)
        print(f"wrote {svg} and {svg.with_suffix('.dot')}")
    except viz.GraphvizNotFound as error:
        print(f"note: {error}")
    print("Look for: one cluster per time step; the weight_hh edge into t0 is grey and dashed (it "
          "multiplies the zero initial state, so no gradient flows there); edges get bluer "
          "(smaller gradients) the further a step is from the loss.\n")


def gradient_flow_table(out_dir: Path, steps: int, seed: int) -> None:
    inputs, hidden, batch = 4, 16, 8
    x = np.random.default_rng(seed).standard_normal((steps, batch, inputs)).astype(np.float32)
    tg.manual_seed(seed)
    models = {"RNN (tanh)": RNN(inputs, hidden), "LSTM": LSTM(inputs, hidden)}
    lstm_fb = LSTM(inputs, hidden)
    # A forget-gate bias of +1 (PyTorch's gate order is [i | f | g | o]) keeps σ(f) near 0.73
    # instead of 0.5 at initialisation: the cell state then forgets slowly.
    lstm_fb.bias_hh_l0.data[hidden:2 * hidden] += 1.0
    models["LSTM (forget bias 1)"] = lstm_fb
    flows = {name: viz.gradient_flow(model, x) for name, model in models.items()}

    print(f"||dL/dh_t|| for a loss on the last of {steps} steps (batch {batch}, hidden {hidden}), "
          "every 5th step:")
    width = max(len(name) for name in flows) + 2
    print("     t" + "".join(f"{name:>{width}}" for name in flows))
    for t in sorted(set(range(0, steps, 5)) | {steps - 1}):
        print(f"{t:6d}" + "".join(f"{norms[t]:>{width}.3e}" for norms in flows.values()))
    factors = {name: (norms[0] / norms[-1]) ** (1.0 / (steps - 1)) for name, norms in flows.items()}
    print("average factor per step back in time: "
          + ", ".join(f"{name} x{factor:.3f}" for name, factor in factors.items()))
    print("Look for: every curve decays geometrically (vanishing gradients): each step back "
          "multiplies by the recurrent Jacobian. The vanilla RNN's factor is set by W_hh and "
          "tanh'; the LSTM's by its forget gate along the additive cell path, which at PyTorch's "
          "default initialisation sits near sigma(0) = 0.5 (no better than the RNN), and with the "
          "forget bias at +1 near 0.73: gradient from the loss then reaches far more steps.")
    try:
        path = viz.plot_gradient_flow(flows, out_dir / "gradient_flow.png",
                                      title=f"Gradient flow through {steps} steps, loss on the last")
        print(f"wrote {path}")
    except ImportError as error:
        print(f"note: no plot: {error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=".", help="directory for the .dot/.svg/.png files")
    parser.add_argument("--steps", type=int, default=50, help="sequence length of the gradient-flow comparison")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error(f"--steps must be at least 2, got {args.steps}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    draw_unrolled_lstm(out_dir, args.seed)
    gradient_flow_table(out_dir, args.steps, args.seed)


if __name__ == "__main__":
    main()
