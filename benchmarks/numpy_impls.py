"""The two NumPy implementations under test: the composed engine and the handwritten analytic BPTT.

Every implementation has the same small interface (see ``Implementation``): it is built from a
shared :class:`~workloads.Problem`, ``step()`` runs one training step (what is timed) and
``loss_and_grads()`` runs one step and returns the loss and every parameter gradient as NumPy
arrays under PyTorch's parameter names (what the correctness check compares).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tinygrad_rnn import analytic, nn, ops
from tinygrad_rnn.compile import compile as compile_fn
from tinygrad_rnn.tensor import Tensor
from workloads import Problem

try:  # another module of the library; compose the loss from ops where it is missing
    from tinygrad_rnn.losses import cross_entropy as _engine_cross_entropy
except ImportError:  # pragma: no cover - depends on the library's state
    _engine_cross_entropy = None


class Implementation:
    """Interface of one benchmarked implementation of a workload."""

    name = "?"

    def __init__(self, problem: Problem):
        self.problem = problem

    def step(self) -> None:
        """One training step: forward over T, loss, backward to every parameter."""
        self.loss_and_grads()

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        raise NotImplementedError


# ----- the composed engine -------------------------------------------------------------------------
def engine_cross_entropy(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean over positions of -log softmax(logits)[target], class axis last."""
    if _engine_cross_entropy is not None:
        return _engine_cross_entropy(logits, targets)
    log_p = ops.log_softmax(logits, axis=-1)
    rows = np.indices(targets.shape, sparse=True)
    return -log_p[(*rows, targets)].mean()


class _EngineModel(nn.Module):
    """The workload's model from library modules; parameter names match ``Problem.weights``."""

    def __init__(self, problem: Problem):
        super().__init__()
        w = problem.workload
        if w.task == "charlm":
            self.embedding = nn.Embedding(w.vocab, w.input_size)
        layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[w.cell]
        self.rnn = layer(w.input_size, w.hidden)
        if w.task != "meansq":
            self.head = nn.Linear(w.hidden, w.vocab if w.task == "charlm" else 1)
        self.load_state_dict(problem.weights)

    def loss(self, problem: Problem) -> Tensor:
        return self.loss_of(problem.workload.task, problem.inputs, problem.targets)

    def loss_of(self, task: str, inputs, targets) -> Tensor:
        x = self.embedding(inputs) if task == "charlm" else (
            inputs if isinstance(inputs, Tensor) else Tensor(inputs))
        out, state = self.rnn(x)
        if task == "charlm":
            return engine_cross_entropy(self.head(out), targets)
        if task == "regression":
            h_n = state[0] if isinstance(state, tuple) else state
            diff = self.head(h_n[0]) - targets
            return (diff * diff).mean()
        return (out * out).mean()


class EngineImpl(Implementation):
    """tinygrad_rnn.nn modules; backward is the engine walking the unrolled graph."""

    name = "engine"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.model = _EngineModel(problem)
        self.params = list(self.model.named_parameters())

    def _run(self) -> Tensor:
        for _, p in self.params:
            p.grad = None
        loss = self.model.loss(self.problem)
        loss.backward()
        return loss

    def step(self) -> None:
        self._run()

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        loss = self._run()
        return float(loss.item()), {name: p.grad.copy() for name, p in self.params}


# ----- the handwritten analytic BPTT ---------------------------------------------------------------
def _recurrence(cell: str) -> tuple[Callable, Callable]:
    """(forward, backward) of analytic.py for ``cell`` with one signature for all three cells:
    ``forward(x, weights...) -> (out, h_n, cache)`` and ``backward(d_out, d_h_n, cache) -> grads``."""
    if cell == "lstm":
        def forward(x, w_ih, w_hh, b_ih, b_hh):
            out, h_n, _, cache = analytic.lstm_forward(x, None, None, w_ih, w_hh, b_ih, b_hh)
            return out, h_n, cache

        def backward(d_out, d_h_n, cache):
            return analytic.lstm_backward(d_out, d_h_n, None, cache)
        return forward, backward
    if cell == "gru":
        return (lambda x, *w: analytic.gru_forward(x, None, *w)), analytic.gru_backward
    return (lambda x, *w: analytic.rnn_forward(x, None, *w)), analytic.rnn_backward


class AnalyticImpl(Implementation):
    """analytic.py's forward/backward plus the embedding, head and loss written out in NumPy.

    Loss gradients used (with M positions or elements averaged over):
    cross-entropy dL/dlogits = (softmax(logits) - onehot(y)) / M;  MSE dL/dy = 2 (y - t) / M;
    mean of squares dL/dout = 2 out / M.
    """

    name = "analytic"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.w = {k: v.copy() for k, v in problem.weights.items()}
        self.forward, self.backward = _recurrence(problem.workload.cell)

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        p, w = self.problem, self.w
        task = p.workload.task
        rnn_weights = [w[f"rnn.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        x = w["embedding.weight"][p.inputs] if task == "charlm" else p.inputs
        out, h_n, cache = self.forward(x, *rnn_weights)
        grads: dict[str, np.ndarray] = {}
        d_out = d_h_n = None

        if task == "charlm":
            T, N, H = out.shape
            flat = out.reshape(T * N, H)
            logits = flat @ w["head.weight"].T + w["head.bias"]
            shifted = logits - logits.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            rows, y = np.arange(T * N), p.targets.reshape(-1)
            loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
            d_logits = exp / total
            d_logits[rows, y] -= 1.0
            d_logits /= T * N
            grads["head.weight"] = d_logits.T @ flat
            grads["head.bias"] = d_logits.sum(axis=0)
            d_out = (d_logits @ w["head.weight"]).reshape(T, N, H)
        elif task == "regression":
            pred = h_n @ w["head.weight"].T + w["head.bias"]
            diff = pred - p.targets
            loss = float(np.mean(diff * diff))
            d_pred = (2.0 / diff.size) * diff
            grads["head.weight"] = d_pred.T @ h_n
            grads["head.bias"] = d_pred.sum(axis=0)
            d_h_n = d_pred @ w["head.weight"]
        else:
            loss = float(np.mean(out * out))
            d_out = (2.0 / out.size) * out

        g = self.backward(d_out, d_h_n, cache)
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            grads[f"rnn.{k}_l0"] = g[k]
        if task == "charlm":
            d_embedding = np.zeros_like(w["embedding.weight"])
            np.add.at(d_embedding, p.inputs.reshape(-1), g["x"].reshape(-1, x.shape[-1]))
            grads["embedding.weight"] = d_embedding
        return loss, grads


class CompiledImpl(EngineImpl):
    """The same engine model inside ``tinygrad_rnn.compile``: the step (forward, loss, backward)
    is traced on the first call and replayed afterwards; inputs and targets are its arguments."""

    name = "compiled"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        task = problem.workload.task

        def train_step(inputs, targets):
            loss = self.model.loss_of(task, inputs, targets)
            loss.backward()
            return loss
        self._compiled = compile_fn(train_step)

    def _run(self) -> Tensor:
        for _, p in self.params:
            p.grad = None
        targets = self.problem.targets
        return self._compiled(self.problem.inputs, targets if targets is not None else 0)


NUMPY_IMPLEMENTATIONS = {"engine": EngineImpl, "compiled": CompiledImpl, "analytic": AnalyticImpl}
