"""tinygrad_rnn: a small reverse-mode autograd engine over NumPy, and recurrent nets built from it.

Layers, each importing only those before it: :mod:`.autograd` (Tensor, engine, ops) and
:mod:`.reference` (handwritten BPTT, NumPy only); :mod:`.nn`; :mod:`.compile`; :mod:`.train` and
:mod:`.data`; :mod:`.viz`; then the application modules (models, CLI, ONNX, PyTorch interop).
"""
# Through the old module on purpose: importing tinygrad_rnn.gradcheck binds the module as this
# package's attribute, so it must happen before the function takes the name (as it did before the move).
from .gradcheck import GradcheckError, gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
# public submodules; engine, ops, optim, callbacks and datasets are re-exports of their new homes
from . import callbacks, data, datasets, engine, functional, nn, ops, optim, runtime, testing, viz  # noqa: E402
from .train.checkpoints import load, save
from .compile import CompileError, compile  # noqa: A004  (tg.compile, like torch.compile)
from .autograd.tensor import (
    Tensor, arange, detect_anomaly, enable_grad, full, is_grad_enabled, no_grad, ones, ones_like,
    rand, randn, scope, zeros, zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "Tensor", "arange", "detect_anomaly", "enable_grad", "full", "gradcheck", "GradcheckError",
    "get_rng_state", "is_grad_enabled", "manual_seed", "no_grad", "ones", "ones_like", "rand",
    "randn", "scope", "set_rng_state", "zeros", "zeros_like", "save", "load", "nn", "optim",
    "functional", "callbacks", "data", "datasets", "viz", "runtime", "engine", "ops", "testing", "compile",
    "CompileError",
]
