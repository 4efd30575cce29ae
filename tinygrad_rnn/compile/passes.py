"""From a schedule to a program, and the small passes that make the program fast.

:func:`lower` writes the schedule as a flat list of statements over named variables: values
``v<slot>``, backward functions ``b<step>``, gradients ``g<k>_<slot>`` (of the k-th ``backward()``)
and the results of backward functions ``r<k>_<step>``. The backward walk is unrolled in the
order the eager walk visited the nodes, so a replay needs no graph, no topological sort and no
per-node bookkeeping. Each pass is one function over that list:

- :func:`batch_weight_gradients`: a weight used at every time step (``h @ W_hhᵀ``) receives T
  pieces ``aₜᵀ gₜ``; their sum is one GEMM over the stacked operands, ``[a₁; …; a_T]ᵀ [g₁; …; g_T]``.
- :func:`accumulate_in_place`: a gradient with several contributions is summed into a buffer the
  program owns, in place from the third contribution on (the first may be someone else's array).
- :func:`free_dead_values`: each variable is dropped right after its last use (liveness), so a
  replay holds only what backward functions still need.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import ops as library_ops
from ..autograd.ops import addmm, matmul, unbind
from .trace import BackwardStep, EffectStep, OpStep, Schedule

# Library ops are known by the module their array function lives in (the names follow the package, so
# a move cannot silently turn every library op into a user op); user ops are never trusted.
LIBRARY_OP_MODULES = (library_ops.__name__, __name__.rpartition(".")[0])

__all__ = [
    "Read", "Run", "CallEffect", "Backprop", "Accumulate", "WeightGemm", "StoreGrad", "Free",
    "Program", "lower", "batch_weight_gradients", "accumulate_in_place", "free_dead_values",
    "optimize", "output_slots", "remove_dead_code", "share_stacked_gradients", "Reuse",
    "LIBRARY_OP_MODULES", "is_library_forward",
]


# ----- statements ---------------------------------------------------------------------------------
@dataclass
class Read:
    """``var = input[position]`` or ``var = externals[position].data``."""
    var: str
    kind: str
    position: int


@dataclass
class Run:
    """``outs, closure = forward(*ins, ...)`` for op step ``step``."""
    step: int
    ins: list[str]
    outs: list[str]
    closure: str | None
    needs: tuple | None


@dataclass
class CallEffect:
    """Call the recorded side effect of schedule step ``step`` (an optimizer update, ...) again."""
    step: int


@dataclass
class Backprop:
    """``result = closure(*grads)``; a grad given as ``(shape, dtype)`` is zeros."""
    closure: str
    grads: list
    result: str


@dataclass
class Accumulate:
    """``dest (+)= source``: ``("grad", k, step, j)`` is input j's gradient from ``r<k>_<step>``,
    ``("seed", array)`` a root's seed."""
    dest: str
    source: tuple
    shape: tuple
    dtype: np.dtype
    label: str
    mode: str = "assign"   # "assign", "add" (a new array) or "iadd" (in place, into an owned one)
    exact: bool = False    # the gradient arrives with the input's shape and dtype: nothing to fit


@dataclass
class WeightGemm:
    """``dest (+)= concat(a)ᵀ concat(g)``: a weight's per-step gradients as one product. With
    ``stacked``, the g are first stacked into that variable (time-major), which a later unbind's
    backward reuses instead of stacking them again."""
    dest: str
    a_vars: list[str]
    g_vars: list[str]
    shape: tuple
    dtype: np.dtype
    mode: str = "assign"
    stacked: str | None = None


@dataclass
class Reuse:
    """``result = (var,)``: a backward's result that another statement already computed."""
    result: str
    var: str


@dataclass
class StoreGrad:
    """Add ``var`` into ``.grad`` of a leaf (an external or an input tensor), as backward does."""
    kind: str
    position: int
    var: str
    fresh: bool = False    # the program made this array: .grad may take it without a copy


@dataclass
class Free:
    """``del vars``: the variables' last use is behind, so their buffers go back to the allocator."""
    vars: list[str]


@dataclass
class Program:
    """The lowered step: straight-line ``statements``, the ``outputs`` the result is built from, and
    ``labels`` naming variables for the generated source."""
    statements: list
    outputs: list[str]                      # the variables the result is built from
    labels: dict[str, str] = field(default_factory=dict)


