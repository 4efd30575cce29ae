"""Optimizers, gradient clipping and learning-rate schedules.

Everything here works on raw NumPy arrays and never builds an autograd graph.
A *parameter* is any object with

* ``.data`` -- a floating NumPy array, updated **in place** (so views and
  aliases of it stay valid), and
* ``.grad`` -- an array of the same shape, or ``None`` (then it is skipped).

The update rules follow the algorithm boxes of PyTorch's documentation and the
order of floating-point operations of PyTorch's single-tensor CPU code path,
so trajectories agree with ``torch.optim`` to float rounding.  State buffers
keep the parameter's dtype (float32 stays float32).

Scalars such as ``lr`` are always converted to Python floats before they touch
an array: a NumPy float64 scalar would silently upcast float32 arithmetic.
"""

from __future__ import annotations

import abc
import copy
import math
from bisect import bisect_right
from typing import Any, Callable, Iterable, Protocol, Sequence, Union

import numpy as np

from ..autograd.engine import effect

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adagrad",
    "clip_grad_norm_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "clip_grad_value_",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
    "LinearLR",
    "SequentialLR",
    "warmup_cosine",
]


class ParameterLike(Protocol):
    """What optimizers need from a parameter (``nn.Parameter`` satisfies it)."""

    data: np.ndarray
    grad: np.ndarray | None


ParamsArg = Union[Iterable[ParameterLike], Iterable[dict]]


# --------------------------------------------------------------------------
# small in-place helpers mirroring the torch primitives the update rules use
# --------------------------------------------------------------------------

