"""``Module`` and ``Parameter``: named, nested containers of trainable tensors (PyTorch style).

Assigning a ``Parameter`` or a ``Module`` as an attribute registers it, in assignment order, so
``named_parameters()`` and ``state_dict()`` list names exactly as PyTorch would for the same
architecture, and weights move between the two by name.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np

from ..autograd import engine
from ..autograd.tensor import Tensor

__all__ = ["Parameter", "Module", "ModuleList"]


class Parameter(Tensor):
    """A leaf tensor that requires grad and is registered by the module that holds it."""

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None):
        super().__init__(data, requires_grad=True, dtype=dtype)


class Module:
    """Base class: override ``forward``; call the module like a function."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning attributes")
        if isinstance(value, Parameter):
            if value.name is None:
                value.name = name
            self._modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            self._modules[name] = value
        elif value is None and name in params:
            params[name] = None  # e.g. bias=False: the attribute exists but holds no parameter
        else:
            params.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = engine.get_tracer()
        if tracer is not None:  # tinygrad_rnn.compile guards a schedule on every module's .training
            tracer.on_module(self)
        return self.forward(*args, **kwargs)

    # ----- traversal ---------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and every submodule, depth first, each once (iterative walk)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def modules(self) -> Iterator["Module"]:
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(qualified name, parameter) pairs in registration order; shared parameters once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    # ----- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's array under its qualified name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> tuple[list, list]:
        """Copy arrays into the parameters by name (cast to each parameter's dtype).

        Everything is validated before anything is assigned, so a bad dict leaves the module
        untouched. Returns ``(missing, unexpected)`` key lists (both empty when ``strict``).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got {type(state).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        staged = []
        for name, param in own.items():
            if name not in state:
                continue
            value = state[name]
            try:
                array = np.asarray(value.data if isinstance(value, Tensor) else value)
            except ValueError as exc:  # ragged nested lists
                raise ValueError(f"load_state_dict: '{name}' is not a rectangular array ({exc})") from None
            if array.shape != param.shape:
                raise ValueError(
                    f"load_state_dict: shape mismatch for '{name}': expected {param.shape}, got {array.shape}"
                )
            if array.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: '{name}' has non-numeric dtype {array.dtype}")
            staged.append((param, array))
        for param, array in staged:
            param.data = array.astype(param.dtype, copy=True)
        return missing, unexpected

    # ----- modes and helpers ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    @engine.effect  # tinygrad_rnn.compile repeats this call on replay
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, dtype: Any) -> "Module":
        """Convert every parameter to a floating ``dtype`` (e.g. ``np.float64`` for grad checks)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to: parameters must stay floating point, got dtype {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return "\n".join(lines) + ("\n)" if len(lines) > 1 else ")")


class ModuleList(Module):
    """A list of submodules registered under the names "0", "1", ..."""

    def __init__(self, modules: Any = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))