def reads(s: Any) -> list[str]:
    if isinstance(s, Reuse):
        return [s.var]
    if isinstance(s, Run):
        return s.ins
    if isinstance(s, Backprop):
        return [s.closure] + [g for g in s.grads if isinstance(g, str)]
    if isinstance(s, Accumulate):
        src = [f"r{s.source[1]}_{s.source[2]}"] if s.source[0] == "grad" else []
        return src + ([s.dest] if s.mode != "assign" else [])
    if isinstance(s, WeightGemm):
        return s.a_vars + s.g_vars + ([s.dest] if s.mode != "assign" else [])
    if isinstance(s, StoreGrad):
        return [s.var]
    return []


def writes(s: Any) -> list[str]:
    if isinstance(s, Read):
        return [s.var]
    if isinstance(s, Run):
        return s.outs + ([s.closure] if s.closure else [])
    if isinstance(s, Backprop):
        return [s.result]
    if isinstance(s, WeightGemm):
        return [s.dest] + ([s.stacked] if s.stacked else [])
    if isinstance(s, Accumulate):
        return [s.dest]
    if isinstance(s, Reuse):
        return [s.result]
    return []


# ----- lowering -----------------------------------------------------------------------------------
def lower(schedule: Schedule) -> Program:
    """The schedule as statements; the backward walks unrolled."""
    statements: list = []
    read: set[int] = set()
    slots = schedule.slots

    def value(slot: int) -> str:
        info = slots[slot]
        if info.kind != "op" and slot not in read:
            read.add(slot)
            statements.append(Read(f"v{slot}", info.kind, info.source))
        return f"v{slot}"

    backward_count = 0
    for index, step in enumerate(schedule.steps):
        if isinstance(step, OpStep):
            ins = [value(s) for s in step.inputs]
            statements.append(Run(index, ins, [f"v{o}" for o in step.outputs],
                                  f"b{index}" if step.has_node else None, step.needs))
        elif isinstance(step, EffectStep):
            statements.append(CallEffect(index))
        elif isinstance(step, BackwardStep):
            _lower_backward(schedule, step, backward_count, statements)
            backward_count += 1
    outputs = [value(s) for s in output_slots(schedule.outputs)]
    labels = {f"v{s.index}": s.label for s in slots}
    return Program(statements, outputs, labels)


def _lower_backward(schedule: Schedule, step: BackwardStep, k: int, statements: list) -> None:
    slots, steps = schedule.slots, schedule.steps
    defined: set[str] = set()
    leaves: dict[int, None] = {}

    def grad(slot: int) -> str:
        return f"g{k}_{slot}"

    for root, seed in zip(step.roots, step.seeds):
        info = slots[root]
        statements.append(Accumulate(grad(root), ("seed", seed), info.shape, info.dtype, info.label))
        defined.add(grad(root))
        if info.kind != "op":
            leaves[root] = None
    for op_index, inputs in step.nodes:
        op = steps[op_index]
        if not any(grad(o) in defined for o in op.outputs):
            continue  # no gradient reaches this node (as in the eager walk)
        grads = [grad(o) if grad(o) in defined else (slots[o].shape, slots[o].dtype) for o in op.outputs]
        result = f"r{k}_{op_index}"
        statements.append(Backprop(f"b{op_index}", grads, result))
        for j, (slot, requires_grad, is_leaf) in enumerate(inputs):
            if not requires_grad:
                continue
            info = slots[slot]
            statements.append(Accumulate(grad(slot), ("grad", k, op_index, j), info.shape,
                                         info.dtype, op.name, exact=exact_gradient(schedule, op, j)))
            defined.add(grad(slot))
            if is_leaf:
                leaves[slot] = None
    for slot in leaves:
        statements.append(StoreGrad(slots[slot].kind, slots[slot].source, grad(slot)))


def output_slots(structure: Any) -> list[int]:
    """The slots at the leaves of a result's structure, in order (depth first, left to right)."""
    found: list[int] = []
    stack = [structure]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        kind, content = item
        if kind == "tensor":
            found.append(content)
        else:
            children = list(content.values()) if kind == "dict" else list(content)
            stack.extend(reversed(children))
    return found


# Library ops whose backward returns every input's gradient at exactly that input's shape.
_EXACT_SHAPE = {"chunk", "split", "unbind", "stack", "cat", "reshape", "transpose", "permute", "T",
                "getitem", "embedding", "matmul", "chunk_activations"}


