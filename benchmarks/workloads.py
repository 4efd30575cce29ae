"""The benchmark workloads and the one problem instance (weights + data) every implementation shares.

A training step is: forward over all T steps, the loss, and backward to every parameter (no
optimizer update, so repeated steps compute exactly the same thing). Everything is float32 and
time-major: inputs ``(T, N, ...)``, outputs ``(T, N, H)``.

Parameters are named as PyTorch names them for the same model::

    embedding.weight                      (V, E)       char-LM only
    rnn.weight_ih_l0 / rnn.weight_hh_l0   (G*H, I) / (G*H, H)
    rnn.bias_ih_l0 / rnn.bias_hh_l0       (G*H,)
    head.weight / head.bias               (O, H) / (O,)   char-LM and regression only

Tasks:

- ``charlm``: tokens -> Embedding -> RNN -> Linear(H, V) -> cross-entropy averaged over all T*N
  positions.
- ``regression``: x -> RNN -> Linear(H, 1) on the last hidden state -> mean squared error.
- ``meansq``: x -> RNN -> mean over T, N, H of out².
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

CELLS = ("lstm", "gru", "rnn")
TASKS = ("charlm", "regression", "meansq")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


@dataclass(frozen=True)
class Workload:
    """One benchmark configuration. ``input_size`` is the embedding width for ``charlm``."""

    name: str
    cell: str
    task: str
    input_size: int
    hidden: int
    batch: int
    steps: int
    vocab: int = 0          # charlm only
    repeats: int = 20       # timed repetitions of the default run
    description: str = ""

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"Workload {self.name}: cell must be one of {CELLS}, got {self.cell!r}")
        if self.task not in TASKS:
            raise ValueError(f"Workload {self.name}: task must be one of {TASKS}, got {self.task!r}")
        if self.task == "charlm" and self.vocab < 2:
            raise ValueError(f"Workload {self.name}: charlm needs vocab >= 2, got {self.vocab}")

    @property
    def tokens_per_step(self) -> int:
        """Sequence positions processed by one training step (batch × T)."""
        return self.batch * self.steps

    def sizes(self) -> str:
        text = f"{self.cell.upper()} I={self.input_size} H={self.hidden} N={self.batch} T={self.steps}"
        return f"V={self.vocab} " + text if self.task == "charlm" else text


def _char_lm(name: str, cell: str) -> Workload:
    return Workload(name, cell, "charlm", input_size=64, hidden=128, batch=32, steps=25, vocab=65,
                    repeats=20, description=f"char LM: Embedding(65, 64) -> {cell.upper()}(64, 128) "
                                            "-> Linear(128, 65) -> cross-entropy at every step")


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    _char_lm("W1", "lstm"),
    _char_lm("W1-gru", "gru"),
    _char_lm("W1-rnn", "rnn"),
    Workload("W2", "rnn", "regression", input_size=3, hidden=32, batch=1, steps=20, repeats=50,
             description="tiny regression: tanh RNN(3, 32) -> Linear(32, 1) at the last step -> MSE"),
    Workload("W3", "lstm", "meansq", input_size=256, hidden=512, batch=64, steps=50, repeats=10,
             description="large: LSTM(256, 512), loss = mean(out²)"),
    Workload("W4", "lstm", "meansq", input_size=32, hidden=64, batch=16, steps=1000, repeats=10,
             description="long: LSTM(32, 64) over 1000 steps, loss = mean(out²)"),
    Workload("W4-10k", "lstm", "meansq", input_size=32, hidden=64, batch=16, steps=10_000, repeats=2,
             description="very long (opt-in): LSTM(32, 64) over 10,000 steps, loss = mean(out²)"),
)}

DEFAULT_WORKLOADS = ("W1", "W1-gru", "W1-rnn", "W2", "W3", "W4")


def quick(w: Workload) -> Workload:
    """A tiny version of ``w`` (same cell and task) for smoke tests: runs in milliseconds."""
    return dataclasses.replace(
        w, input_size=min(w.input_size, 4), hidden=min(w.hidden, 5), batch=min(w.batch, 2),
        steps=min(w.steps, 30 if w.steps >= 1000 else 4), vocab=min(w.vocab, 7), repeats=3)


@dataclass
class Problem:
    """Weights and data shared by every implementation of one workload (all NumPy, float32)."""

    workload: Workload
    weights: dict[str, np.ndarray]
    inputs: np.ndarray       # int64 tokens (T, N) for charlm, float32 (T, N, I) otherwise
    targets: np.ndarray | None  # int64 (T, N) for charlm, float32 (N, 1) for regression


def make_problem(w: Workload, seed: int = 0) -> Problem:
    """Draw weights with PyTorch's initialisation scheme and random data, from ``seed`` alone."""
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def uniform(shape: tuple, fan: int) -> np.ndarray:
        bound = 1.0 / np.sqrt(fan)
        return rng.uniform(-bound, bound, size=shape).astype(f32)

    gh = GATES[w.cell] * w.hidden
    weights: dict[str, np.ndarray] = {}
    if w.task == "charlm":
        weights["embedding.weight"] = rng.standard_normal((w.vocab, w.input_size)).astype(f32)
    weights["rnn.weight_ih_l0"] = uniform((gh, w.input_size), w.hidden)
    weights["rnn.weight_hh_l0"] = uniform((gh, w.hidden), w.hidden)
    weights["rnn.bias_ih_l0"] = uniform((gh,), w.hidden)
    weights["rnn.bias_hh_l0"] = uniform((gh,), w.hidden)
    if w.task in ("charlm", "regression"):
        out = w.vocab if w.task == "charlm" else 1
        weights["head.weight"] = uniform((out, w.hidden), w.hidden)
        weights["head.bias"] = uniform((out,), w.hidden)

    if w.task == "charlm":
        inputs = rng.integers(0, w.vocab, size=(w.steps, w.batch), dtype=np.int64)
        targets = rng.integers(0, w.vocab, size=(w.steps, w.batch), dtype=np.int64)
    else:
        inputs = rng.standard_normal((w.steps, w.batch, w.input_size)).astype(f32)
        targets = rng.standard_normal((w.batch, 1)).astype(f32) if w.task == "regression" else None
    return Problem(w, weights, inputs, targets)
