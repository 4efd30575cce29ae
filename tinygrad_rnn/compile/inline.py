"""Inlining: ops that keep no backward become a line of NumPy in the generated code.

An op whose result no gradient flows through (inference under ``no_grad``, masks, the input
projection of a layer whose inputs need no gradient...) does not need its forward function at
all on replay: no argument checks (the trace did them), no backward closure. For the common
ops this module gives the NumPy expression to write instead of the call, e.g. ``y = a @ b;
y += c`` for ``addmm`` or ``np.tanh(x)``. When the input of an elementwise op is an array the
program made itself and nothing reads it afterwards, the op runs in place into it
(``np.tanh(x, out=x)``): buffer reuse, decided from liveness.
"""
from __future__ import annotations

from typing import Callable

from ..autograd import ops

__all__ = ["inline_code", "FRESH", "IN_PLACE"]

# name -> code template; {o} the result, {i0}, {i1}, ... the inputs, {a0}, ... the extra arguments.
_TEMPLATES: dict[Callable, str] = {
    ops.add.forward: "{o} = {i0} + {i1}",
    ops.sub.forward: "{o} = {i0} - {i1}",
    ops.mul.forward: "{o} = {i0} * {i1}",
    ops.div.forward: "{o} = {i0} / {i1}",
    ops.neg.forward: "{o} = -{i0}",
    ops.exp.forward: "{o} = np.exp({i0})",
    ops.log.forward: "{o} = np.log({i0})",
    ops.tanh.forward: "{o} = np.tanh({i0})",
    ops.relu.forward: "{o} = np.maximum({i0}, 0)",
    ops.sigmoid.forward: "{o} = np.multiply({i0}, 0.5); np.tanh({o}, out={o}); {o} *= 0.5; {o} += 0.5",
    ops.matmul.forward: "{o} = {i0} @ {i1}",
    ops.addmm.forward: "{o} = {i1} @ {i2}; {o} += {i0}",
    ops.T.forward: "{o} = {i0}.T",
    ops.detach.forward: "{o} = {i0}",
}
# In-place variants for an input that dies here and that the program itself made.
IN_PLACE: dict[Callable, str] = {
    ops.tanh.forward: "np.tanh({i0}, out={i0}); {o} = {i0}",
    ops.relu.forward: "np.maximum({i0}, 0, out={i0}); {o} = {i0}",
    ops.exp.forward: "np.exp({i0}, out={i0}); {o} = {i0}",
    ops.neg.forward: "np.negative({i0}, out={i0}); {o} = {i0}",
    ops.sigmoid.forward: "{i0} *= 0.5; np.tanh({i0}, out={i0}); {i0} *= 0.5; {i0} += 0.5; {o} = {i0}",
}
# Ops whose result is a new array of its own (not a view of an input): safe to overwrite.
FRESH = {f for f in _TEMPLATES if f not in (ops.T.forward, ops.detach.forward)}


def inline_code(forward: Callable, outs: list[str], ins: list[str], args: tuple, kwargs: dict,
                shapes_ok: bool, in_place: bool) -> str | None:
    """The NumPy line replacing a call of ``forward``, or None when it has no template (or the
    call has options the template does not cover)."""
    if kwargs or args or len(outs) != 1 or not shapes_ok:
        if forward is ops.unbind.forward and not kwargs and args in ((), (0,)) and shapes_ok:
            return f"({', '.join(outs)},) = {ins[0]}"   # iterating axis 0 gives the views
        if forward is ops.stack.forward and set(kwargs) <= {"axis"} and not args and shapes_ok:
            return f"{outs[0]} = np.stack([{', '.join(ins)}], axis={int(kwargs.get('axis', 0))})"
        if (forward is ops.getitem.forward and len(ins) == 1 and shapes_ok and len(args) == 1
                and _basic_index(args[0])):
            return f"{outs[0]} = {ins[0]}[{args[0]!r}]"
        if forward is ops.reshape.forward and not kwargs and shapes_ok:
            shape = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            return f"{outs[0]} = {ins[0]}.reshape({tuple(int(n) for n in shape)!r})"
        return None
    template = IN_PLACE.get(forward) if in_place else None
    template = template or _TEMPLATES.get(forward)
    if template is None:
        return None
    return template.format(o=outs[0], **{f"i{k}": v for k, v in enumerate(ins)})


def _basic_index(index: object) -> bool:
    """An index of ints and slices (written back with repr), without index arrays."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(type(p) is int or (type(p) is slice and all(type(v) in (int, type(None))
               for v in (p.start, p.stop, p.step))) for p in parts)


# ----- ops that keep a backward ----------------------------------------------------------------
# For the ops of a recurrent step: what the backward reads (saved in the closure's register by
# the forward line, which is the op's template above) and the backward as a NumPy line. Each
# backward is the op's own rule with the same NumPy operations in the same order
# (tinygrad_rnn/autograd/ops/), so a replay gives the eager engine's values to the last bit.
_TRAINING: dict[Callable, tuple[str, Callable]] = {
    ops.mul.forward: ("({i0}, {i1})",
                      lambda r, g, c, n: f"{r} = ({f'{g} * {c}[1]' if n[0] else 'None'}, "
                                         f"{f'{g} * {c}[0]' if n[1] else 'None'})"),
    ops.add.forward: ("None", lambda r, g, c, n: f"{r} = ({g}, {g})"),
    ops.sub.forward: ("None", lambda r, g, c, n: f"{r} = ({g}, {f'-{g}' if n[1] else 'None'})"),
    ops.addmm.forward: ("({i1}, {i2})",
                        lambda r, g, c, n: f"{r} = ({g}, {f'{g} @ {c}[1].T' if n[1] else 'None'}, "
                                           f"{f'{c}[0].T @ {g}' if n[2] else 'None'})"),
    ops.tanh.forward: ("{o}", lambda r, g, c, n: f"_d = 1.0 - {c} * {c}; _d *= {g}; {r} = (_d,)"),
    ops.sigmoid.forward: ("{o}", lambda r, g, c, n: f"_d = 1.0 - {c}; _d *= {c}; _d *= {g}; "
                                                    f"{r} = (_d,)"),
}


def training_code(forward: Callable, out: str, ins: list[str], closure: str, needs: tuple | None,
                  plain: bool) -> str | None:
    """The forward line of an op that keeps a backward (its saved values in ``closure``), or None."""
    entry = _TRAINING.get(forward)
    if entry is None or not plain:
        return None
    if forward in (ops.mul.forward, ops.sub.forward, ops.addmm.forward) and needs is None:
        return None
    names = {f"i{k}": v for k, v in enumerate(ins)}
    return (_TEMPLATES[forward] + "; {c} = " + entry[0]).format(o=out, c=closure, **names)


def backward_code(forward: Callable, result: str, grad: str, closure: str, needs: tuple | None) -> str:
    """The backward line of an op whose forward :func:`training_code` wrote."""
    return _TRAINING[forward][1](result, grad, closure, needs)