def is_library_forward(forward: Any, ops_only: bool = False) -> bool:
    """Whether ``forward`` is the array function of one of the library's ops (``ops_only``) or of
    the library's ops or compile's fused ones."""
    module = getattr(forward, "__module__", None) or ""
    prefixes = LIBRARY_OP_MODULES[:1] if ops_only else LIBRARY_OP_MODULES
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def exact_gradient(schedule: Schedule, op: OpStep, j: int) -> bool:
    """Whether input ``j`` of a library op gets its gradient already at its own shape and dtype
    (no broadcast to undo): then the replay adds it as it is. A library op's backward returns
    the input's shape or the output's (broadcast) shape, in the input's dtype, so equal shapes
    suffice; some ops are exact whatever the shapes. User ops are always fitted."""
    if not is_library_forward(op.forward):
        return False
    shape = schedule.slots[op.inputs[j]].shape
    if shape == ():
        return False  # NumPy may hand back a scalar
    if op.name == "matmul":
        return all(len(schedule.slots[s].shape) == 2 for s in op.inputs)
    if op.name in _EXACT_SHAPE or (op.name == "addmm" and j > 0):
        return True
    return not op.many and schedule.slots[op.outputs[0]].shape == shape



# ----- passes -------------------------------------------------------------------------------------
def batch_weight_gradients(program: Program, schedule: Schedule) -> Program:
    """Replace the pieces ``aᵀ g`` that 2-D products (``addmm``'s b, ``matmul``'s b) send to one
    weight by a single :class:`WeightGemm`; their products stop computing that gradient."""
    steps, slots = schedule.steps, schedule.slots
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(program.statements):
        if not isinstance(s, Accumulate) or s.source[0] != "grad":
            continue
        op = steps[s.source[2]]
        j = s.source[3]
        a_index = {addmm.forward: 1, matmul.forward: 0}.get(op.forward)
        if a_index is None or j != a_index + 1:
            continue
        a, b = op.inputs[a_index], op.inputs[j]
        if len(slots[a].shape) == 2 and len(slots[b].shape) == 2:
            groups.setdefault(s.dest, []).append(i)
    runs = {s.step: s for s in program.statements if isinstance(s, Run)}
    replaced: dict[int, WeightGemm | None] = {}
    for dest, members in groups.items():
        if len(members) < 2:
            continue
        a_vars, g_vars = [], []
        for i in members:
            s = program.statements[i]
            k, op_index, j = s.source[1], s.source[2], s.source[3]
            op = steps[op_index]
            a_vars.append(f"v{op.inputs[j - 1]}")
            g_vars.append(f"g{k}_{op.outputs[0]}")
            run = runs[op_index]
            needs = list(run.needs)
            needs[j] = False  # the product no longer computes aᵀ g itself
            run.needs = tuple(needs)
            replaced[i] = None
        first = program.statements[members[0]]
        replaced[members[-1]] = WeightGemm(dest, a_vars, g_vars, first.shape, first.dtype)
    if replaced:
        statements = []
        for i, s in enumerate(program.statements):
            if i not in replaced:
                statements.append(s)
            elif replaced[i] is not None:
                statements.append(replaced[i])
        program.statements = statements
    return program


def share_stacked_gradients(program: Program, schedule: Schedule) -> Program:
    """When a weight's gradient pieces ``gₜ`` are exactly the gradients an ``unbind`` of the
    hoisted input projection gets back (``addmm(gx_t, h, W)``: dL/dgx_t = gₜ), stack them once,
    in time order: the weight's product reads the stack, and the unbind's backward, which would
    stack the same arrays again, takes it as its result."""
    steps = schedule.steps
    piece_of: dict[int, tuple[int, int]] = {}   # slot -> (unbind step, position)
    for index, step in enumerate(steps):
        if isinstance(step, OpStep) and step.forward is unbind.forward and step.args in ((), (0,)) \
                and not step.kwargs:
            for position, slot in enumerate(step.outputs):
                piece_of[slot] = (index, position)
    contributions: dict[str, list[Any]] = {}
    for s in program.statements:
        if isinstance(s, (Accumulate, WeightGemm)):
            contributions.setdefault(s.dest, []).append(s)
    backprops = {s.closure: (i, s) for i, s in enumerate(program.statements) if isinstance(s, Backprop)}
    for gemm in [s for s in program.statements if isinstance(s, WeightGemm)]:
        placed = {}
        for g_var in gemm.g_vars:
            k, out_slot = g_var[1:].split("_")
            op_index = schedule.slots[int(out_slot)].source
            op = steps[op_index]
            if op.forward is not addmm.forward or op.inputs[0] not in piece_of:
                break
            unbind_step, position = piece_of[op.inputs[0]]
            dest = f"g{k}_{op.inputs[0]}"
            only = contributions.get(dest, [])
            if len(only) != 1 or not isinstance(only[0], Accumulate) or \
                    only[0].source[:3] != ("grad", int(k), op_index):
                break
            placed[position] = (unbind_step, k, g_var, gemm.a_vars[gemm.g_vars.index(g_var)])
        else:
            steps_used = {u for u, _, _, _ in placed.values()}
            if len(steps_used) != 1 or len({k for _, k, _, _ in placed.values()}) != 1:
                continue
            unbind_step = steps_used.pop()
            k = next(iter(placed.values()))[1]
            if sorted(placed) != list(range(len(steps[unbind_step].outputs))):
                continue
            entry = backprops.get(f"b{unbind_step}")
            if entry is None or entry[1].result != f"r{k}_{unbind_step}":
                continue
            order = [placed[p] for p in sorted(placed)]
            gemm.g_vars = [g for _, _, g, _ in order]
            gemm.a_vars = [a for _, _, _, a in order]
            gemm.stacked = f"s{k}_{unbind_step}"
            program.statements[entry[0]] = Reuse(entry[1].result, gemm.stacked)
    return program


