"""tinygrad_rnn: a small reverse-mode autograd engine over NumPy, and recurrent nets built from it."""
from .gradcheck import GradcheckError, gradcheck
from .random import get_rng_state, manual_seed, set_rng_state
from . import callbacks, data, datasets, engine, functional, nn, ops, optim, runtime, testing, viz  # noqa: E402  (public submodules)
from .io import load, save
from .compile import CompileError, compile  # noqa: A004  (tg.compile, like torch.compile)
from .tensor import (
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
