"""PyTorch CPU implementations of the workloads (imported only when torch is installed).

- ``torch-fused``: ``torch.nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (ATen's fused recurrent kernels),
  with ``nn.Embedding``, ``nn.Linear`` and ``F.cross_entropy`` / ``F.mse_loss``.
- ``torch-composed``: the cell equations of ``tinygrad_rnn/nn/cells.py`` written with torch ops
  and differentiated by torch autograd: the input projection of all steps hoisted into one matmul,
  then per step ``h @ W_hhᵀ``, ``chunk`` and the gate nonlinearities. It isolates the cost of a
  per-op autograd graph (what the engine does) from the cost of Python + NumPy.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from numpy_impls import Implementation
from workloads import Problem

RNN_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class _TorchBase(Implementation):
    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.inputs = torch.from_numpy(problem.inputs.copy())
        self.targets = None if problem.targets is None else torch.from_numpy(problem.targets.copy())
        self.params: dict[str, torch.Tensor] = {}

    def loss(self) -> torch.Tensor:
        raise NotImplementedError

    def _run(self) -> torch.Tensor:
        for p in self.params.values():
            p.grad = None
        loss = self.loss()
        loss.backward()
        return loss

    def step(self) -> None:
        self._run()

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        loss = self._run()
        return float(loss.item()), {k: p.grad.numpy().copy() for k, p in self.params.items()}

    def _head_loss(self, out: torch.Tensor, h_n: torch.Tensor, head) -> torch.Tensor:
        """The task's loss from the recurrent outputs; ``head(x)`` applies the output layer."""
        task = self.problem.workload.task
        if task == "charlm":
            logits = head(out)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.targets.reshape(-1))
        if task == "regression":
            return F.mse_loss(head(h_n), self.targets)
        return out.pow(2).mean()


class TorchFusedImpl(_TorchBase):
    name = "torch-fused"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        w = problem.workload
        model = torch.nn.Module()
        if w.task == "charlm":
            model.embedding = torch.nn.Embedding(w.vocab, w.input_size)
        layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[w.cell]
        model.rnn = layer(w.input_size, w.hidden)
        if w.task != "meansq":
            model.head = torch.nn.Linear(w.hidden, w.vocab if w.task == "charlm" else 1)
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in problem.weights.items()})
        self.model = model
        self.params = dict(model.named_parameters())

    def loss(self) -> torch.Tensor:
        m = self.model
        x = m.embedding(self.inputs) if self.problem.workload.task == "charlm" else self.inputs
        out, state = m.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state
        return self._head_loss(out, h_n[-1], getattr(m, "head", None))


class TorchComposedImpl(_TorchBase):
    name = "torch-composed"

    def __init__(self, problem: Problem):
        super().__init__(problem)
        self.params = {k: torch.from_numpy(v.copy()).requires_grad_(True)
                       for k, v in problem.weights.items()}

    def _recurrence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same equations, in the same op order, as cells.py + recurrent.py."""
        cell = self.problem.workload.cell
        w_ih, w_hh, b_ih, b_hh = (self.params[f"rnn.{k}_l0"] for k in RNN_KEYS)
        T, N, I = x.shape
        H = w_hh.shape[1]
        gx = x.reshape(T * N, I) @ w_ih.T + (b_ih if cell == "gru" else b_ih + b_hh)
        gx = gx.reshape(T, N, -1)
        whh_t = w_hh.T
        h = c = x.new_zeros(N, H)
        outputs = []
        for t in range(T):
            if cell == "lstm":
                gates = gx[t] + h @ whh_t
                i, f, g, o = gates.chunk(4, dim=-1)
                c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                h = o.sigmoid() * c.tanh()
            elif cell == "gru":
                gh = h @ whh_t + b_hh
                xr, xz, xn = gx[t].chunk(3, dim=-1)
                hr, hz, hn = gh.chunk(3, dim=-1)
                r = (xr + hr).sigmoid()
                z = (xz + hz).sigmoid()
                n = (xn + r * hn).tanh()
                h = n + z * (h - n)
            else:
                h = (gx[t] + h @ whh_t).tanh()
            outputs.append(h)
        return torch.stack(outputs), h

    def loss(self) -> torch.Tensor:
        p = self.params
        task = self.problem.workload.task
        x = p["embedding.weight"][self.inputs] if task == "charlm" else self.inputs
        out, h_n = self._recurrence(x)
        head = (lambda v: v @ p["head.weight"].T + p["head.bias"]) if task != "meansq" else None
        return self._head_loss(out, h_n, head)


TORCH_IMPLEMENTATIONS = {"torch-fused": TorchFusedImpl, "torch-composed": TorchComposedImpl}