def accumulate_in_place(program: Program) -> Program:
    """Choose how each gradient contribution is added: the first is taken as it is, the second
    makes a new array (the first may belong to someone else), later ones add in place into that
    array, which the program owns; a leaf's ``.grad`` takes an owned array without a copy."""
    count: dict[str, int] = {}
    owned: dict[str, bool] = {}
    for s in program.statements:
        if isinstance(s, (Accumulate, WeightGemm)):
            c = count.get(s.dest, 0)
            if c == 0:
                s.mode = "assign"
                owned[s.dest] = isinstance(s, WeightGemm)
            else:
                s.mode = "iadd" if owned[s.dest] else "add"
                owned[s.dest] = True
            count[s.dest] = c + 1
        elif isinstance(s, StoreGrad):
            s.fresh = owned.get(s.var, False)
    return program


def free_dead_values(program: Program) -> Program:
    """Insert :class:`Free` after the last statement that uses each variable (the result's
    variables are kept)."""
    keep = set(program.outputs)
    last: dict[str, int] = {}
    for i, s in enumerate(program.statements):
        for v in writes(s):
            last[v] = i
        for v in reads(s):
            last[v] = i
    dying: dict[int, list[str]] = {}
    for v, i in last.items():
        if v not in keep:
            dying.setdefault(i, []).append(v)
    statements = []
    for i, s in enumerate(program.statements):
        statements.append(s)
        if i in dying:
            statements.append(Free(dying[i]))
    program.statements = statements
    return program


def remove_dead_code(program: Program, schedule: Schedule) -> Program:
    """Drop library ops whose results nothing reads (e.g. a layer's stacked outputs when only
    its final state is used) and that keep no backward; dropout stays, since skipping it would
    change the random numbers drawn after it."""
    from ..autograd.ops.elementwise import dropout_forward_op
    statements = program.statements
    keep = set(program.outputs)
    while True:
        read: set[str] = set(keep)
        for s in statements:
            read.update(reads(s))
        alive = []
        for s in statements:
            if isinstance(s, Run) and s.closure is None and not any(v in read for v in s.outs):
                forward = schedule.steps[s.step].forward
                if is_library_forward(forward, ops_only=True) and forward is not dropout_forward_op.forward:
                    continue
            if isinstance(s, Read) and s.var not in read:
                continue
            if isinstance(s, Accumulate) and s.mode == "assign" and s.dest not in read:
                continue   # a gradient nothing uses (an input slice whose stack is shared)
            alive.append(s)
        if len(alive) == len(statements):
            program.statements = statements
            return program
        statements = alive


def optimize(schedule: Schedule, free: bool = True) -> tuple[Program, Schedule]:
    """Fuse, lower and run the passes (without liveness when ``free`` is False, so a checking
    replay can compare every value). Returns the program and the schedule it runs (the fused
    one; the captured schedule is not changed)."""
    from .fusion import fuse_chunk_activations
    schedule = fuse_chunk_activations(schedule)
    program = batch_weight_gradients(lower(schedule), schedule)
    program = accumulate_in_place(share_stacked_gradients(program, schedule))
    if free:  # a checking replay keeps everything, to compare every value
        program = free_dead_values(remove_dead_code(program, schedule))
    return program, schedule
