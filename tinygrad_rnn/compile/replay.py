"""Running a program: it is written out as straight-line Python over a register list and
compiled once, so a replay is one call per op and per backward function, with nothing else in
between. ``Replay.source`` is that code, readable (each line says which op and scope it is).
"""
from __future__ import annotations

import linecache
import math
from typing import Any, Callable

import numpy as np

from ..autograd.engine import unbroadcast
from .inline import FRESH, IN_PLACE, backward_code, inline_code, training_code
from .passes import (
    Accumulate, Backprop, CallEffect, Free, Program, Read, Reuse, Run, StoreGrad, WeightGemm,
    reads,
)
from .trace import CompileError, EffectStep, OpStep, Schedule

__all__ = ["Replay"]

CHUNK = 2000  # statements per generated function: CPython compiles huge functions slowly
# Above this many statements, compiling straight-line code costs seconds (about 12 us a line);
# the program then runs as a list of (template, registers): each distinct line, with its
# register numbers as parameters, is compiled once (an unrolled RNN has a few dozen).
STRAIGHT_LINE_LIMIT = 100_000
# Register numbers (and result indices) are written between these marks, so one pass can either
# drop the marks (straight-line code) or turn the numbers into a template's parameters.
_OPEN, _CLOSE = "\x01", "\x02"


def fit(g: Any, shape: tuple, dtype: np.dtype, label: str) -> np.ndarray:
    """A gradient as its tensor needs it: summed back over broadcast axes, in its dtype."""
    if g is None:
        raise CompileError(f"op {label} returned no gradient for an input that requires one; "
                           "a compiled backward needs an array there (zeros if nothing flows)")
    if type(g) is not np.ndarray:
        g = np.asarray(g)
    if g.shape != shape:
        g = unbroadcast(g, shape)
    if g.dtype != dtype:
        g = g.astype(dtype)
    return g


def weight_gemm(a: list, g: list) -> np.ndarray:
    """Σₜ aₜᵀ gₜ as one product of the stacked operands."""
    return np.concatenate(a).T @ np.concatenate(g)


def store_grad(t: Any, g: np.ndarray, fresh: bool) -> None:
    """``t.grad += g`` as ``backward()`` does it (a copy unless the array is the program's own)."""
    g = np.asarray(g)
    if t.grad is None:
        t.grad = g if fresh else g.copy()
    else:
        t.grad += g


def _literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple):
        return all(_literal(v) for v in value)
    return False


