"""An LSTM cell written by hand from Tensor ops, checked against nn.LSTMCell and analytic BPTT.

The whole cell is the function ``lstm_cell`` below (PyTorch's equations and gate order):

    gates = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh,  split into blocks [i | f | g | o]
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
    h' = σ(o) ⊙ tanh(c')

We unroll it over T steps in float64, backpropagate a loss with random upstream gradients, and
compare outputs and every gradient with (1) the library's ``nn.LSTMCell`` using the very same
parameters and (2) ``tinygrad_rnn.analytic``, where the backward pass is written out by hand in
NumPy. Errors are at the level of float64 rounding (~1e-15): three independent routes agree.

    python examples/cells_from_scratch.py
"""
from __future__ import annotations

import numpy as np

from _common import parser

import tinygrad_rnn as tg
from tinygrad_rnn import analytic, nn
from tinygrad_rnn import functional as F


def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, order="ifgo"):
    """One LSTM step from Tensor ops only; every op records its own backward rule.
    (``order`` exists only to build a deliberately wrong cell for the last line of the table.)"""
    H = h.shape[-1]
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    block = {name: k for k, name in enumerate(order)}
    i = gates[:, block["i"] * H:(block["i"] + 1) * H].sigmoid()    # input gate
    f = gates[:, block["f"] * H:(block["f"] + 1) * H].sigmoid()    # forget gate
    g = gates[:, 2 * H:3 * H].tanh()       # candidate cell value
    o = gates[:, 3 * H:4 * H].sigmoid()    # output gate
    c_next = f * c + i * g
    h_next = o * c_next.tanh()
    return h_next, c_next


def unroll(step, x, h0, c0):
    """Run a step function over the time axis of x (T, N, I); returns outputs (T, N, H), h_T, c_T."""
    h, c, outputs = h0, c0, []
    for t in range(x.shape[0]):
        h, c = step(x[t], h, c)
        outputs.append(h)
    return F.stack(outputs, axis=0), h, c


def run_with_grads(step, cell, x, h0, c0, upstream):
    """Forward, backward of Σ out·g_out + Σ h_T·g_h + Σ c_T·g_c; returns values and gradients."""
    for leaf in (x, h0, c0, *cell.parameters()):
        leaf.grad = None
    out, h_n, c_n = unroll(step, x, h0, c0)
    g_out, g_h, g_c = upstream
    loss = (out * g_out).sum() + (h_n * g_h).sum() + (c_n * g_c).sum()
    loss.backward()
    values = {"output": out.numpy(), "h_n": h_n.numpy(), "c_n": c_n.numpy()}
    grads = {"d x": x.grad, "d h0": h0.grad, "d c0": c0.grad}
    grads.update({f"d {name}": p.grad for name, p in cell.named_parameters()})
    return {**values, **{k: v.copy() for k, v in grads.items()}}


def main() -> None:
    args = parser(__doc__.splitlines()[0], "cells_from_scratch").parse_args()
    T, N, I, H = (3, 2, 3, 4) if args.quick else (12, 4, 5, 8)
    tg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cell = nn.LSTMCell(I, H).double()
    x = tg.Tensor(rng.standard_normal((T, N, I)), requires_grad=True)
    h0 = tg.Tensor(rng.standard_normal((N, H)) * 0.5, requires_grad=True)
    c0 = tg.Tensor(rng.standard_normal((N, H)) * 0.5, requires_grad=True)
    upstream = (rng.standard_normal((T, N, H)), rng.standard_normal((N, H)), rng.standard_normal((N, H)))

    p = cell
    by_hand = run_with_grads(
        lambda xt, h, c: lstm_cell(xt, h, c, p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh),
        cell, x, h0, c0, upstream)
    library = run_with_grads(lambda xt, h, c: cell(xt, (h, c)), cell, x, h0, c0, upstream)

    weights = [p.weight_ih.numpy(), p.weight_hh.numpy(), p.bias_ih.numpy(), p.bias_hh.numpy()]
    out, h_n, c_n, cache = analytic.lstm_forward(x.numpy(), h0.numpy(), c0.numpy(), *weights)
    g = analytic.lstm_backward(*upstream, cache)
    reference = {"output": out, "h_n": h_n, "c_n": c_n, "d x": g["x"], "d h0": g["h0"],
                 "d c0": g["c0"], "d weight_ih": g["weight_ih"], "d weight_hh": g["weight_hh"],
                 "d bias_ih": g["bias_ih"], "d bias_hh": g["bias_hh"]}

    print(f"hand-written LSTM cell, T={T} N={N} I={I} H={H}, float64; max |difference|:")
    print(f"{'quantity':<14}{'vs nn.LSTMCell':>16}{'vs analytic':>14}")
    worst = 0.0
    for name, value in by_hand.items():
        e_lib = float(np.max(np.abs(value - library[name])))
        e_ana = float(np.max(np.abs(value - reference[name])))
        worst = max(worst, e_lib, e_ana)
        print(f"{name:<14}{e_lib:>16.2e}{e_ana:>14.2e}")
    print(f"max error: {worst:.3e}")

    # The same comparison catches a classic bug: the input and forget blocks swapped.
    wrong = run_with_grads(
        lambda xt, h, c: lstm_cell(xt, h, c, p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh, "figo"),
        cell, x, h0, c0, upstream)
    swapped = max(float(np.max(np.abs(wrong[k] - library[k]))) for k in wrong)
    print(f"a cell with the i and f blocks swapped differs by: {swapped:.3e}")


if __name__ == "__main__":
    main()
