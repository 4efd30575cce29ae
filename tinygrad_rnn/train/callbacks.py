"""Callbacks for ``fit`` (``train.fit`` and ``nn.Sequential.fit``), with Keras' names and rules.

A callback has ``on_epoch_end(epoch, history, model) -> bool`` (True stops training after this
epoch; ``epoch`` counts from 0) and optionally ``on_train_end(history, model)``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["EarlyStopping", "ModelCheckpoint"]


def _monitored(history: Any, monitor: str, who: str) -> float:
    values = history.history.get(monitor)
    if not values:
        raise ValueError(f"{who}: monitor={monitor!r} has no value; available: {sorted(history.history)} "
                         "(val_loss needs validation_data or validation_split)")
    return float(values[-1])


class EarlyStopping:
    """Stop when ``monitor`` (lower is better) has not improved by more than ``min_delta`` for
    ``patience`` epochs (Keras' count: ``patience`` 0 and 1 both stop at the first epoch without
    improvement). ``restore_best_weights``: at the end of training, load the weights of the best
    epoch seen. ``stopped_epoch`` is the 0-based epoch training stopped after (None if it did not)."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best_weights: bool = False):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self.best, self.wait, self.stopped_epoch, self.best_state = math.inf, 0, None, None

    def on_epoch_end(self, epoch: int, history: Any, model: Any) -> bool:
        value = _monitored(history, self.monitor, "EarlyStopping")
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_state = model.state_dict()
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, history: Any, model: Any) -> None:
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)


class ModelCheckpoint:
    """Save the model (atomically, :func:`tinygrad_rnn.save`) after every epoch, or with
    ``save_best_only`` only when ``monitor`` improved. ``path`` may contain ``{epoch}`` (from 1)."""

    def __init__(self, path: str | Path, monitor: str = "val_loss", save_best_only: bool = False):
        self.path, self.monitor, self.save_best_only = str(path), monitor, bool(save_best_only)
        self.best = math.inf
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch: int, history: Any, model: Any) -> bool:
        from .checkpoints import save
        if self.save_best_only:
            value = _monitored(history, self.monitor, "ModelCheckpoint")
            if not value < self.best:
                return False
            self.best = value
        path = Path(self.path.format(epoch=epoch + 1))
        save(path, model, epoch=epoch + 1, extra={"history": history.history})
        self.saved.append(path)
        return False