def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start <- start + weight * (end - start), in place.

    Like ``torch.lerp`` the formula is switched for weights >= 0.5
    (``end - (end - start) * (1 - weight)``) which is more accurate there.
    """
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1.0 - weight)


def _with_weight_decay(p: ParameterLike, grad: np.ndarray, weight_decay: float) -> np.ndarray:
    """g + wd * p (L2 penalty folded into the gradient); never modifies p.grad."""
    if weight_decay != 0:
        return grad + weight_decay * p.data
    return grad


# --------------------------------------------------------------------------
# Optimizer base class
# --------------------------------------------------------------------------

class Optimizer(abc.ABC):
    """Base class: parameter groups, per-parameter state, (de)serialisation.

    ``params`` is an iterable of parameters, or of dicts
    ``{"params": [...], "lr": ..., ...}`` (parameter groups) whose options
    override the optimizer's defaults.

    ``state`` maps ``id(param)`` to that parameter's dict of buffers.  It is
    keyed by identity rather than by the parameter itself because a Tensor
    that overloads ``==`` elementwise cannot be a dict key.
    """

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}

        if _looks_like_parameter(params) or isinstance(params, (np.ndarray, dict, str)):
            raise TypeError(
                "params must be an iterable of parameters or of dicts (parameter groups), "
                f"got a single {type(params).__name__}; wrap it in a list"
            )
        param_list = list(params)
        if len(param_list) == 0:
            raise ValueError("params: optimizer got an empty parameter list")
        groups = param_list if isinstance(param_list[0], dict) else [{"params": param_list}]
        for group in groups:
            self.add_param_group(group)

    # -- groups ------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group; missing options are filled in from the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(
                f"param_group must be a dict, got {type(param_group).__name__} "
                "(do not mix bare parameters and dicts in one params list)"
            )
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' key")
        params = param_group["params"]
        params = [params] if _looks_like_parameter(params) else list(params)
        if len(params) == 0:
            raise ValueError("param_group['params'] is empty")
        for i, p in enumerate(params):
            if not _looks_like_parameter(p):
                raise TypeError(
                    f"param_group['params'][{i}] must have .data and .grad, got {type(p).__name__}"
                )
            if not isinstance(p.data, np.ndarray) or not np.issubdtype(p.data.dtype, np.floating):
                raise TypeError(
                    f"param_group['params'][{i}].data must be a floating NumPy array, "
                    f"got {type(p.data).__name__} of dtype {getattr(p.data, 'dtype', None)}"
                )

        allowed = set(self.defaults) | {"params", "initial_lr"}
        unknown = sorted(set(param_group) - allowed)
        if unknown:
            raise ValueError(
                f"param_group has unknown option(s) {unknown}; "
                f"{type(self).__name__} accepts {sorted(self.defaults)}"
            )

        group = {**self.defaults, **param_group, "params": params}
        self._validate_group(group)

        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group (or twice in one)")
        self.param_groups.append(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check hyperparameters; subclasses extend this."""
        _check_nonneg(group, "lr")
        if "weight_decay" in group:
            _check_nonneg(group, "weight_decay")

    # -- stepping ----------------------------------------------------------
    @effect  # tinygrad_rnn.compile repeats this call on replay
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient (``grad = None``) or, if asked, zero it in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    @effect  # tinygrad_rnn.compile repeats this call on replay
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()`` if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad)
                if grad.shape != p.data.shape:
                    raise ValueError(
                        f"parameter gradient has shape {grad.shape}, expected the parameter's shape {p.data.shape}"
                    )
                state = self.state.setdefault(id(p), {})
                self._update(p, grad, state, group)
        return loss

    @abc.abstractmethod
    def _update(self, p: ParameterLike, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update one parameter in place from its gradient and its per-parameter state."""

    # -- serialisation -----------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain-dict snapshot: ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are referred to by their position over all groups (like
        torch).  Arrays are copied so that later steps do not alter the
        snapshot.
        """
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {
            index_of[pid]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for pid, s in self.state.items()
            if pid in index_of
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by :meth:`state_dict`.

        The current parameters are kept; groups and buffers must match them in
        number and shape (ValueError otherwise).  Buffers are copied and cast
        to each parameter's dtype.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} parameter group(s), optimizer has {len(self.param_groups)}"
            )
        params_by_index: dict[int, ParameterLike] = {}
        for gi, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(
                    f"param_groups[{gi}] in state_dict lacks option(s) {missing} of {type(self).__name__} "
                    "(was it saved from a different optimizer?)"
                )
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"param_groups[{gi}] has {len(saved['params'])} parameter(s) in state_dict, "
                    f"{len(group['params'])} in the optimizer"
                )
            for idx, p in zip(saved["params"], group["params"]):
                params_by_index[idx] = p

        new_state: dict[int, dict[str, Any]] = {}
        for idx, buffers in state_dict["state"].items():
            if idx not in params_by_index:
                raise ValueError(f"state_dict['state'] refers to parameter index {idx}, which no group contains")
            p = params_by_index[idx]
            restored = {}
            for name, value in buffers.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"state buffer '{name}' of parameter {idx} has shape {value.shape}, "
                            f"expected the parameter's shape {p.data.shape}"
                        )
                    value = value.astype(p.data.dtype, copy=True)
                restored[name] = value
            new_state[id(p)] = restored

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            options = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new_group = {**options, "params": group["params"]}
            self._validate_group(new_group)
            new_groups.append(new_group)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            opts = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {opts}")
        return "\n".join(lines + [")"])


def _looks_like_parameter(obj: Any) -> bool:
    return hasattr(obj, "data") and hasattr(obj, "grad")


