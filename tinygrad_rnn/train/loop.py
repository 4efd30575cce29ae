"""A small training loop: progress bar, validation, clipping, schedules, best checkpoint, Ctrl-C.

``fit`` trains a model called as ``model(x) -> output`` (a plain feed-forward ``forward(x)``,
``nn.Sequential``) or ``model(x, state) -> (output, state)`` (every recurrent model of this
library, and :class:`~tinygrad_rnn.models.CharLM`) with ``loss_fn(output, y) -> scalar``, over
an iterable of ``(x, y)`` batches (``data.batches(X, y, batch_size=...)`` makes them from arrays;
``nn.Sequential.fit(X, y)`` does it all, Keras-style).
With ``stateful=True`` (truncated BPTT over contiguous streams, see ``data.lm_batches``) the final
state of one batch, detached, is the initial state of the next, so information flows forward
across chunk boundaries while gradients stop there.
"""
from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ..compile import CompileError, compile as compile_fn
from ..models import detach_state
from ..random import get_rng_state, set_rng_state
from .optim import clip_grads_with_norm_, get_total_norm
from ..autograd.tensor import Tensor, no_grad

__all__ = ["History", "DivergenceError", "evaluate", "fit", "as_tensor_batch", "model_caller"]

Batch = tuple[Any, Any]


class DivergenceError(FloatingPointError):
    """Raised by :func:`fit` at the first step whose loss is non-finite (or above ``max_loss``) or
    whose gradient norm is non-finite. That step is not taken: parameters, optimizer and scheduler
    are as the previous step left them. ``step`` (counted like ``History.steps``, so the first
    step of a fresh run is 1), ``loss``, ``grad_norm`` (None when the loss already failed),
    ``max_loss`` and the run's ``history`` so far are attributes."""

    def __init__(self, step: int, loss: float, grad_norm: float | None, max_loss: float | None,
                 history: History) -> None:
        self.step, self.loss, self.grad_norm, self.max_loss, self.history = step, loss, grad_norm, max_loss, history
        if not math.isfinite(loss):
            what = f"the loss is {loss}"
        elif grad_norm is None:
            what = f"the loss {loss:.4g} exceeds max_loss {max_loss:.4g}"
        else:
            what = f"the gradient norm is {grad_norm} (loss {loss:.4g})"
        super().__init__(f"fit: training diverged at step {step}: {what}; the step was not taken. Likely "
                         "cause: a learning rate too high (or NaN/inf in the data)")


@dataclass
class History:
    """Per-epoch records returned by :func:`fit` (and saved in checkpoints as ``extra``)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    steps: int = 0
    best_val_loss: float = math.inf
    interrupted: bool = False

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras' view: metric name -> per-epoch values (``loss``, and ``val_loss`` with validation)."""
        out = {"loss": self.train_loss}
        if self.val_loss:
            out["val_loss"] = self.val_loss
        return out

    def plot(self, path: Any, title: str = "Loss") -> Any:
        """Save the loss curves (training, and validation if any) per epoch. Needs matplotlib."""
        try:
            from matplotlib.figure import Figure
        except ImportError as error:
            raise ImportError("History.plot needs matplotlib, the optional 'plot' extra: "
                              "pip install tinygrad_rnn[plot]") from error
        from pathlib import Path
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
        for name, values in self.history.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.legend()
        path = Path(path)
        fig.savefig(path)
        return path

    def to_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                for k, v in self.__dict__.items()}


def _batches(data: Any, name: str = "train_data") -> Iterable[Batch]:
    data = data() if callable(data) else data
    if (isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(a, np.ndarray) for a in data)
            and len(data[0]) != 2):
        raise TypeError(f"fit: {name} must be an iterable of (x, y) batches, got a pair of arrays (X, y); use "
                        "data.batches(X, y, batch_size=32) for batches, or nn.Sequential(...).fit(X, y)")
    return data


def _pair(batch: Any, name: str) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        got = type(batch).__name__ + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        raise TypeError(f"fit: every batch of {name} must be a pair (x, y), got {got}")
    return batch[0], batch[1]


