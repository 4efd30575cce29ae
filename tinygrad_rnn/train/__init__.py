"""Training: the fit loop, losses, optimizers, checkpoints, callbacks and Keras-style array training.

``tinygrad_rnn.train`` re-exports the fit loop of :mod:`.loop` (``fit``, ``evaluate``, ``History``,
``DivergenceError``, ...); the rest lives in its submodules:

- :mod:`.loop`: the truncated-BPTT training loop
- :mod:`.losses`: cross-entropy, NLL, MSE, L1, BCE-with-logits, each with its backward
- :mod:`.optim`: SGD, Adam, AdamW, RMSprop, Adagrad, gradient clipping, LR schedules
- :mod:`.checkpoints`: ``save`` / ``load`` of safetensors checkpoints
- :mod:`.callbacks`: early stopping and model checkpoints for ``fit``
- :mod:`.array_training`: ``Sequential.fit`` on NumPy arrays
"""
from .loop import DivergenceError, History, as_tensor_batch, evaluate, fit, model_caller

__all__ = ["History", "DivergenceError", "evaluate", "fit", "as_tensor_batch", "model_caller"]
