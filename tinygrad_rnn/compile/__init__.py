"""``tinygrad_rnn.compile``: trace a training step once, replay it fast.

    @tg.compile
    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

The first call for an input signature (shapes, dtypes and ``requires_grad`` of the tensor and
array arguments, the values of the other arguments, the grad mode, and the ``training`` flag of
every module the call ran) runs eagerly and records what ran (:mod:`.trace`): the ops, the
backward walks, the optimizer's effects. Later calls with the same signature replay that schedule
on the new inputs as straight-line NumPy code (:mod:`.passes`, :mod:`.replay`): no tensors, no
graph, no topological sort. Afterwards parameters, their ``.grad`` and the optimizer's state are
what eager execution would have left; the results are tensors without a graph.

What a replay cannot see, as with every tracing compiler (Chainer's ``static_graph``, tinygrad's
``TinyJit``): Python control flow that depends on tensor values (reading one with ``.item()``,
``float()`` or ``bool()`` inside the function is an error at trace time), NumPy code run on
``.data`` inside the function, Python numbers that change between calls without being arguments,
and a hidden state carried in from the previous call without ``.detach()`` (an error).
``compile(fn, check=True)`` runs every call both ways and raises at the first value that differs.
Dropout draws fresh masks on every replay from the library's generator, in the same order as
eager, so results match eager with the same seed.
"""
from __future__ import annotations

import copy
import functools
import warnings
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from ..autograd import engine
from ..random import get_rng_state, set_rng_state
from ..autograd.tensor import Tensor
from .passes import optimize, output_slots
from .replay import Replay
from .trace import CompileError, Schedule, Tracer

__all__ = ["compile", "CompiledFunction", "CompileError"]

CACHE_SIZE = 8


class CompiledFunction:
    """A function whose calls are traced once per signature and replayed afterwards."""

    def __init__(self, fn: Callable, check: bool | str = False, cache_size: int = CACHE_SIZE):
        if not callable(fn):
            raise TypeError(f"compile: fn must be callable, got {type(fn).__name__}")
        if check not in (True, False, "first"):
            raise ValueError(f"compile: check must be True, False or 'first', got {check!r}")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"compile: cache_size must be a positive int, got {cache_size!r}")
        self.fn = fn
        self.check = check
        self.cache_size = cache_size
        self.cache: OrderedDict[tuple, list] = OrderedDict()
        self.traces = 0    # how many times a call was traced (a new signature)
        self.replays = 0   # how many calls were replayed
        functools.update_wrapper(self, fn)

    # ----- calling --------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if engine.get_tracer() is not None:  # inside another compiled function's trace: inline
            return self.fn(*args, **kwargs)
        key, flat = _signature(args, kwargs)
        key = key + (engine.is_grad_enabled(),)
        for entry in self.cache.get(key, ()):
            if all(module.training == flag for module, flag in entry.schedule.guards):
                self.cache.move_to_end(key)
                self.replays += 1
                if self.check is True or (self.check == "first" and not entry.checked):
                    entry.checked = True
                    return self._checked(entry, flat, args, kwargs)
                return entry.call(flat)
        return self._trace(key, args, kwargs)

    def _run_traced(self, args: tuple, kwargs: dict) -> tuple[Any, Schedule, Tracer]:
        """Call the function eagerly while a tracer records it."""
        tracer = Tracer()
        args, kwargs = _as_traced_inputs(args, kwargs, tracer)
        previous = engine.set_tracer(tracer)
        try:
            result = self.fn(*args, **kwargs)
            schedule = tracer.finish(result)
        finally:
            engine.set_tracer(previous)
        return result, schedule, tracer

    def _trace(self, key: tuple, args: tuple, kwargs: dict) -> Any:
        result, schedule, _ = self._run_traced(args, kwargs)
        entry = _Entry(schedule, getattr(self.fn, "__name__", "step"))
        self.cache.setdefault(key, []).append(entry)
        self.cache.move_to_end(key)
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
            warnings.warn(
                f"compile: {getattr(self.fn, '__name__', 'fn')} has been traced for more than "
                f"{self.cache_size} signatures; an argument that changes on every call (a Python "
                "number, a new sequence length) makes every call trace again. Pass changing "
                "numbers as arrays or tensors, or bucket the lengths", stacklevel=3)
        self.traces += 1
        return result

    # ----- check mode -----------------------------------------------------------------------------
    def _checked(self, entry: "_Entry", flat: list, args: tuple, kwargs: dict) -> Any:
        """Replay keeping every value, then rewind and run eagerly under a new trace; raise at
        the first value that differs. The eager run's state is what stays."""
        state = _State(entry.schedule)
        values, result = entry.call_keeping_all(flat)
        replayed = state.capture()
        state.restore()
        eager_result, schedule, tracer = self._run_traced(args, kwargs)
        _compare_runs(entry.schedule, values, schedule, tracer, replayed, state.capture())
        return eager_result

    # ----- looking inside -------------------------------------------------------------------------
    @property
    def schedules(self) -> list[Schedule]:
        return [entry.schedule for entries in self.cache.values() for entry in entries]

    def source(self, index: int = -1) -> str:
        """The generated Python of a captured schedule (the most recent by default): one line per
        op, backward function and gradient sum, each op line naming its op and scope."""
        entries = [entry for entries in self.cache.values() for entry in entries]
        if not entries:
            raise ValueError("compile: nothing captured yet; call the function once first")
        return entries[index].replay.source