def model_caller(model: Any) -> Callable[[Any, Any], tuple]:
    """``call(x, state) -> (output, new_state)`` for a model with ``forward(x)`` (new_state None)
    or ``forward(x, state) -> (output, state)``; a dict ``x`` is passed as keyword arguments.
    A wrong signature or result says what is expected."""
    expected = ("fit expects model(x) -> output, or model(x, state) -> (output, state) for a recurrent "
                "model that carries a state")
    if not callable(model) or not hasattr(model, "parameters"):
        raise TypeError(f"fit: model must be a Module (callable, with parameters()), got {type(model).__name__}")
    forward = getattr(model, "forward", model)
    try:
        params = inspect.signature(forward).parameters.values()
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = sum(p.default is p.empty for p in positional)
        takes_state = len(positional) >= 2 and positional[1].name not in ("mask", "lengths")
        varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    except (TypeError, ValueError):  # no signature: assume the library's convention
        required, takes_state, varargs = 1, True, True
    if required > 2:
        raise TypeError(f"fit: {type(model).__name__}.forward requires {required} positional arguments; {expected}")
    if required == 0 and not positional and not varargs:
        raise TypeError(f"fit: {type(model).__name__}.forward takes no input; {expected}")

    def call(x: Any, state: Any) -> tuple:
        if isinstance(x, dict):      # keyword inputs, e.g. {"x": ..., "mask": ...}
            result = model(**x)
        else:
            result = model(x, state) if takes_state or varargs or required == 2 else model(x)
        if isinstance(result, Tensor):
            return result, None
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Tensor):
            return result
        got = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        raise TypeError(f"fit: {type(model).__name__} returned {got}; {expected}")
    return call


def evaluate(model: Any, loss_fn: Callable, data: Any, metric: Callable | None = None,
             stateful: bool = False) -> tuple[float, float]:
    """Mean loss (and metric) over ``data`` in eval mode without recording a graph; batches are
    weighted equally."""
    was_training = getattr(model, "training", False)
    call = model_caller(model)
    model.eval()
    losses, metrics, state = [], [], None
    try:
        with no_grad():
            for batch in _batches(data, "val_data"):
                x, y = _pair(batch, "val_data")
                output, new_state = call(x, state)
                state = new_state if stateful else None
                losses.append(float(loss_fn(output, y).item()))
                if metric is not None:
                    metrics.append(float(metric(output, y)))
    finally:
        model.train(was_training)
    if not losses:
        raise ValueError("evaluate: data yielded no batches")
    return float(np.mean(losses)), (float(np.nanmean(metrics)) if metrics else math.nan)