def _check_nonneg(group: dict[str, Any], name: str) -> None:
    value = group[name]
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_beta(value: Any, name: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


# --------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum / Nesterov.

    g <- g + wd * p
    b <- g                          (first step)
    b <- mu * b + (1 - dampening) * g (later steps)
    g <- g + mu * b  if nesterov else  b
    p <- p - lr * g
    """

    def __init__(
        self,
        params: ParamsArg,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_nonneg(group, "momentum")
        _check_nonneg(group, "dampening")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening == 0, "
                f"got momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, p, grad, state, group):
        lr, mu = float(group["lr"]), float(group["momentum"])
        grad = _with_weight_decay(p, grad, float(group["weight_decay"]))
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=p.data.dtype, copy=True)
            else:
                buf *= mu
                buf += (1.0 - float(group["dampening"])) * grad
            grad = grad + mu * buf if group["nesterov"] else buf
        p.data += -lr * grad


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum.

    g <- g + wd * p
    v <- alpha * v + (1 - alpha) * g^2
    centered:  ga <- lerp(ga, g, 1 - alpha);  denom = sqrt(v - ga^2) + eps
    otherwise: denom = sqrt(v) + eps
    momentum:  b <- mu * b + g / denom;  p <- p - lr * b
    otherwise: p <- p - lr * g / denom
    """

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        super()._validate_group(group)
        _check_nonneg(group, "alpha")
        _check_nonneg(group, "eps")
        _check_nonneg(group, "momentum")

    def _update(self, p, grad, state, group):
        lr, alpha, eps, mu = (float(group[k]) for k in ("lr", "alpha", "eps", "momentum"))
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if mu > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        grad = _with_weight_decay(p, grad, float(group["weight_decay"]))

        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1.0 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, grad, 1.0 - alpha)
            denom = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denom = np.sqrt(square_avg)
        denom += eps

        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            buf += grad / denom
            p.data += -lr * buf
        else:
            p.data += -lr * (grad / denom)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with torch's bias correction and optional AMSGrad.

    g <- g + wd * p                         (Adam's coupled L2 decay)
    m <- lerp(m, g, 1 - b1)                 (= b1*m + (1-b1)*g)
    v <- b2 * v + (1 - b2) * g^2
    vmax <- max(vmax, v);  use vmax for v   (amsgrad)
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    _decoupled_weight_decay = False

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        super()._validate_group(group)
        _check_nonneg(group, "eps")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_beta(betas[0], "betas[0]")
        _check_beta(betas[1], "betas[1]")

    def _update(self, p, grad, state, group):
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        step = state["step"]

        if wd != 0:
            if self._decoupled_weight_decay:
                p.data *= 1.0 - lr * wd
            else:
                grad = grad + wd * p.data

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(exp_avg, grad, 1.0 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * grad * grad

        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5

        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        else:
            second_moment = exp_avg_sq
        denom = np.sqrt(second_moment) / bias_correction2_sqrt
        denom += eps
        p.data += -step_size * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter).

    p <- p * (1 - lr * wd), then the Adam step with no L2 term in g.
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.) with torch's learning-rate decay.

    g <- g + wd * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s <- s + g^2                     (s starts at initial_accumulator_value)
    p <- p - clr * g / (sqrt(s) + eps)

    Unlike torch, the accumulator is created at a parameter's first update
    rather than in the constructor, so parameters that never get a gradient
    carry no state; the values are the same.
    """

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    def _validate_group(self, group):
        super()._validate_group(group)
        _check_nonneg(group, "lr_decay")
        _check_nonneg(group, "initial_accumulator_value")
        _check_nonneg(group, "eps")

    def _update(self, p, grad, state, group):
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p.data, float(group["initial_accumulator_value"]))
        state["step"] += 1
        step = state["step"]
        grad = _with_weight_decay(p, grad, float(group["weight_decay"]))

        clr = lr / (1 + (step - 1) * lr_decay)
        state["sum"] += grad * grad
        std = np.sqrt(state["sum"])
        std += eps
        p.data += -clr * (grad / std)


# --------------------------------------------------------------------------
# Gradient clipping
# --------------------------------------------------------------------------

def _grads_of(params: ParameterLike | Iterable[ParameterLike]) -> list[np.ndarray]:
    items = [params] if _looks_like_parameter(params) else list(params)
    return [p.grad for p in items if p.grad is not None]


def get_total_norm(
    tensors: np.ndarray | Iterable[np.ndarray | None],
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """The norm of the concatenation of ``tensors`` (e.g. the gradients); ``None`` entries are skipped.

    total = || concat(tensors) ||_norm_type   (inf: max |g|; 0.0 for no tensors)

    As ``torch.nn.utils.get_total_norm``: ``error_if_nonfinite=True`` raises ``RuntimeError`` for a
    NaN or infinite total, otherwise it is returned as it is.
    """
    norm_type = float(norm_type)
    if not (norm_type > 0):  # also rejects NaN
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    arrays = [tensors] if isinstance(tensors, np.ndarray) else [g for g in tensors if g is not None]
    if not arrays:
        return 0.0
    # The norm of the per-tensor norms equals the norm of the concatenation;
    # accumulate in float64 so float32 grads do not lose precision here.
    if math.isinf(norm_type):
        # np.max propagates NaN, so a NaN anywhere makes the total NaN
        total = float(np.max([np.max(np.abs(g)) if g.size else 0.0 for g in arrays]))
    else:
        per_tensor = np.array(
            [np.sum(np.abs(np.asarray(g, dtype=np.float64)) ** norm_type) for g in arrays], dtype=np.float64
        )
        total = float(np.sum(per_tensor) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({total}), "
            "so it cannot be clipped; pass error_if_nonfinite=False to scale by it anyway"
        )
    return total


@effect  # tinygrad_rnn.compile repeats this call on replay
def clip_grads_with_norm_(
    params: ParameterLike | Iterable[ParameterLike], max_norm: float, total_norm: float
) -> None:
    """Scale the gradients in place by coef = min(max_norm / (total_norm + 1e-6), 1), given their
    already computed ``total_norm`` (as ``torch.nn.utils.clip_grads_with_norm_``); a NaN total
    makes every gradient NaN, an infinite one makes them 0."""
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    coef = max_norm / (float(total_norm) + 1e-6)
    if not math.isnan(coef):
        coef = min(coef, 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 when the total itself is inf
        for g in _grads_of(params):
            g *= coef


@effect  # tinygrad_rnn.compile repeats this call on replay
def clip_grad_norm_(
    params: ParameterLike | Iterable[ParameterLike],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Rescale gradients in place so that their joint norm is at most ``max_norm``.

    total = || concat(all non-None grads) ||_norm_type   (inf: max |g|)
    coef  = min(max_norm / (total + 1e-6), 1);  g <- g * coef

    Returns the total norm *before* clipping (0.0 when there are no grads).
    As in torch, ``error_if_nonfinite`` defaults to False: a NaN/inf total then
    still scales the grads by the resulting coefficient (NaN or 0); with True it
    raises ``RuntimeError`` before touching any gradient.
    """
    norm_type = float(norm_type)
    if not (norm_type > 0):  # also rejects NaN
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    grads = _grads_of(params)
    if not grads:
        return 0.0
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