def compile(fn: Callable | None = None, *, check: bool | str = False,  # noqa: A001 - tg.compile
            cache_size: int = CACHE_SIZE) -> Any:
    """Trace ``fn`` on its first call per input signature and replay it afterwards (see the
    module docstring). Use as ``@compile``, ``@compile(check=True)`` or ``compile(fn)``.

    ``check=True`` runs every replay side by side with eager execution and raises
    :class:`CompileError` at the first value that differs (the eager run's state is kept);
    ``check="first"`` does so only for the first replay of each schedule, which catches a
    function whose Python code depends on its inputs' values at the cost of one extra step."""
    if fn is None:
        return lambda f: CompiledFunction(f, check=check, cache_size=cache_size)
    return CompiledFunction(fn, check=check, cache_size=cache_size)


# ----- signatures and inputs ------------------------------------------------------------------------
def _signature(args: tuple, kwargs: dict) -> tuple[tuple, list]:
    flat: list = []

    def spec(value: Any, where: str) -> Any:
        if isinstance(value, Tensor):
            flat.append(value)
            return ("T", value.shape, value.dtype.str, value.requires_grad)
        if isinstance(value, np.ndarray):
            flat.append(value)
            return ("A", value.shape, value.dtype.str)
        if isinstance(value, (tuple, list)):
            return (type(value).__name__,) + tuple(spec(v, f"{where}[{i}]") for i, v in enumerate(value))
        if isinstance(value, dict):
            return ("dict",) + tuple((k, spec(v, f"{where}[{k!r}]")) for k, v in sorted(value.items()))
        if value is None or isinstance(value, (bool, int, float, str, np.number)):
            return ("V", type(value).__name__, value)
        raise TypeError(
            f"compile: argument {where} is a {type(value).__name__}; a compiled function takes "
            "Tensors, NumPy arrays, numbers, strings, None, and tuples/lists/dicts of them "
            "(modules and optimizers belong in the function's closure)"
        )
    key = tuple(spec(a, f"#{i}") for i, a in enumerate(args))
    key += tuple((k, spec(v, k)) for k, v in sorted(kwargs.items()))
    return key, flat


def _as_traced_inputs(args: tuple, kwargs: dict, tracer: Tracer) -> tuple[tuple, dict]:
    """The arguments with every array wrapped in a Tensor, each registered as an input slot."""
    def convert(value: Any) -> Any:
        if isinstance(value, Tensor):
            tracer.add_input(value)
            return value
        if isinstance(value, np.ndarray):
            t = Tensor(value)
            tracer.add_input(t)
            return t
        if isinstance(value, (tuple, list)):
            return type(value)(convert(v) for v in value)
        if isinstance(value, dict):
            return {k: convert(value[k]) for k in sorted(value)}
        return value
    converted_args = tuple(convert(a) for a in args)
    converted_kwargs = {k: convert(kwargs[k]) for k in sorted(kwargs)}
    return converted_args, converted_kwargs


class _Entry:
    """One captured signature: its schedule and the compiled program (built lazily)."""

    def __init__(self, schedule: Schedule, name: str):
        self.schedule = schedule
        self.name = name
        self._replay: Replay | None = None
        self._debug: Replay | None = None
        self.checked = False   # check="first": whether this schedule's first replay was checked
        self.output_slots = output_slots(schedule.outputs)   # the result's slots, in order

    @property
    def replay(self) -> Replay:
        if self._replay is None:
            self._replay = Replay(*optimize(self.schedule), self.name)
        return self._replay

    def call(self, flat: list) -> Any:
        arrays = [x.data if isinstance(x, Tensor) else x for x in flat]
        tensors = [x if isinstance(x, Tensor) else None for x in flat]
        values = self.replay.run(arrays, tensors)
        return _rebuild(self.schedule.outputs, dict(zip(self.output_slots, values)))

    def call_keeping_all(self, flat: list) -> tuple[dict, Any]:
        if self._debug is None:
            self._debug = Replay(*optimize(self.schedule, free=False), self.name)
        arrays = [x.data if isinstance(x, Tensor) else x for x in flat]
        tensors = [x if isinstance(x, Tensor) else None for x in flat]
        values = self._debug.run_keeping_all(arrays, tensors)
        result = _rebuild(self.schedule.outputs,
                          {s: values[f"v{s}"] for s in self.output_slots})
        return values, result