class Replay:
    """A program compiled to Python: ``run(inputs, input_tensors)`` returns the output arrays."""

    def __init__(self, program: Program, schedule: Schedule, name: str = "step"):
        self.schedule = schedule
        self.registers: dict[str, int] = {}
        self.globals: dict[str, Any] = {"np": np, "fit": fit, "weight_gemm": weight_gemm,
                                        "store_grad": store_grad, "zeros": np.zeros,
                                        "asarray": np.asarray}
        self._names: dict[int, str] = {}
        self._inlined: dict[str, tuple] = {}   # closure variable -> (forward, needs) of inlined ops
        self._plan_inlining(program)
        lines = [self._line(s) for s in program.statements]
        self.output_registers = [self.registers[v] for v in program.outputs]
        self.size = len(self.registers)
        self.filename = f"<tinygrad_rnn.compile {name} {id(self):x}>"
        if len(lines) <= STRAIGHT_LINE_LIMIT:
            self._straight_line(lines)
        else:
            self._templates(lines)

    def _straight_line(self, lines: list[str]) -> None:
        lines = [line.replace(_OPEN, "").replace(_CLOSE, "") for line in lines]
        chunks = [lines[i:i + CHUNK] for i in range(0, len(lines), CHUNK)] or [[]]
        source = []
        for c, body in enumerate(chunks):
            source.append(f"def chunk{c}(R, E, I, IT):")
            source.extend("    " + line for line in body)
            source.append("    pass")
        self.source = "\n".join(source) + "\n"
        self._exec(self.source)
        self.chunks: list[Callable] = [self.globals[f"chunk{c}"] for c in range(len(chunks))]

    def _templates(self, lines: list[str]) -> None:
        templates: dict[str, int] = {}
        plan = []
        for line in lines:
            parts = line.split("  # ", 1)[0].split(_OPEN)  # the scope comment differs per step
            numbers, pieces = [], [parts[0]]
            for k, part in enumerate(parts[1:]):
                number, rest = part.split(_CLOSE, 1)
                numbers.append(int(number))
                pieces.append(f"a{k}{rest}")
            template = "".join(pieces)
            index = templates.setdefault(template, (len(templates), len(numbers)))[0]
            plan.append((index, tuple(numbers)))
        source = []
        for template, (index, count) in templates.items():
            params = ", ".join(f"a{k}" for k in range(count))
            source.append(f"def line{index}({params}):\n    {template}\n")
        self.source = "".join(source) + f"# then {len(plan)} lines, each one of these with its numbers\n"
        self._exec(self.source)
        functions = [self.globals[f"line{i}"] for i in range(len(templates))]
        plan = [(functions[i], numbers) for i, numbers in plan]
        names = self.globals

        def run_plan(R, E, I, IT):  # noqa: N803 - the generated code's names
            names.update(R=R, E=E, I=I, IT=IT)  # the templates read these as globals
            try:
                for fn, numbers in plan:
                    fn(*numbers)
            finally:
                names.update(R=None, E=None, I=None, IT=None)
        self.chunks = [run_plan]

    def _exec(self, source: str) -> None:
        linecache.cache[self.filename] = (len(source), None, source.splitlines(True), self.filename)
        exec(compile(source, self.filename, "exec"), self.globals)  # noqa: S102 - our own code

    # ----- code generation ------------------------------------------------------------------------
    def _reg(self, var: str) -> str:
        index = self.registers.get(var)
        if index is None:
            index = self.registers[var] = len(self.registers)
        return f"R[{_OPEN}{index}{_CLOSE}]"

    def _const(self, value: Any, hint: str) -> str:
        """A name in the generated code's globals bound to ``value`` (functions, arrays, ...)."""
        key = id(value)
        name = self._names.get(key)
        if name is None:
            name = f"{hint}{len(self._names)}"
            self._names[key] = name
            self.globals[name] = value
            self.globals.setdefault("_keep", []).append(value)  # ids stay valid while we hold it
        return name

    def _arg(self, value: Any) -> str:
        return repr(value) if _literal(value) else self._const(value, "K")

    def _line(self, s: Any) -> str:
        schedule = self.schedule
        if isinstance(s, Read):
            source = f"I[{s.position}]" if s.kind == "input" else f"E[{s.position}].data"
            return f"{self._reg(s.var)} = {source}"
        if isinstance(s, Run):
            step: OpStep = schedule.steps[s.step]
            where = schedule.slots[step.outputs[0]].label if step.outputs else step.name
            if s.closure is not None and not step.many:
                code = training_code(step.forward, self._reg(s.outs[0]),
                                     [self._reg(v) for v in s.ins], self._reg(s.closure), s.needs,
                                     self._plain(step))
                if code is not None:
                    self._inlined[s.closure] = (step.forward, s.needs)
                    return f"{code}  # {where}"
            if s.closure is None:
                code = inline_code(step.forward, [self._reg(v) for v in s.outs],
                                   [self._reg(v) for v in s.ins], step.args, step.kwargs,
                                   self._plain(step), s.ins[:1] and s.ins[0] in self._reusable
                                   and self._reusable[s.ins[0]] is s)
                if code is not None:
                    return f"{code}  # {where}"
            args = [self._reg(v) for v in s.ins] + [self._arg(a) for a in step.args]
            args += [f"{k}={self._arg(v)}" for k, v in step.kwargs.items()]
            if s.needs is not None:
                args.append(f"needs={s.needs!r}")
            outs = [self._reg(v) for v in s.outs]
            target = f"({', '.join(outs)},)" if step.many else outs[0]
            closure = self._reg(s.closure) if s.closure else "_"
            fn = self._const(step.forward, f"{step.name}_")
            return f"{target}, {closure} = {fn}({', '.join(args)})  # {where}"
        if isinstance(s, CallEffect):
            step: EffectStep = schedule.steps[s.step]
            fn = self._const(step.fn, "effect")
            args = self._const(step.args, "A")
            kwargs = self._const(step.kwargs, "KW")
            return f"{fn}(*{args}, **{kwargs})  # {getattr(step.fn, '__qualname__', 'effect')}"
        if isinstance(s, Backprop):
            if s.closure in self._inlined and isinstance(s.grads[0], str):
                forward, needs = self._inlined[s.closure]
                return backward_code(forward, self._reg(s.result), self._reg(s.grads[0]),
                                     self._reg(s.closure), needs)
            grads = [self._reg(g) if isinstance(g, str) else f"zeros({g[0]!r}, {self._const(g[1], 'D')})"
                     for g in s.grads]
            return f"{self._reg(s.result)} = {self._reg(s.closure)}({', '.join(grads)})"
        if isinstance(s, Accumulate):
            if s.source[0] == "seed":
                value = self._const(s.source[1], "SEED")
            else:
                k, step_index, j = s.source[1:]
                value = f"{self._reg(f'r{k}_{step_index}')}[{_OPEN}{j}{_CLOSE}]"
                if not s.exact:
                    value = f"fit({value}, {s.shape!r}, {self._const(s.dtype, 'D')}, {s.label!r})"
            return self._combine(s.dest, value, s.mode, s.shape)
        if isinstance(s, WeightGemm):
            a_list = f"[{', '.join(self._reg(v) for v in s.a_vars)}]"
            g_list = f"[{', '.join(self._reg(v) for v in s.g_vars)}]"
            if s.stacked is None:
                return self._combine(s.dest, f"weight_gemm({a_list}, {g_list})", s.mode, s.shape)
            stacked = self._reg(s.stacked)
            value = f"np.concatenate({a_list}).T @ {stacked}.reshape(-1, {stacked}.shape[-1])"
            return f"{stacked} = np.stack({g_list}); " + self._combine(s.dest, value, s.mode, s.shape)
        if isinstance(s, Reuse):
            return f"{self._reg(s.result)} = ({self._reg(s.var)},)  # the stack made for the weight"
        if isinstance(s, StoreGrad):
            target = f"IT[{s.position}]" if s.kind == "input" else f"E[{s.position}]"
            return f"store_grad({target}, {self._reg(s.var)}, {s.fresh})"
        if isinstance(s, Free):
            return " = ".join(self._reg(v) for v in s.vars) + " = None"
        raise TypeError(f"unknown statement {s!r}")

    def _plain(self, step: OpStep) -> bool:
        """Whether an inlined NumPy expression gives exactly what the op gives: arrays of one
        dtype and no 0-d results (NumPy would hand back scalars)."""
        slots = self.schedule.slots
        dtypes = {slots[i].dtype for i in step.inputs + step.outputs}
        return len(dtypes) == 1 and all(slots[o].shape != () for o in step.outputs)

    def _plan_inlining(self, program: Program) -> None:
        """Which value may an inlined elementwise op overwrite: one that a closure-free op of
        this program made as a new array, that only closure-free ops read, at its last read."""
        made: dict[str, bool] = {}
        readers: dict[str, list] = {}
        for s in program.statements:
            if isinstance(s, Run):
                step = self.schedule.steps[s.step]
                for v in s.outs:
                    made[v] = s.closure is None and step.forward in FRESH and not step.many
            for v in reads(s):
                readers.setdefault(v, []).append(s)
        keep = set(program.outputs)
        self._reusable = {}
        for v, users in readers.items():
            last = users[-1]
            if (made.get(v) and v not in keep and isinstance(last, Run) and last.ins[:1] == [v]
                    and v not in last.ins[1:]
                    and all(isinstance(u, Run) and u.closure is None for u in users)
                    and self.schedule.steps[last.step].forward in IN_PLACE):
                self._reusable[v] = last

    def _combine(self, dest: str, value: str, mode: str, shape: tuple) -> str:
        d = self._reg(dest)
        if mode == "assign":
            return f"{d} = {value}"
        if mode == "add":
            # NumPy returns a scalar for 0-d sums; gradients stay arrays
            return f"{d} = asarray({d} + {value})" if shape == () else f"{d} = {d} + {value}"
        return f"{d} += {value}"

    # ----- running --------------------------------------------------------------------------------
    def _execute(self, inputs: list, input_tensors: list) -> list:
        registers = [None] * self.size
        externals = self.schedule.externals
        for chunk in self.chunks:
            chunk(registers, externals, inputs, input_tensors)
        return registers

    def run(self, inputs: list, input_tensors: list) -> list:
        """Run the program on new input arrays; returns the result's values."""
        registers = self._execute(inputs, input_tensors)
        return [registers[r] for r in self.output_registers]

    def run_keeping_all(self, inputs: list, input_tensors: list) -> dict[str, Any]:
        """Run and return every variable by name (for a program built without liveness)."""
        registers = self._execute(inputs, input_tensors)
        return {var: registers[i] for var, i in self.registers.items()}