@effect  # tinygrad_rnn.compile repeats this call on replay
def clip_grad_value_(params: ParameterLike | Iterable[ParameterLike], clip_value: float) -> None:
    """Clamp every gradient element in place to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in _grads_of(params):
        np.clip(g, -clip_value, clip_value, out=g)


# --------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------

class LRScheduler:
    """Base class with torch's ``step()`` semantics.

    Constructing the scheduler records each group's base lr as
    ``group["initial_lr"]`` (kept if already present, e.g. from an earlier
    scheduler) and sets the lr for epoch 0.  Every :meth:`step` advances one
    epoch and writes the new lr into every group.

    Schedules here are closed-form functions of the epoch and the base lr
    (torch mostly uses recursive updates; both agree to float rounding).  So
    two schedulers on one optimizer do not compose multiplicatively: the one
    stepped last wins.  Use :class:`SequentialLR` to chain them.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs: list[float] = [float(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, epoch: int) -> list[float]:
        """The lr of every group at ``epoch`` (0 = right after construction)."""
        return [self._lr(base_lr, epoch) for base_lr in self.base_lrs]

    def _lr(self, base_lr: float, epoch: int) -> float:
        """The lr at ``epoch`` for a group whose initial lr is ``base_lr`` (subclasses define it,
        or override ``lr_at`` as a whole like SequentialLR)."""
        raise TypeError(f"{type(self).__name__} defines neither _lr nor lr_at")

    @effect  # tinygrad_rnn.compile repeats this call on replay
    def step(self) -> None:
        """Advance one epoch and update every group's ``lr``."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The lrs most recently written into the optimizer."""
        return list(self._last_lr)

    def _apply(self) -> None:
        self._last_lr = self.lr_at(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    # -- serialisation -----------------------------------------------------
    _config: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """Epoch counter, base lrs and the schedule's settings."""
        d = {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}
        d.update({name: getattr(self, name) for name in self._config})
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` and rewrite the optimizer lrs for that epoch."""
        missing = {"last_epoch", "base_lrs", *self._config} - set(state_dict)
        if missing:
            raise ValueError(f"scheduler state_dict is missing key(s) {sorted(missing)}")
        if len(state_dict["base_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(
                f"scheduler state_dict has {len(state_dict['base_lrs'])} base lr(s), "
                f"optimizer has {len(self.optimizer.param_groups)} group(s)"
            )
        for name in self._config:
            setattr(self, name, state_dict[name])
        self.base_lrs = [float(x) for x in state_dict["base_lrs"]]
        self.last_epoch = int(state_dict["last_epoch"])
        self._apply()


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class StepLR(LRScheduler):
    """lr(t) = base_lr * gamma ** (t // step_size)."""

    _config = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _check_positive_int(step_size, "step_size")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def _lr(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    Closed form (torch steps recursively; the two agree to rounding).  Past
    ``T_max`` the cosine keeps going, i.e. the lr rises again, as in torch.
    """

    _config = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _check_positive_int(T_max, "T_max")
        if not eta_min >= 0:
            raise ValueError(f"eta_min must be >= 0, got {eta_min}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def _lr(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """lr(t) = base_lr * (start + (end - start) * min(t, total_iters) / total_iters).

    With ``end_factor=1`` this is a linear warm-up from ``start_factor*base_lr``.
    """

    _config = ("start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = _check_positive_int(total_iters, "total_iters")
        super().__init__(optimizer)

    def _lr(self, base_lr, epoch):
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from epoch ``milestones[i-1]`` on, each restarted at its epoch 0.

    lr(t) = schedulers[i].lr_at(t - milestones[i-1]),  i = #milestones <= t
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int]) -> None:
        schedulers = list(schedulers)
        if len(schedulers) == 0:
            raise ValueError("schedulers must not be empty")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, SequentialLR):
                raise TypeError(f"schedulers[{i}] must be a (non-sequential) LRScheduler, got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] belongs to a different optimizer")
        milestones = [int(m) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"milestones must have len(schedulers) - 1 = {len(schedulers) - 1} entries, got {len(milestones)}"
            )
        if any(m < 1 for m in milestones) or milestones != sorted(set(milestones)):
            raise ValueError(f"milestones must be strictly increasing positive integers, got {milestones}")
        self.schedulers = schedulers
        self.milestones = milestones
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> list[float]:
        i = bisect_right(self.milestones, epoch)
        start = self.milestones[i - 1] if i > 0 else 0
        return self.schedulers[i].lr_at(epoch - start)

    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        d["milestones"] = list(self.milestones)
        d["schedulers"] = [s.state_dict() for s in self.schedulers]
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        subs = state_dict.get("schedulers")
        if subs is None or len(subs) != len(self.schedulers):
            raise ValueError(
                f"SequentialLR state_dict must hold {len(self.schedulers)} scheduler state(s), "
                f"got {None if subs is None else len(subs)}"
            )
        for s, sd in zip(self.schedulers, subs):
            s.load_state_dict(sd)
        self.milestones = [int(m) for m in state_dict.get("milestones", self.milestones)]
        super().load_state_dict(state_dict)


def warmup_cosine(
    optimizer: Optimizer,
    warmup_steps: int,
    total_steps: int,
    start_factor: float = 1e-3,
    eta_min: float = 0.0,
) -> SequentialLR:
    """Linear warm-up for ``warmup_steps`` then cosine decay to ``eta_min`` at ``total_steps``.

    lr(t) = base_lr * (s + (1 - s) * t / W)                 for t < W
    lr(t) = cosine(base_lr -> eta_min over total_steps - W)  for t >= W
    """
    warmup_steps = _check_positive_int(warmup_steps, "warmup_steps")
    total_steps = _check_positive_int(total_steps, "total_steps")
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps must exceed warmup_steps={warmup_steps}, got {total_steps}")
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
