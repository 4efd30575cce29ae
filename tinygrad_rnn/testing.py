"""Checks for your own tests: close values, gradients, and a handwritten BPTT against autograd.

Everything here is a plain function that raises ``AssertionError`` (a subclass of it) with a
message naming the worst element, so it works directly inside pytest:

- :func:`assert_close`: ``|actual - expected| <= atol + rtol·|expected|`` elementwise, with
  tolerances chosen from the dtype (as ``torch.testing.assert_close`` does);
- :func:`check_gradients`: reverse mode against central differences in float64 (and against your
  own gradient function), with random non-uniform upstream gradients;
- :func:`crosscheck_cell`: a recurrent cell unrolled by the engine against your handwritten
  forward and backward through time.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .autograd.gradcheck import GradcheckError, numeric_gradient, numeric_gradients, reverse_gradients
from .autograd.tensor import Tensor, no_grad, run_backward

__all__ = ["assert_close", "default_tolerances", "check_gradients", "crosscheck_cell", "CellCheck",
           "CellCheckError", "GradcheckError"]

# (rtol, atol) by dtype: torch.testing's defaults.
_TOLERANCES = {
    np.dtype(np.float16): (1e-3, 1e-5),
    np.dtype(np.float32): (1.3e-6, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-7),
}


class CellCheckError(AssertionError):
    """A handwritten cell derivation (or the engine) disagrees; the message says where."""


def default_tolerances(*dtypes: Any) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing arrays of these dtypes: those of the least precise one
    (float16 1e-3/1e-5, float32 1.3e-6/1e-5, float64 1e-7/1e-7; integers and bools exact)."""
    best = (0.0, 0.0)
    for dtype in dtypes:
        tol = _TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))
        best = (max(best[0], tol[0]), max(best[1], tol[1]))
    return best


def _array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            return array
    raise TypeError(f"assert_close: {name} must be a Tensor, an array or a number, got {type(value).__name__}")


