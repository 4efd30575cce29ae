"""A captured schedule as text: what ``tinygrad_rnn.compile`` recorded and what its passes made.

``schedule_text(train_step)`` lists, for the schedule of a compiled function, every op with its
input and output shapes and the scope it ran in, every side effect (``Optimizer.step``, ...) and
every backward walk, then what the passes turned it into (statements, fused ops, weight products,
values freed early). ``train_step.source()`` shows the generated code itself.
"""
from __future__ import annotations

from ..compile import CompiledFunction
from ..compile.passes import Free, Run, WeightGemm, optimize
from ..compile.trace import BackwardStep, EffectStep, OpStep

__all__ = ["schedule_text"]


def schedule_text(compiled: CompiledFunction, index: int = -1, limit: int | None = 200) -> str:
    """The steps of one captured schedule (the most recent by default), at most ``limit`` op
    lines (None: all), and a summary of the compiled program."""
    if not isinstance(compiled, CompiledFunction):
        raise TypeError(f"schedule_text: expected a function made by tinygrad_rnn.compile, got "
                        f"{type(compiled).__name__}")
    schedules = compiled.schedules
    if not schedules:
        raise ValueError("schedule_text: nothing captured yet; call the compiled function once first")
    schedule = schedules[index]
    slots = schedule.slots

    def shapes(indices: list[int]) -> str:
        return ", ".join(str(slots[i].shape) for i in indices)

    lines = [f"schedule {index % len(schedules) + 1} of {len(schedules)}: {len(schedule.steps)} steps, "
             f"{len(schedule.inputs)} inputs, {len(schedule.externals)} tensors read from outside "
             "(parameters, constants)"]
    shown = 0
    for k, step in enumerate(schedule.steps):
        if isinstance(step, OpStep):
            shown += 1
            if limit is not None and shown > limit:
                continue
            where = slots[step.outputs[0]].label.partition(" in ")[2] if step.outputs else ""
            grad = "" if step.has_node else "  (no backward)"
            lines.append(f"  #{k:<5} {step.name:<12} {shapes(step.inputs)} -> "
                         f"{shapes(step.outputs)}  {where}{grad}")
        elif isinstance(step, EffectStep):
            lines.append(f"  #{k:<5} effect       {getattr(step.fn, '__qualname__', step.fn)}")
        elif isinstance(step, BackwardStep):
            lines.append(f"  #{k:<5} backward     from {shapes(step.roots)}: {len(step.nodes)} nodes")
    if limit is not None and shown > limit:
        lines.append(f"  ... {shown - limit} more ops")
    program, fused_schedule = optimize(schedule)
    runs = [s for s in program.statements if isinstance(s, Run)]
    frees = sum(len(s.vars) for s in program.statements if isinstance(s, Free))
    gemms = [s for s in program.statements if isinstance(s, WeightGemm)]
    fused = sum(1 for s in runs if fused_schedule.steps[s.step].name == "chunk_activations")
    lines.append(f"after the passes: {len(program.statements)} statements, {len(runs)} op calls "
                 f"({fused} fused chunk activations), {len(gemms)} weight products over "
                 f"{sum(len(g.g_vars) for g in gemms)} per-step pieces, {frees} values freed "
                 "after their last use")
    return "\n".join(lines)

