"""Autograd in a few lines: one neuron y = tanh(w·x + b), a squared-error loss, backward, and a
finite-difference check of the gradients.

Run: python examples/autograd_basics.py
"""
import numpy as np

from tinygrad_rnn import Tensor, gradcheck
from tinygrad_rnn import functional as F

x = Tensor(np.array([0.5, -1.0, 2.0]))                         # input (a constant)
w = Tensor(np.array([0.3, 0.8, -0.2]), requires_grad=True)     # weights
b = Tensor(np.array(0.1), requires_grad=True)                  # bias
target = 0.5


def loss_fn(w: Tensor, b: Tensor) -> Tensor:
    y = F.tanh(w @ x + b)          # the neuron
    return (y - target) ** 2       # squared error


loss = loss_fn(w, b)
loss.backward()
print(f"loss     = {loss.item():.6f}")
print(f"dL/dw    = {np.round(w.grad, 6)}")
print(f"dL/db    = {b.grad.item():.6f}")

# By hand: dL/dy = 2(y - t), dy/dz = 1 - y², dz/dw = x, dz/db = 1.
y = np.tanh(w.data @ x.data + b.data)
by_hand = 2 * (y - target) * (1 - y ** 2)
assert np.allclose(w.grad, by_hand * x.data) and np.isclose(b.grad, by_hand)

# Central differences in float64 agree with reverse mode (raises GradcheckError otherwise).
gradcheck(loss_fn, (w, b))
print("OK: gradients match the hand-derived formula and finite differences (gradcheck)")
