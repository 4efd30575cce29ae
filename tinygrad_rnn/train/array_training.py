"""Keras-style training on NumPy arrays: ``fit(X, y)``, ``evaluate(X, y)``, ``predict(X)``.

``nn.Sequential`` has these as methods; they work for any model called as ``model(x)`` (and
``model(x, mask=...)`` for variable-length sequences). ``X`` is an array ``(N, ...)`` or a list of
N sequences of different lengths, which are padded at the end (zeros) to the longest and passed
on with a ``mask`` ``(N, L)`` (True on data), so recurrent layers leave their state unchanged on
padding; arrays are batch-first as in Keras (recurrent layers need ``batch_first=True``).
Variable-length integer targets are padded with -100, which ``cross_entropy`` ignores.

The loss is ``loss=`` ("cross_entropy", "mse", "l1", "bce" or a callable ``loss(output, y)``),
by default cross-entropy for integer ``y`` and mean squared error for float ``y``; the optimizer
defaults to Adam(lr=1e-3) (Keras' default), created once and kept on the model across calls.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import losses
from ..random import rng
from ..autograd.tensor import Tensor, no_grad

__all__ = ["fit_arrays", "evaluate_arrays", "predict_arrays", "as_padded"]

IGNORE_INDEX = -100
LOSSES: dict[str, Callable] = {
    "cross_entropy": losses.cross_entropy, "mse": losses.mse_loss, "l1": losses.l1_loss,
    "bce": losses.binary_cross_entropy_with_logits,
}


def as_padded(X: Any, name: str = "X", pad_value: float = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """An array as it is, or a list of sequences padded at the end to the longest, with the mask
    ``(N, L)`` of the data positions (None when nothing was padded)."""
    if isinstance(X, Tensor):
        X = X.data
    if isinstance(X, np.ndarray):
        if X.dtype.kind not in "biuf" or X.ndim == 0:
            raise TypeError(f"{name} must be a numeric array with a sample axis, got dtype {X.dtype}, shape {X.shape}")
        return X, None
    if not isinstance(X, (list, tuple)) or not X:
        raise TypeError(f"{name} must be a NumPy array or a non-empty list of sequences, got {type(X).__name__}")
    seqs = [np.asarray(s) for s in X]
    for i, s in enumerate(seqs):
        if s.ndim == 0 or s.dtype.kind not in "biuf" or len(s) == 0:
            raise ValueError(f"{name}[{i}] must be a non-empty numeric sequence, got {s!r:.60}")
        if s.shape[1:] != seqs[0].shape[1:]:
            raise ValueError(f"{name}[{i}] has feature shape {s.shape[1:]}, but {name}[0] has {seqs[0].shape[1:]}")
    lengths = np.array([len(s) for s in seqs])
    dtype = np.result_type(*seqs)
    if (lengths == lengths[0]).all():
        return np.stack(seqs).astype(dtype), None
    out = np.full((len(seqs), lengths.max()) + seqs[0].shape[1:], pad_value, dtype=dtype)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, np.arange(lengths.max())[None, :] < lengths[:, None]


def _model_dtype(model: Any) -> np.dtype:
    for p in model.parameters():
        return p.dtype
    return np.dtype(np.float32)


def _inputs(model: Any, X: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    X, mask = as_padded(X, name)
    if X.dtype.kind == "f" or (X.dtype.kind == "b"):
        X = X.astype(_model_dtype(model))
    _check_layout(model, X, name)
    return X, mask


def _check_layout(model: Any, X: np.ndarray, name: str) -> None:
    for path, m in model.named_modules():
        if getattr(m, "returns_state", False) and not m.batch_first and X.ndim >= 2:
            raise ValueError(f"fit/predict: {name} is batch-first (N, L, ...) as in Keras, but the sequence layer "
                             f"'{path}' ({type(m).__name__}) has batch_first=False; build it with batch_first=True")


def _targets(model: Any, y: Any, n: int, name: str = "y") -> np.ndarray:
    if isinstance(y, (list, tuple)) and y and np.ndim(y[0]) >= 1 and len({np.shape(t) for t in y}) > 1:
        padded, _ = as_padded(y, name, pad_value=IGNORE_INDEX)
        if padded.dtype.kind not in "iu":
            raise ValueError(f"{name}: variable-length targets must be integer classes (padded with -100, which "
                             f"cross_entropy ignores); float sequences must all have the same length")
        y = padded
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if y.ndim == 0 or y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array with a sample axis, got dtype {y.dtype}, shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"X and {name} must have the same number of samples, got {n} and {len(y)}")
    if y.dtype.kind in "fb":
        y = y.astype(_model_dtype(model))
    return y


def _loss_fn(model: Any, loss: Any, y: np.ndarray) -> Callable:
    if loss is None:
        loss = getattr(model, "loss_fn", None) or ("cross_entropy" if y.dtype.kind in "iu" else "mse")
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable loss(output, y), got {loss!r}")
        loss = LOSSES[loss]
    if not callable(loss):
        raise TypeError(f"loss must be a name or a callable loss(output, y), got {type(loss).__name__}")
    return loss


def _batches(X: np.ndarray, mask: np.ndarray | None, y: np.ndarray | None, batch_size: int,
             order: np.ndarray) -> list:
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x = X[idx] if mask is None else {"x": X[idx], "mask": mask[idx]}
        out.append((x, None if y is None else y[idx]))
    return out


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    return int(batch_size)


def fit_arrays(model: Any, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, *, loss: Any = None,
               optimizer: Any = None, validation_data: tuple | None = None, validation_split: float = 0.0,
               shuffle: bool = True, clip: float | None = None, callbacks: Iterable[Any] = (),
               progress: bool = True, plot: str | Path | None = None, compile: bool = True) -> Any:  # noqa: A002
    """Train ``model`` on arrays for ``epochs`` passes in mini-batches of ``batch_size``; returns the
    :class:`~tinygrad_rnn.train.History` (``history.history`` maps "loss"/"val_loss" to per-epoch lists).

    ``validation_split`` holds out the LAST fraction of the samples (before shuffling, as Keras
    does); ``validation_data=(X_val, y_val)`` takes precedence. ``shuffle`` draws a new order every
    epoch from the library generator (``tinygrad_rnn.manual_seed``). ``clip``: max global gradient
    norm. ``callbacks``: e.g. ``EarlyStopping``, ``ModelCheckpoint`` (:mod:`tinygrad_rnn.train.callbacks`).
    ``plot``: a path to save the loss curves to (needs matplotlib). The step is compiled
    (:func:`tinygrad_rnn.compile`) unless ``compile=False``; a tqdm bar shows progress.
    """
    from .optim import Adam
    from .loop import fit
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    batch_size = _check_batch_size(batch_size)
    if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be a fraction in [0, 1), got {validation_split!r}")
    X_arr, mask = _inputs(model, X, "X")
    y_arr = _targets(model, y, len(X_arr))
    loss_fn = _loss_fn(model, loss, y_arr)
    n = len(X_arr)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        Xv, mv = _inputs(model, validation_data[0], "validation_data[0]")
        yv = _targets(model, validation_data[1], len(Xv), "validation_data[1]")
        val = _batches(Xv, mv, yv, batch_size, np.arange(len(Xv)))
    elif validation_split:
        n_val = int(math.floor(n * validation_split))
        if n_val < 1 or n_val >= n:
            raise ValueError(f"validation_split={validation_split} of {n} samples leaves no validation or no "
                             "training samples")
        cut = n - n_val
        val = _batches(X_arr[cut:], None if mask is None else mask[cut:], y_arr[cut:], batch_size,
                       np.arange(n_val))
        X_arr, y_arr = X_arr[:cut], y_arr[:cut]
        mask = None if mask is None else mask[:cut]
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None) or Adam(model.parameters(), lr=1e-3)
    object.__setattr__(model, "optimizer", optimizer)   # kept for the next fit, like Keras' compile
    object.__setattr__(model, "loss_fn", loss_fn)
    count = len(X_arr)

    def epoch_batches() -> list:
        order = rng().permutation(count) if shuffle else np.arange(count)
        return _batches(X_arr, mask, y_arr, batch_size, order)
    history = fit(model, loss_fn, optimizer, epoch_batches, val_data=val, epochs=int(epochs), clip=clip,
                  progress=progress, compile=compile, callbacks=callbacks)
    if plot is not None:
        history.plot(plot)
    return history


def evaluate_arrays(model: Any, X: Any, y: Any, batch_size: int = 32, loss: Any = None) -> float:
    """The mean loss over ``X, y`` in eval mode (batches weighted by their size), without a graph."""
    X_arr, mask = _inputs(model, X, "X")
    y_arr = _targets(model, y, len(X_arr))
    loss_fn = _loss_fn(model, loss, y_arr)
    batch_size = _check_batch_size(batch_size)
    total = 0.0
    for x, yb in _batches(X_arr, mask, y_arr, batch_size, np.arange(len(X_arr))):
        total += float(loss_fn(_run(model, x), yb).item()) * len(yb)
    return total / len(X_arr)


def predict_arrays(model: Any, X: Any, batch_size: int = 32) -> np.ndarray:
    """``model``'s outputs for every sample of ``X`` in eval mode, as one array ``(N, ...)``."""
    X_arr, mask = _inputs(model, X, "X")
    batch_size = _check_batch_size(batch_size)
    outs = [_run(model, x).data for x, _ in _batches(X_arr, mask, None, batch_size, np.arange(len(X_arr)))]
    return np.concatenate(outs, axis=0)


def _run(model: Any, x: Any) -> Tensor:
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            out = model(**x) if isinstance(x, dict) else model(x)
    finally:
        model.train(was_training)
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, Tensor):
        raise TypeError(f"predict: model(x) must return a Tensor (or (output, state)), got {type(out).__name__}")
    return out