def fit(model: Any, loss_fn: Callable, optimizer: Any, train_data: Any, val_data: Any = None,
        epochs: int = 1, max_steps: int | None = None, clip: float | None = None,
        scheduler: Any = None, checkpoint: Callable[[History], None] | None = None,
        progress: bool = True, stateful: bool = False, metric: Callable | None = None,
        start_step: int = 0, best_val_loss: float = math.inf, max_loss: float | None = None,
        compile: bool = True, callbacks: Iterable[Any] = ()) -> History:  # noqa: A002 - the option users expect

    """Train for ``epochs`` passes over ``train_data`` (or until ``max_steps`` optimizer steps).

    ``train_data``/``val_data``: a re-iterable of ``(x, y)`` batches or a callable returning a
    fresh iterable each epoch (e.g. a seeded shuffle). ``clip``: max global gradient norm.
    ``scheduler.step()`` runs after every optimizer step. ``checkpoint(history)`` is called when
    the validation loss improves (every epoch without validation data) and on Ctrl-C, after which
    ``fit`` returns with ``history.interrupted = True`` instead of raising. That last call already
    sees ``history.interrupted == True``: the state is unvalidated, so save it elsewhere than the
    best checkpoint (as ``tinygrad-rnn train`` does). When resuming, pass the run's
    ``start_step`` and its ``best_val_loss`` so that only a better model counts as an improvement.

    Divergence stops the run: at the first batch whose loss is NaN/inf or above ``max_loss`` (for a
    classifier over V classes, uniform guessing scores ln V; ``tinygrad-rnn train`` stops at 10 ln V),
    or whose gradient norm is NaN/inf, ``fit`` raises :class:`DivergenceError` before the optimizer
    step, so a NaN gradient never reaches the parameters. ``checkpoint`` is not called then: the last one written
    holds the last good state.

    ``compile=True`` (the default) runs each batch's forward, loss and backward through
    :func:`tinygrad_rnn.compile`: traced once per batch shape, replayed afterwards, with the same
    results as eager execution. ``compile=False`` runs them eagerly (e.g. to step through a
    model that reads tensor values in Python).

    ``callbacks``: objects with ``on_epoch_end(epoch, history, model) -> bool`` (True stops the run
    after this epoch) and optionally ``on_train_end(history, model)``, e.g.
    :class:`~tinygrad_rnn.train.callbacks.EarlyStopping`, :class:`~tinygrad_rnn.train.callbacks.ModelCheckpoint`.
    """
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"fit: max_steps must be >= 1, got {max_steps}")
    if clip is not None and not clip > 0:
        raise ValueError(f"fit: clip must be a positive number, got {clip}")
    if max_loss is not None and (isinstance(max_loss, bool) or not isinstance(max_loss, (int, float))
                                 or not max_loss > 0):
        raise ValueError(f"fit: max_loss must be a positive number or None, got {max_loss!r}")
    if not isinstance(best_val_loss, (int, float)) or math.isnan(best_val_loss):
        raise ValueError(f"fit: best_val_loss must be a number (inf for none yet), got {best_val_loss!r}")
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError(f"fit: every callback needs on_epoch_end(epoch, history, model), got {type(cb).__name__}")
    history = History(steps=start_step, best_val_loss=float(best_val_loss))
    call = model_caller(model)
    params = list(model.parameters())

    def forward_backward(x: Any, y: Any, state: Any) -> tuple:
        output, new_state = call(x, state)
        loss = loss_fn(output, y)
        loss.backward()
        return loss, (detach_state(new_state) if stateful else None)
    # Names batches come in many lengths: room for one schedule per length. The first replay of
    # each schedule is checked against eager execution; a model or loss whose Python code reads
    # tensor values cannot be replayed, and then trains eagerly (with a warning).
    train_step = compile_fn(forward_backward, check="first", cache_size=64) if compile else forward_backward

    def step(x: Any, y: Any, state: Any) -> tuple:
        nonlocal train_step
        if train_step is forward_backward:
            return forward_backward(x, y, state)
        rng_state = get_rng_state()
        try:
            return train_step(x, y, state)
        except CompileError as reason:
            warnings.warn(f"fit: training eagerly, the step cannot be compiled: {reason}", stacklevel=3)
            train_step = forward_backward
            set_rng_state(rng_state)   # the same dropout masks as if it had run eagerly
            optimizer.zero_grad()      # an aborted trace may have run backward already
            return forward_backward(x, y, state)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        progress = False
    try:
        for epoch in range(epochs):
            model.train()
            started = time.perf_counter()
            batches = _batches(train_data, "train_data")
            total = len(batches) if hasattr(batches, "__len__") else None
            # A step budget ends the run, not the epoch count (often a placeholder then): no "/total".
            label = f"epoch {epoch + 1}" if max_steps is not None else f"epoch {epoch + 1}/{epochs}"
            bar = tqdm(batches, total=total, desc=label, disable=not progress,
                       leave=False, dynamic_ncols=True)
            running, seen, state = 0.0, 0, None
            for batch in bar:
                x, y = _pair(batch, "train_data")
                optimizer.zero_grad()
                loss, state = step(x, y, state)
                value = float(loss.item())
                if not math.isfinite(value) or (max_loss is not None and value > max_loss):
                    bar.close()  # before the optimizer step: the parameters are untouched
                    raise DivergenceError(history.steps + 1, value, None, max_loss, history)
                # Checked before the step: one NaN gradient would make every parameter NaN.
                norm = get_total_norm([p.grad for p in params])
                if not math.isfinite(norm):
                    bar.close()
                    raise DivergenceError(history.steps + 1, value, norm, max_loss, history)
                if clip is not None:
                    clip_grads_with_norm_(params, clip, norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                history.steps += 1
                running += value
                seen += 1
                bar.set_postfix(loss=f"{running / seen:.4f}", refresh=False)
                if max_steps is not None and history.steps - start_step >= max_steps:
                    break
            bar.close()
            if seen == 0:  # e.g. a generator passed directly is exhausted after the first epoch
                raise ValueError(f"fit: train_data yielded no batches in epoch {epoch + 1}; pass a list or "
                                 "a callable returning a fresh iterable (a generator runs out after one pass)")
            history.train_loss.append(running / seen)
            if val_data is not None:
                val_loss, val_metric = evaluate(model, loss_fn, val_data, metric, stateful)
                history.val_loss.append(val_loss)
                history.val_metric.append(val_metric)
                improved = val_loss < history.best_val_loss
                if improved:
                    history.best_val_loss = val_loss
            else:
                improved = True
            history.epoch_seconds.append(time.perf_counter() - started)
            if progress:
                line = f"{label}: train loss {history.train_loss[-1]:.4f}"
                if val_data is not None:
                    line += f", val loss {history.val_loss[-1]:.4f}"
                    if metric is not None:
                        line += f", val metric {history.val_metric[-1]:.4f}"
                tqdm.write(line + f" ({history.epoch_seconds[-1]:.1f} s)")
            if checkpoint is not None and improved:
                checkpoint(history)
            stop = [bool(cb.on_epoch_end(epoch, history, model)) for cb in callbacks]
            if any(stop):
                break
            if max_steps is not None and history.steps - start_step >= max_steps:
                break
    except KeyboardInterrupt:
        history.interrupted = True
        if checkpoint is not None:
            checkpoint(history)
    for cb in callbacks:
        if callable(getattr(cb, "on_train_end", None)):
            cb.on_train_end(history, model)
    return history


def as_tensor_batch(x: np.ndarray) -> Tensor:
    """Integer ids stay integer; floats become float32 tensors."""
    return Tensor(x if x.dtype.kind in "iub" else x.astype(np.float32))
