"""Loss functions, each one fused op: the forward in NumPy and its backward closure right below it.

Conventions (PyTorch's, with one deliberate difference):

- **The class axis is LAST.** ``cross_entropy`` and ``nll_loss`` take logits / log-probabilities of
  shape ``(..., C)`` and integer targets of shape ``(...)``, so the ``(N, L, C)`` output of a
  sequence model goes in as it is. PyTorch puts the classes at dim 1 (``(N, C, L)``).
- ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"`` (the elementwise losses).
- A "mean" over nothing is 0 with a zero gradient, never NaN: every target ignored, every position
  masked, or (cross-entropy with class weights) a zero total weight. PyTorch returns NaN there.
- Targets are constants for the class losses; ``mse_loss``, ``l1_loss`` and
  ``binary_cross_entropy_with_logits`` also give a target Tensor that requires grad its gradient.

Masks (``mask=`` of the elementwise losses) hold booleans or 0/1 and are aligned with the LEADING
axes of the elementwise loss: an ``(N, L)`` mask of padded positions applies to an ``(N, L)`` or an
``(N, L, D)`` loss (trailing axes are added, then NumPy broadcasting applies). Masked-out elements
contribute nothing and "mean" divides by the number of unmasked elements.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autograd.engine import apply, as_operands, constant
from ..autograd.tensor import Tensor

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
    "cross_entropy_forward", "nll_loss_forward", "mse_loss_forward", "l1_loss_forward",
    "bce_with_logits_forward", "REDUCTIONS",
]

REDUCTIONS = ("mean", "sum", "none")


# ----- argument handling -------------------------------------------------------------------------
def _float_input(x: Any, fn: str, name: str = "input") -> Tensor:
    """A floating Tensor (arrays become constants)."""
    if isinstance(x, np.ndarray):
        x = constant(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: {name} must be a Tensor or np.ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: {name} must be floating point, got dtype {x.dtype}")
    return x


def _reduction(reduction: Any, fn: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _class_targets(y: np.ndarray, scores_shape: tuple, ignore_index: int, fn: str) -> np.ndarray:
    """Integer targets of shape ``scores.shape[:-1]``, each in [0, C) or equal to ignore_index."""
    if y.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must hold integer class indices, got dtype {y.dtype}")
    if y.shape != scores_shape[:-1]:
        raise ValueError(
            f"{fn}: target shape {y.shape} must equal input shape {scores_shape} without its last "
            f"(class) axis, i.e. {scores_shape[:-1]}"
        )
    classes = scores_shape[-1]
    bad = (y != ignore_index) & ((y < 0) | (y >= classes))
    if bad.any():
        value = y[bad].flat[0]
        raise ValueError(
            f"{fn}: target value {value} is out of range for {classes} classes (expected 0..{classes - 1} "
            f"or ignore_index={ignore_index})"
        )
    return y


def _class_args(scores: Tensor, ignore_index: Any, fn: str) -> None:
    if scores.ndim == 0:
        raise ValueError(f"{fn}: input needs a class axis (last), got a 0-d tensor")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{fn}: ignore_index must be an int, got {ignore_index!r}")


def _class_weight(weight: Any, classes: int, dtype: np.dtype, fn: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: weight must be numeric, got dtype {w.dtype}")
    if w.shape != (classes,):
        raise ValueError(f"{fn}: weight must have shape ({classes},) (one per class), got {w.shape}")
    return w.astype(dtype, copy=False)


def _same_shape_target(target: Any, x: Tensor, fn: str) -> Tensor:
    """The regression/BCE target: same shape as the input, cast to its dtype (a Tensor keeps its graph)."""
    if isinstance(target, Tensor):
        if target.shape != x.shape:
            raise ValueError(f"{fn}: target shape {target.shape} must equal input shape {x.shape}")
        if target.dtype != x.dtype:
            if target.requires_grad:
                raise TypeError(f"{fn}: target dtype {target.dtype} differs from input dtype {x.dtype}")
            return target.astype(x.dtype)  # an op, so a compiled trace replays it
        return target
    t = np.asarray(target)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: target must be numeric, got {type(target).__name__} of dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"{fn}: target shape {t.shape} must equal input shape {x.shape}")
    return constant(t.astype(x.dtype, copy=False))


def _mask(m: np.ndarray | None, shape: tuple, dtype: np.dtype, fn: str) -> np.ndarray | None:
    """A 0/1 array of ``dtype`` broadcast to ``shape``; mask axes align with the leading loss axes."""
    if m is None:
        return None
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: mask must be boolean or 0/1, got dtype {m.dtype}")
    if m.dtype != bool and not np.all((m == 0) | (m == 1)):
        raise ValueError(f"{fn}: mask must hold only 0 and 1 (or booleans)")
    if m.ndim > len(shape):
        raise ValueError(f"{fn}: mask shape {m.shape} has more axes than the loss shape {shape}")
    aligned = m.reshape(m.shape + (1,) * (len(shape) - m.ndim))
    try:
        return np.broadcast_to(aligned, shape).astype(dtype)
    except ValueError:
        raise ValueError(
            f"{fn}: mask shape {m.shape} does not fit the elementwise loss shape {shape} (mask axes "
            f"align with the leading loss axes)"
        ) from None


def _extra_inputs(fn: str, **arrays: Any) -> tuple[tuple, dict]:
    """Optional data arguments (targets' masks, class weights) as op inputs: a trace replays them."""
    given = {k: v for k, v in arrays.items() if v is not None}
    return as_operands(list(given.values()), fn), {k: True for k in given}


def _reduce(per: np.ndarray, reduction: str, denominator: Any) -> tuple[np.ndarray, Callable]:
    """Reduce the elementwise losses ``per``; also return ``g -> dL/d(per)`` for the backward pass.

    "mean" is ``Σ per / denominator``, defined as 0 (with zero gradient) when the denominator is 0.
    """
    dtype = per.dtype
    if reduction == "none":
        return per, lambda g: g
    if reduction == "sum":
        return np.asarray(per.sum(dtype=dtype)), lambda g: np.broadcast_to(g, per.shape)
    denominator = np.asarray(denominator, dtype=dtype)
    if denominator == 0:
        return np.zeros((), dtype=dtype), lambda g: np.zeros(per.shape, dtype=dtype)
    return (np.asarray(per.sum(dtype=dtype) / denominator),
            lambda g: np.broadcast_to(g / denominator, per.shape))


# ----- classification ----------------------------------------------------------------------------
def cross_entropy(logits: Tensor, target: Any, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0, weight: Any = None) -> Tensor:
    """Softmax cross-entropy from raw logits ``(..., C)`` (class axis LAST) and integer targets ``(...)``.

    With ``log p = x - logsumexp(x)`` (max subtracted first, so logits of size 1e4 are exact)::

        nll_n = -w[y_n] log p_{n, y_n}             S_n = -Σ_c w_c log p_{n,c}
        l_n   = (1 - ε) nll_n + (ε / C) S_n         (0 where y_n == ignore_index)
        mean  = Σ_n l_n / Σ_{n not ignored} w[y_n]

    ``w`` are the class weights (1 if ``weight`` is None) and ε is ``label_smoothing``; this is
    PyTorch's definition. Backward: ``dl_n/dx_n = (1-ε) w[y_n] (p_n - onehot(y_n)) + (ε/C)(p_n Σw - w)``.

    Class-probability targets (PyTorch since 1.10): a floating ``target`` shaped like the logits,
    e.g. one-hot rows or soft labels. Then ``y ← (1 - ε) y + ε / C`` and
    ``l_n = -Σ_c w_c y_{n,c} log p_{n,c}``, "mean" divides by the number of rows, ``ignore_index``
    does not apply; ``dl_n/dx_n = p_n Σ_c w_c y_{n,c} - w ⊙ y_n``. The target is a constant.
    """
    fn = "cross_entropy"
    x = _float_input(logits, fn, "logits")
    _class_args(x, ignore_index, fn)
    reduction = _reduction(reduction, fn)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    extra, given = _extra_inputs(fn, target=target, weight=weight)
    return apply(cross_entropy_forward, (x,) + extra, (), dict(
        ignore_index=int(ignore_index), reduction=reduction, label_smoothing=eps,
        has_weight=given.get("weight", False)), fn)


def cross_entropy_forward(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *,
                          ignore_index: int, reduction: str, label_smoothing: float,
                          has_weight: bool) -> tuple:
    """The array function of :func:`cross_entropy`: ``(loss, backward)``."""
    fn = "cross_entropy"
    if y.dtype.kind == "f":
        return _probability_cross_entropy(x, y, weight, reduction, label_smoothing, has_weight)
    y = _class_targets(y, x.shape, ignore_index, fn)
    classes = x.shape[-1]
    w = _class_weight(weight, classes, x.dtype, fn)
    eps = label_smoothing
    valid = y != ignore_index
    safe_y = np.where(valid, y, 0)[..., None]  # any in-range index; ignored rows are zeroed below
    with np.errstate(under="ignore"):  # exp of very negative logits rightly underflows to 0
        shifted = x - x.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    w_y = valid.astype(x.dtype) if w is None else np.where(valid, w[safe_y[..., 0]], 0).astype(x.dtype)
    per = -w_y * np.take_along_axis(log_p, safe_y, axis=-1)[..., 0]
    if eps:
        smooth = -(log_p.sum(axis=-1) if w is None else log_p @ w)
        per = (1.0 - eps) * per + (eps / classes) * np.where(valid, smooth, 0).astype(x.dtype)
    out, upstream = _reduce(per, reduction, w_y.sum(dtype=x.dtype))

    def backward(g):
        with np.errstate(under="ignore"):
            p = np.exp(log_p)
        grad = p * w_y[..., None]
        np.put_along_axis(grad, safe_y, np.take_along_axis(grad, safe_y, axis=-1) - w_y[..., None],
                          axis=-1)
        if eps:
            total = classes if w is None else w.sum(dtype=x.dtype)
            smooth_grad = p * total - (1 if w is None else w)
            grad = (1.0 - eps) * grad + (eps / classes) * np.where(valid[..., None], smooth_grad, 0)
        return (grad * upstream(g)[..., None], None) + ((None,) if has_weight else ())
    return out, backward


def _probability_cross_entropy(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None, reduction: str,
                               eps: float, has_weight: bool) -> tuple:
    fn = "cross_entropy"
    if y.shape == x.shape[:-1]:
        raise TypeError(f"{fn}: target must hold integer class indices, got dtype {y.dtype} (or pass class "
                        f"probabilities shaped like the logits, {x.shape})")
    if y.shape != x.shape:
        raise ValueError(f"{fn}: a class-probability target must have the logits' shape {x.shape}, got {y.shape} "
                         "(integer class indices have the shape without the class axis)")
    classes = x.shape[-1]
    w = _class_weight(weight, classes, x.dtype, fn)
    y = y.astype(x.dtype)
    if eps:
        y = (1.0 - eps) * y + eps / classes
    wy = y if w is None else y * w
    with np.errstate(under="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    per = -(wy * log_p).sum(axis=-1)
    out, upstream = _reduce(per, reduction, per.size)

    def backward(g):
        with np.errstate(under="ignore"):
            p = np.exp(log_p)
        grad = p * wy.sum(axis=-1, keepdims=True) - wy
        return (grad * upstream(g)[..., None], None) + ((None,) if has_weight else ())
    return out, backward


def nll_loss(log_probs: Tensor, target: Any, ignore_index: int = -100, reduction: str = "mean",
             weight: Any = None) -> Tensor:
    """Negative log-likelihood from log-probabilities ``(..., C)`` (class axis LAST), integer targets.

    ``l_n = -w[y_n] * log_probs[n, y_n]`` (0 where ignored); "mean" divides by ``Σ w[y_n]`` over the
    non-ignored elements. Backward: ``-w[y_n]`` at the target class, 0 elsewhere.
    """
    fn = "nll_loss"
    x = _float_input(log_probs, fn, "log_probs")
    _class_args(x, ignore_index, fn)
    reduction = _reduction(reduction, fn)
    extra, given = _extra_inputs(fn, target=target, weight=weight)
    return apply(nll_loss_forward, (x,) + extra, (), dict(
        ignore_index=int(ignore_index), reduction=reduction, has_weight=given.get("weight", False)), fn)


def nll_loss_forward(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *,
                     ignore_index: int, reduction: str, has_weight: bool) -> tuple:
    """The array function of :func:`nll_loss`: ``(loss, backward)``."""
    fn = "nll_loss"
    y = _class_targets(y, x.shape, ignore_index, fn)
    w = _class_weight(weight, x.shape[-1], x.dtype, fn)
    valid = y != ignore_index
    safe_y = np.where(valid, y, 0)[..., None]
    w_y = valid.astype(x.dtype) if w is None else np.where(valid, w[safe_y[..., 0]], 0).astype(x.dtype)
    per = -w_y * np.take_along_axis(x, safe_y, axis=-1)[..., 0]
    out, upstream = _reduce(per, reduction, w_y.sum(dtype=x.dtype))
    shape, dtype = x.shape, x.dtype

    def backward(g):
        grad = np.zeros(shape, dtype=dtype)
        np.put_along_axis(grad, safe_y, (-w_y * upstream(g))[..., None], axis=-1)
        return (grad, None) + ((None,) if has_weight else ())
    return out, backward


# ----- elementwise losses ------------------------------------------------------------------------
def _elementwise(fn: str, forward: Any, x: Tensor, t: Tensor, reduction: str, mask: Any,
                 **options: Any) -> Tensor:
    """Record an elementwise loss: inputs ``(x, t[, mask][, pos_weight])`` of one op."""
    reduction = _reduction(reduction, fn)
    extra, given = _extra_inputs(fn, mask=mask, **options)
    return apply(forward, (x, t) + extra, (), dict(reduction=reduction, **given), fn,
                 wants_needs=True)


def _masked_result(fn: str, per: np.ndarray, m: np.ndarray | None, reduction: str, needs: tuple,
                   local_grads: Callable[[], tuple], n_extra: int) -> tuple:
    """Mask and reduce the elementwise losses ``per``; ``local_grads()`` gives
    ``(d per/dx, d per/dt)``, computed only when backward runs."""
    m = _mask(m, per.shape, per.dtype, fn)
    if m is not None:
        per = per * m
    out, upstream = _reduce(per, reduction, per.size if m is None else m.sum(dtype=per.dtype))

    def backward(g):
        scale = upstream(g) if m is None else upstream(g) * m
        dx, dt = local_grads()
        return (scale * dx if needs[0] else None, scale * dt if needs[1] else None) + (None,) * n_extra
    return out, backward


def mse_loss(input: Tensor, target: Any, reduction: str = "mean", mask: Any = None) -> Tensor:  # noqa: A002
    """Squared error ``l = (x - t)²``;  dl/dx = 2 (x - t) = -dl/dt."""
    x = _float_input(input, "mse_loss")
    t = _same_shape_target(target, x, "mse_loss")
    return _elementwise("mse_loss", mse_loss_forward, x, t, reduction, mask)


def mse_loss_forward(x, t, m=None, *, reduction, needs, mask=False):
    """The array function of :func:`mse_loss`."""
    diff = x - t

    def local_grads():
        d = 2 * diff
        return d, -d
    return _masked_result("mse_loss", diff * diff, m, reduction, needs, local_grads, int(mask))


def l1_loss(input: Tensor, target: Any, reduction: str = "mean", mask: Any = None) -> Tensor:  # noqa: A002
    """Absolute error ``l = |x - t|``;  dl/dx = sign(x - t) = -dl/dt (0 at x = t, as in PyTorch)."""
    x = _float_input(input, "l1_loss")
    t = _same_shape_target(target, x, "l1_loss")
    return _elementwise("l1_loss", l1_loss_forward, x, t, reduction, mask)


def l1_loss_forward(x, t, m=None, *, reduction, needs, mask=False):
    """The array function of :func:`l1_loss`."""
    diff = x - t

    def local_grads():
        s = np.sign(diff)
        return s, -s
    return _masked_result("l1_loss", np.abs(diff), m, reduction, needs, local_grads, int(mask))


def _softplus(x: np.ndarray) -> np.ndarray:
    """ln(1 + eˣ) = max(x, 0) + ln(1 + e^{-|x|}), which never overflows."""
    with np.errstate(under="ignore"):
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^{-x}) via tanh, which never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean",
                                     mask: Any = None, pos_weight: Any = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable op, targets ``t`` in [0, 1] of the logits' shape.

    ``l = -[q t log σ(x) + (1 - t) log(1 - σ(x))] = q t softplus(-x) + (1 - t) softplus(x)`` with
    ``q = pos_weight`` (broadcast against the logits, e.g. one per class on the last axis; 1 if None).
    For q = 1 this is ``max(x, 0) - x t + log(1 + e^{-|x|})``.
    Backward: ``dl/dx = q t (σ(x) - 1) + (1 - t) σ(x)``, ``dl/dt = q softplus(-x) - softplus(x)``.
    """
    fn = "binary_cross_entropy_with_logits"
    x = _float_input(logits, fn, "logits")
    t = _same_shape_target(target, x, fn)
    if pos_weight is not None:
        q = np.asarray(pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight)
        if q.dtype.kind not in "biuf":
            raise TypeError(f"{fn}: pos_weight must be numeric, got dtype {q.dtype}")
        try:
            shape = np.broadcast_shapes(q.shape, x.shape)
        except ValueError:
            raise ValueError(f"{fn}: pos_weight shape {q.shape} does not broadcast to the logits "
                             f"shape {x.shape}") from None
        if shape != x.shape:
            raise ValueError(f"{fn}: pos_weight shape {q.shape} would enlarge the logits shape {x.shape}")
    return _elementwise(fn, bce_with_logits_forward, x, t, reduction, mask, pos_weight=pos_weight)


def bce_with_logits_forward(x, t, *extra, reduction, needs, mask=False, pos_weight=False):
    """The array function of :func:`binary_cross_entropy_with_logits`."""
    m = extra[0] if mask else None
    q = extra[-1].astype(x.dtype, copy=False) if pos_weight else None
    sp_pos = _softplus(x)  # -log(1 - σ(x))
    sp_neg = sp_pos - x    # -log σ(x) = softplus(-x)
    per = (1 - t) * sp_pos + (t * sp_neg if q is None else q * t * sp_neg)

    def local_grads():
        s = _sigmoid(x)
        qt = t if q is None else q * t
        dx = qt * (s - 1) + (1 - t) * s
        dt = (sp_neg if q is None else q * sp_neg) - sp_pos
        return dx, dt
    return _masked_result("binary_cross_entropy_with_logits", per.astype(x.dtype, copy=False), m,
                          reduction, needs, local_grads, len(extra))