def _index(flat: int, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _mismatch(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float,
             labels: tuple[str, str] = ("actual", "expected"), equal_nan: bool = False) -> str | None:
    """None when every element is close; else one line naming how many elements differ and the
    worst one (the largest ``|a - e| / (atol + rtol·|e|)``): its index, both values, the difference."""
    a = actual.astype(np.float64) if actual.dtype.kind in "biu" else actual
    e = expected.astype(np.float64) if expected.dtype.kind in "biu" else expected
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
        allowed = atol + rtol * np.abs(e)
        finite = np.isfinite(a) & np.isfinite(e)
        close = np.where(finite, diff <= allowed, a == e)  # infinities: only the same one
        if equal_nan:
            close |= np.isnan(a) & np.isnan(e)
    if np.all(close):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(close, -1.0, np.where(np.isnan(diff), np.inf, diff / np.maximum(allowed, 1e-300)))
    worst = int(np.argmax(score))
    index = _index(worst, a.shape)
    av, ev = a.reshape(-1)[worst], e.reshape(-1)[worst]
    count = int(np.size(close) - np.count_nonzero(close))
    return (f"{count} of {np.size(close)} elements differ (rtol={rtol:g}, atol={atol:g}); worst at "
            f"index {index}: {labels[0]} {float(av)!r}, {labels[1]} {float(ev)!r}, "
            f"difference {float(av) - float(ev):.3g}")


def assert_close(actual: Any, expected: Any, rtol: float | None = None, atol: float | None = None, *,
                 equal_nan: bool = False, msg: str | None = None) -> None:
    """Assert ``|actual - expected| <= atol + rtol·|expected|`` for every element.

    ``actual``/``expected``: Tensors, arrays or numbers of the same shape (no broadcasting).
    Tolerances left as None come from the dtypes (:func:`default_tolerances`; give both or
    neither). Raises ``AssertionError`` naming the worst element: its index, both values and
    their difference, prefixed by ``msg``.
    """
    a, e = _array(actual, "actual"), _array(expected, "expected")
    if (rtol is None) != (atol is None):
        raise ValueError("assert_close: give both rtol and atol, or neither (dtype defaults)")
    if rtol is None:
        rtol, atol = default_tolerances(a.dtype, e.dtype)
    if rtol < 0 or atol < 0:
        raise ValueError(f"assert_close: rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    prefix = f"{msg}: " if msg else ""
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shapes differ: actual {a.shape}, expected {e.shape}")
    problem = _mismatch(a, e, rtol, atol, equal_nan=equal_nan)
    if problem:
        raise AssertionError(prefix + problem)


# ----- gradients --------------------------------------------------------------------------------
def check_gradients(fn: Callable[..., Any], inputs: Sequence[Any], reference: Callable[..., Any] | None = None,
                    *, eps: float = 1e-6, rtol: float = 1e-3, atol: float = 1e-5,
                    reference_rtol: float = 1e-7, reference_atol: float = 1e-9, seed: int = 0,
                    names: Sequence[str] | None = None) -> list[np.ndarray | None]:
    """Check the engine's gradients of ``fn(*inputs)`` in float64.

    ``fn`` returns a Tensor or a tuple of Tensors ``y``. With random standard-normal upstream
    gradients ``u`` (one per output; non-uniform, so rules that only preserve sums are caught),
    reverse mode's ``∂(Σ u·y)/∂x`` is compared with central differences (``eps``, ``rtol``,
    ``atol``) for every input ``x`` that is checked: a floating array or number, or a Tensor with
    ``requires_grad``. Inputs are copied to float64 leaves (the caller's are not touched); integer
    inputs (indices) and Tensors without ``requires_grad`` pass through as constants.

    ``reference(u, *arrays)``, if given, is your own vector-Jacobian product: ``u`` is the upstream
    array (a tuple of them when ``fn`` returns a tuple), ``arrays`` the float64 inputs; it returns
    one gradient per input (None for constants; a bare array when there is one input). It must
    agree with reverse mode to ``reference_rtol``/``reference_atol``.

    Returns the reverse-mode gradients (None for constants); raises :class:`GradcheckError`
    (an ``AssertionError``) naming the input, the worst element, both values and the difference.
    """
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = (inputs,)
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"check_gradients: inputs must be a list or tuple, got {type(inputs).__name__}")
    if names is not None and len(names) != len(inputs):
        raise ValueError(f"check_gradients: {len(names)} names for {len(inputs)} inputs")
    leaves, checked = [], []
    for i, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.dtype.kind not in "biuf":
            raise TypeError(f"check_gradients: inputs[{i}] must be numeric, got {type(x).__name__}")
        wanted = data.dtype.kind == "f" and (x.requires_grad if isinstance(x, Tensor) else True)
        if wanted:
            leaves.append(Tensor(np.array(data, dtype=np.float64), requires_grad=True))
            checked.append(i)
        else:
            leaves.append(x if isinstance(x, Tensor) else Tensor(data))
    if not checked:
        raise ValueError("check_gradients: no input to check (give floating arrays or Tensors with requires_grad)")
    label = (lambda i: f"input {i} ({names[i]!r})") if names else (lambda i: f"input {i}")

    upstream, got = reverse_gradients(fn, leaves, checked, np.random.default_rng(seed))
    for i, numeric, grad in zip(checked, numeric_gradients(fn, leaves, checked, upstream, eps), got):
        problem = _mismatch(grad, numeric, rtol, atol, ("autograd", "numeric"))
        if problem:
            raise GradcheckError(f"check_gradients: {label(i)}, autograd vs central differences: {problem}")

    if reference is not None:
        with no_grad():
            single = not isinstance(fn(*leaves), (tuple, list))
        u = upstream[0] if single else tuple(upstream)
        ref = reference(u, *[t.data.copy() for t in leaves])
        ref = (ref,) if len(inputs) == 1 and not isinstance(ref, (tuple, list)) else tuple(ref)
        if len(ref) != len(inputs):
            raise ValueError(f"check_gradients: reference returned {len(ref)} gradients for {len(inputs)} inputs")
        for i, grad in zip(checked, got):
            if ref[i] is None:
                raise ValueError(f"check_gradients: reference returned None for {label(i)}, which is checked")
            mine = np.asarray(ref[i], dtype=np.float64)
            if mine.shape != grad.shape:
                raise AssertionError(f"check_gradients: {label(i)}: reference gradient has shape "
                                     f"{mine.shape}, the input {grad.shape}")
            problem = _mismatch(grad, mine, reference_rtol, reference_atol, ("autograd", "reference"))
            if problem:
                raise GradcheckError(f"check_gradients: {label(i)}, autograd vs reference: {problem}")
    grads: list[np.ndarray | None] = [None] * len(inputs)
    for i, g in zip(checked, got):
        grads[i] = g
    return grads


# ----- cells ------------------------------------------------------------------------------------
@dataclass
class CellCheck:
    """What :func:`crosscheck_cell` measured: the largest absolute and relative differences of
    autograd vs the handwritten analytic module (outputs, final states, every gradient) and vs
    central differences (every gradient), and one message per disagreement."""

    name: str
    max_abs_analytic: float
    max_rel_analytic: float
    max_abs_numeric: float = float("nan")
    max_rel_numeric: float = float("nan")
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _unroll(cell: Any, x: Tensor, state0: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """outputs (T, N, O) stacked from ``cell.step`` over the T steps of ``x``, and the final state."""
    from .autograd.ops import stack, unbind
    state = tuple(state0)
    outputs = []
    for x_t in unbind(x, 0):
        output, state = cell.step(x_t, state)
        state = tuple(state)
        outputs.append(output)
    return stack(outputs, 0), list(state)


def _as_float64(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"crosscheck_cell: {what} must be an array, got {type(value).__name__}") from None
    return array


def _expect_shape(array: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    if array.shape != shape:
        raise ValueError(f"crosscheck_cell: {what} has shape {array.shape}, expected {shape}")
    return array


class _Problem:
    """The cell, its float64 parameters and one draw of inputs and upstream gradients."""

    def __init__(self, cell: Any, steps: int, batch: int, seed: int, input_size: int | None):
        self.cell = copy.deepcopy(cell)  # float64 on a copy: the caller's cell is untouched
        self.params = list(self.cell.named_parameters())
        if not self.params:
            raise ValueError("crosscheck_cell: the cell has no parameters (named_parameters() is empty)")
        for _, p in self.params:
            p.data = p.data.astype(np.float64)
            p.grad = None
        self.state_size = tuple(int(s) for s in self.cell.state_size)
        self.output_size = int(self.cell.output_size)
        if input_size is None:
            input_size = getattr(self.cell, "input_size", None)
        if input_size is None:
            raise ValueError("crosscheck_cell: the cell has no input_size attribute; pass input_size=")
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((steps, batch, int(input_size)))
        self.state0 = [0.5 * rng.standard_normal((batch, s)) for s in self.state_size]
        self.d_out = rng.standard_normal((steps, batch, self.output_size))
        self.d_state = [rng.standard_normal((batch, s)) for s in self.state_size]
        self.steps, self.batch = steps, batch

    def leaves(self, steps: int) -> tuple[Tensor, list[Tensor]]:
        return (Tensor(self.x[:steps].copy(), requires_grad=True),
                [Tensor(s.copy(), requires_grad=True) for s in self.state0])

    def autograd(self, steps: int) -> dict[str, np.ndarray]:
        x, state0 = self.leaves(steps)
        for _, p in self.params:
            p.grad = None
        out, final = _unroll(self.cell, x, state0)
        _expect_shape(out.data, (steps, self.batch, self.output_size), "the cell's stacked outputs")
        for k, s in enumerate(final):
            _expect_shape(s.data, (self.batch, self.state_size[k]), f"the cell's state[{k}]")
        run_backward([out] + final, [self.d_out[:steps]] + self.d_state, retain_graph=False)
        values = {"outputs": out.data}
        values.update({f"final state[{k}]": s.data for k, s in enumerate(final)})
        values["gradient of x"] = x.grad
        values.update({f"gradient of state0[{k}]": s.grad if s.grad is not None else np.zeros_like(s.data)
                       for k, s in enumerate(state0)})
        for name, p in self.params:
            values[f"gradient of {name!r}"] = p.grad if p.grad is not None else np.zeros_like(p.data)
            p.grad = None
        return values

    def analytic(self, forward: Callable, backward: Callable, steps: int) -> dict[str, np.ndarray]:
        params = {name: p.data.copy() for name, p in self.params}
        result = forward(self.x[:steps].copy(), tuple(s.copy() for s in self.state0), params)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise TypeError("crosscheck_cell: forward(x, state0, params) must return (outputs, final_state, cache)")
        outputs, final, cache = result
        final = _states(final, len(self.state_size), "forward's final_state")
        values = {"outputs": _expect_shape(_as_float64(outputs, "forward's outputs"),
                                           (steps, self.batch, self.output_size), "forward's outputs")}
        for k, s in enumerate(final):
            values[f"final state[{k}]"] = _expect_shape(_as_float64(s, f"final_state[{k}]"),
                                                        (self.batch, self.state_size[k]), f"forward's final_state[{k}]")
        grads = backward(self.d_out[:steps].copy(), tuple(d.copy() for d in self.d_state), cache)
        if not isinstance(grads, Mapping):
            raise TypeError(f"crosscheck_cell: backward must return a dict, got {type(grads).__name__}")
        wanted = ["x", "state0"] + [name for name, _ in self.params]
        missing = [k for k in wanted if k not in grads]
        if missing:
            raise ValueError(f"crosscheck_cell: backward's dict lacks {missing} (it needs 'x', 'state0' "
                             f"and every parameter name: {wanted[2:]})")
        values["gradient of x"] = _expect_shape(_as_float64(grads["x"], "backward's 'x'"),
                                                self.x[:steps].shape, "backward's 'x'")
        for k, g in enumerate(_states(grads["state0"], len(self.state_size), "backward's 'state0'")):
            values[f"gradient of state0[{k}]"] = _expect_shape(
                _as_float64(g, f"backward's 'state0'[{k}]"), self.state0[k].shape, f"backward's 'state0'[{k}]")
        for name, p in self.params:
            values[f"gradient of {name!r}"] = _expect_shape(_as_float64(grads[name], f"backward's {name!r}"),
                                                            p.shape, f"backward's {name!r}")
        return values

    def numeric(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Autograd and central-difference gradients of Σ d_out·outputs + Σ d_state·final_state."""
        x, state0 = self.leaves(self.steps)
        named = [("gradient of x", x)] + [(f"gradient of state0[{k}]", s) for k, s in enumerate(state0)] + \
                [(f"gradient of {name!r}", p) for name, p in self.params]

        def loss() -> float:
            with no_grad():
                out, final = _unroll(self.cell, x, state0)
            return float(np.sum(out.data * self.d_out) + sum(np.sum(s.data * d) for s, d in zip(final, self.d_state)))

        return {key: numeric_gradient(loss, leaf) for key, leaf in named}


def _states(value: Any, count: int, what: str) -> tuple:
    if isinstance(value, (np.ndarray, Tensor)) and count == 1:
        value = (value,)
    if not isinstance(value, (tuple, list)) or len(value) != count:
        raise TypeError(f"crosscheck_cell: {what} must be a tuple of {count} arrays (one per state_size entry)")
    return tuple(value)


def _rel(a: np.ndarray, b: np.ndarray, floor: float) -> float:
    return float(np.max(np.abs(a - b) / (np.abs(b) + floor))) if a.size else 0.0


def _abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def crosscheck_cell(cell: Any, forward: Callable, backward: Callable, steps: int = 5, batch: int = 2,
                    seed: int = 0, *, input_size: int | None = None, rtol: float = 1e-7, atol: float = 1e-9,
                    numeric: bool = True, numeric_rtol: float = 1e-5, numeric_atol: float = 1e-7,
                    raise_exception: bool = True) -> CellCheck:
    """Unroll ``cell`` over ``steps`` steps with the engine and compare it with your handwritten
    forward and backward through time, in float64 (on a copy of the cell).

    ``cell`` follows the cell protocol (``state_size``, ``output_size``,
    ``step(x_t, state) -> (output, new_state)``, parameters from ``named_parameters()``; the input
    width from ``cell.input_size`` or ``input_size=``). Your functions, in NumPy:

    - ``forward(x, state0, params) -> (outputs, final_state, cache)``: ``x`` is ``(T, N, I)``,
      ``state0`` a tuple of ``(N, size)`` arrays (one per ``state_size`` entry), ``params`` a dict
      ``name -> array`` as ``named_parameters()`` names them; ``outputs`` is ``(T, N, output_size)``
      and ``final_state`` a tuple like ``state0``;
    - ``backward(d_outputs, d_final_state, cache) -> dict`` with ``"x"``, ``"state0"`` (a tuple)
      and one entry per parameter name: the gradients of ``L = Σ d_outputs·outputs +
      Σ d_final_state·final_state``.

    ``x``, ``state0`` and the upstream gradients are random (standard normal, from ``seed``), so
    every output, state and gradient matters. Outputs, final states and every gradient must agree
    to ``atol + rtol·|analytic|``; with ``numeric``, autograd's gradients must also agree with
    central differences (``numeric_rtol``/``numeric_atol``), which checks the engine itself. A
    disagreement raises :class:`CellCheckError` naming the quantity (e.g. ``gradient of
    'weight_hh'``), the first time step at which it disagrees (the shortest unroll, over steps
    ``0..t``, that already shows it) and the worst element; with ``raise_exception=False`` the
    returned :class:`CellCheck` lists the failures instead.
    """
    for value, what in ((steps, "steps"), (batch, "batch")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"crosscheck_cell: {what} must be an int >= 1, got {value!r}")
    for fn, what in ((forward, "forward"), (backward, "backward")):
        if not callable(fn):
            raise TypeError(f"crosscheck_cell: {what} must be callable, got {type(fn).__name__}")
    for attr in ("step", "state_size", "output_size", "named_parameters"):
        if not hasattr(cell, attr):
            raise TypeError(f"crosscheck_cell: {type(cell).__name__} lacks '{attr}' of the cell protocol "
                            "(state_size, output_size, step(x_t, state), named_parameters())")
    name = type(cell).__name__
    problem = _Problem(cell, int(steps), int(batch), seed, input_size)

    def disagreements(count: int) -> tuple[dict[str, str], list[tuple[np.ndarray, np.ndarray]]]:
        mine, theirs = problem.autograd(count), problem.analytic(forward, backward, count)
        bad = {}
        for key, a in mine.items():
            issue = _mismatch(a, theirs[key], rtol, atol, ("autograd", "analytic"))
            if issue:
                bad[key] = issue
        return bad, [(mine[k], theirs[k]) for k in mine]

    bad, pairs = disagreements(problem.steps)
    result = CellCheck(name, max(_abs(a, b) for a, b in pairs), max(_rel(a, b, 1e-8) for a, b in pairs))
    first_step: dict[str, int] = {}
    for count in range(1, problem.steps):  # the shortest unroll that already disagrees
        if len(first_step) == len(bad):
            break
        for key in disagreements(count)[0]:
            if key in bad:
                first_step.setdefault(key, count - 1)
    for key, issue in bad.items():
        t = first_step.get(key, problem.steps - 1)
        agree = "step 0" if t == 1 else f"steps 0..{t - 1}"
        where = "at time step 0" if t == 0 else f"at time step {t} (unrolled over {agree} they agree)"
        result.failures.append(f"{key}: autograd vs analytic first disagrees {where}: {issue}")

    if numeric:
        auto = problem.autograd(problem.steps)
        numbers = problem.numeric()
        result.max_abs_numeric = max(_abs(auto[k], n) for k, n in numbers.items())
        result.max_rel_numeric = max(_rel(auto[k], n, 1e-4) for k, n in numbers.items())
        for key, n in numbers.items():
            issue = _mismatch(auto[key], n, numeric_rtol, numeric_atol, ("autograd", "numeric"))
            if issue:
                result.failures.append(f"{key}: autograd vs central differences (the engine or the "
                                       f"cell's ops): {issue}")
    if result.failures and raise_exception:
        header = (f"crosscheck_cell({name}): {len(result.failures)} disagreement(s) over {problem.steps} "
                  f"steps, batch {problem.batch}, float64 (analytic rtol={rtol:g}, atol={atol:g})")
        raise CellCheckError("\n".join([header] + ["  " + f for f in result.failures]))
    return result