def _rebuild(structure: Any, values: dict) -> Any:
    if structure is None:
        return None
    kind, content = structure
    if kind == "tensor":
        return Tensor(values[content])
    if kind == "dict":
        return {k: _rebuild(v, values) for k, v in content.items()}
    items = [_rebuild(v, values) for v in content]
    return tuple(items) if kind == "tuple" else items


# ----- check mode -----------------------------------------------------------------------------------
class _State:
    """Everything a call may change outside its result: the externals' values and gradients, the
    state of the objects its effects belong to (optimizers, schedulers), the random generator."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        owners = []
        for step in schedule.steps:
            owner = step.args[0] if hasattr(step, "fn") and step.args else None
            # optimizers and schedulers (their state is what an effect changes besides .data and
            # .grad); a module's state is its parameters, which are externals already
            stateful = hasattr(owner, "param_groups") or hasattr(owner, "optimizer")
            if stateful and hasattr(owner, "state_dict") and hasattr(owner, "load_state_dict"):
                if all(owner is not o for o in owners):
                    owners.append(owner)
        self.owners = owners
        self.saved = self.capture()

    def capture(self) -> dict:
        return {
            "data": [t.data.copy() for t in self.schedule.externals],
            "grad": [None if t.grad is None else np.array(t.grad, copy=True) for t in self.schedule.externals],
            "owners": [copy.deepcopy(o.state_dict()) for o in self.owners],
            "rng": get_rng_state(),
        }

    def restore(self) -> None:
        for t, data, grad in zip(self.schedule.externals, self.saved["data"], self.saved["grad"]):
            if t.data.flags.writeable:  # a read-only array cannot have been changed in place
                t.data[...] = data
            t.grad = None if grad is None else grad.copy()
        for owner, state in zip(self.owners, self.saved["owners"]):
            owner.load_state_dict(copy.deepcopy(state))
        set_rng_state(self.saved["rng"])


def _close(a: Any, b: Any) -> bool:
    """Equal up to the rounding that summing in another order causes (a weight's per-step
    gradients as one product): 1e-5 of the largest magnitude for float32, 1e-10 for float64.
    A value that a replay froze differs by far more. NaNs and infinities must sit at the same
    places."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    tol = 1e-10 if a.dtype == np.float64 else 1e-5
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    finite = np.isfinite(b64)
    scale = max(float(np.max(np.abs(b64[finite]), initial=0.0)), 1e-30)
    with np.errstate(invalid="ignore"):
        close = np.abs(a64 - b64) <= tol * scale + tol * np.abs(b64)
    same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    return bool(np.all(close | same))


def _compare_runs(schedule: Schedule, values: dict, eager: Schedule, tracer: Tracer,
                  replayed: dict, after: dict) -> None:
    ops = [s for s in schedule.steps if hasattr(s, "forward")]
    eager_ops = [s for s in eager.steps if hasattr(s, "forward")]
    for k, (a, b) in enumerate(zip(ops, eager_ops)):
        if a.forward is not b.forward or len(a.outputs) != len(b.outputs):
            raise CompileError(f"compile(check=True): op #{k} of this call is '{b.name}' where the "
                               f"captured schedule has '{a.name}': the function's ops depend on "
                               "its inputs' values, so it cannot be replayed")
        for slot, eager_slot in zip(a.outputs, b.outputs):
            mine = values.get(f"v{slot}")
            theirs = tracer.keep[eager_slot].data
            if mine is not None and not _close(mine, theirs):
                raise CompileError(f"compile(check=True): the first value that differs from eager "
                                   f"execution is the result of {schedule.slots[slot].label} "
                                   f"(op #{k}, shape {theirs.shape})")
    if len(ops) != len(eager_ops):
        raise CompileError(f"compile(check=True): eager execution ran {len(eager_ops)} ops, the "
                           f"captured schedule {len(ops)}")
    for name in ("data", "grad"):
        for t, mine, theirs in zip(schedule.externals, replayed[name], after[name]):
            if (mine is None) != (theirs is None) or (mine is not None and not _close(mine, theirs)):
                what = t.name or f"the tensor of shape {t.shape}"
                raise CompileError(f"compile(check=True): {what}'s .{name} after the replay differs "
                                   "from eager execution")
    for mine, theirs in zip(replayed["owners"], after["owners"]):
        if not _same_state(mine, theirs):
            raise CompileError("compile(check=True): an optimizer's or scheduler's state after the "
                               "replay differs from eager execution")


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _close(a, b)
    return a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))
