"""The autograd engine: the ``Tensor``, the graph it records and the backward walk, and the ops.

- :mod:`.tensor`: ``Tensor`` and its constructors; each method calls the op of the same name
- :mod:`.engine`: graph nodes, ``op``/``apply``, ``no_grad``, ``scope``, the reverse-mode walk
- :mod:`.ops`: each op a NumPy forward and its backward side by side (the equation in its docstring)
- :mod:`.gradcheck`: finite differences against the engine's gradients (``torch.autograd.gradcheck``)

Nothing here imports ``nn``, ``train``, ``compile`` or ``reference``: they are built on it.
"""
from . import engine, gradcheck, ops, tensor

__all__ = ["engine", "gradcheck", "ops", "tensor"]
