"""Losses and metrics: values against independent NumPy/loop formulas and hand-computed numbers,
float64 gradient checks (random upstream gradients), stability, masks, ignore_index and errors."""
import math
import warnings

import numpy as np
import pytest

from tinygrad_rnn import Tensor, gradcheck
from tinygrad_rnn import ops
from tinygrad_rnn.losses import (
    binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss,
)
from tinygrad_rnn.metrics import accuracy, bits_per_token, perplexity

REDUCTIONS = ["mean", "sum", "none"]


# ----- independent reference formulas (plain loops over positions) ------------------------------
def ref_cross_entropy(x, y, ignore_index=-100, reduction="mean", eps=0.0, w=None, log_probs=False):
    """Per position: log p_c = x_c - ln Σ_k exp(x_k) (or x itself for nll), written as a loop."""
    classes = x.shape[-1]
    w = np.ones(classes) if w is None else np.asarray(w, dtype=np.float64)
    flat_x, flat_y = x.reshape(-1, classes), y.reshape(-1)
    losses, denominator = [], 0.0
    for row, target in zip(flat_x, flat_y):
        if target == ignore_index:
            losses.append(0.0)
            continue
        if log_probs:
            logp = [float(v) for v in row]
        else:
            norm = math.log(sum(math.exp(float(v)) for v in row))
            logp = [float(v) - norm for v in row]
        nll = -w[target] * logp[target]
        smooth = -sum(w[c] * logp[c] for c in range(classes))
        losses.append((1 - eps) * nll + eps / classes * smooth)
        denominator += w[target]
    losses = np.array(losses).reshape(y.shape)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / denominator if denominator else 0.0


def f64(shape, seed, scale=1.0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape) * scale, requires_grad=True)


def targets(shape, classes, seed, ignored=0.25):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=shape)
    y[rng.random(shape) < ignored] = -100
    return y


# ----- cross_entropy -----------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_values_and_gradients_on_sequence_logits(reduction, eps, weighted):
    x = f64((2, 3, 4), seed=1)  # (N, L, C): class axis last
    y = targets((2, 3), 4, seed=2)
    y[0, 0], y[1, 2] = -100, 3  # at least one ignored and one kept position
    w = np.random.default_rng(3).random(4) + 0.5 if weighted else None
    out = cross_entropy(x, y, reduction=reduction, label_smoothing=eps, weight=w)
    expected = ref_cross_entropy(x.data, y, reduction=reduction, eps=eps, w=w)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert out.shape == ((2, 3) if reduction == "none" else ())
    gradcheck(lambda t: cross_entropy(t, y, reduction=reduction, label_smoothing=eps, weight=w), [x])


def test_cross_entropy_custom_ignore_index_and_tensor_targets():
    x = f64((5, 3), seed=4)
    y = np.array([0, 7, 2, 7, 1])
    out = cross_entropy(x, Tensor(y), ignore_index=7)
    np.testing.assert_allclose(out.data, ref_cross_entropy(x.data, y, ignore_index=7), rtol=1e-12)
    gradcheck(lambda t: cross_entropy(t, y, ignore_index=7, label_smoothing=0.1), [x])


def test_cross_entropy_hand_computed_values():
    # Uniform logits over C classes: -ln(1/C) = ln C, with or without smoothing.
    assert cross_entropy(Tensor(np.zeros((1, 4))), np.array([2])).item() == pytest.approx(math.log(4))
    assert cross_entropy(Tensor(np.zeros((1, 4))), np.array([2]), label_smoothing=0.5).item() \
        == pytest.approx(math.log(4))
    # p = (3/4, 1/4), target 0, ε = 0.2: 0.8·(-ln 3/4) + 0.1·(-ln 3/4 - ln 1/4)
    x = Tensor(np.array([[math.log(3.0), 0.0]]))
    expected = 0.8 * -math.log(0.75) + 0.1 * (-math.log(0.75) - math.log(0.25))
    assert cross_entropy(x, np.array([0]), label_smoothing=0.2).item() == pytest.approx(expected, rel=1e-12)
    # Weighted mean: (w0·l0 + w1·l1) / (w0 + w1), both rows uniform over 2 classes.
    out = cross_entropy(Tensor(np.zeros((2, 2))), np.array([0, 1]), weight=np.array([1.0, 3.0]))
    assert out.item() == pytest.approx((1 * math.log(2) + 3 * math.log(2)) / 4)
    # The gradient of the mean over one row is softmax - onehot.
    x = Tensor(np.array([[math.log(3.0), 0.0]]), requires_grad=True)
    cross_entropy(x, np.array([1])).backward()
    np.testing.assert_allclose(x.grad, [[0.75, 0.25 - 1.0]], rtol=1e-12)


def test_cross_entropy_matches_log_softmax_then_nll():
    x = f64((3, 2, 5), seed=5)
    y = targets((3, 2), 5, seed=6)
    w = np.linspace(0.5, 2.0, 5)
    fused = cross_entropy(x, y, weight=w)
    composed = nll_loss(ops.log_softmax(x, axis=-1), y, weight=w)
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12)
    fused.backward()
    fused_grad, x.grad = x.grad, None
    composed.backward()
    np.testing.assert_allclose(fused_grad, x.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_exact_and_silent_at_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [0.0, 1e4, -1e4]], dtype=dtype)
    y = np.array([1, 1, 2])
    x = Tensor(logits, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = cross_entropy(x, y, reduction="none", label_smoothing=0.0)
        out.backward(np.ones(3, dtype=dtype))
        smooth = cross_entropy(Tensor(logits), y, label_smoothing=0.1)
    # Losses: 1e4 - (-1e4), 0, 1e4 - (-1e4), exactly (the other terms vanish below float precision).
    assert out.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_array_equal(out.data, np.array([2e4, 0.0, 2e4], dtype=dtype))
    # softmax is one-hot at the max: softmax - onehot(y)
    expected_grad = np.array([[1, -1, 0], [0, 0, 0], [0, 1, -1]], dtype=dtype)
    np.testing.assert_array_equal(x.grad, expected_grad)
    assert np.isfinite(smooth.item())


def test_cross_entropy_all_ignored_gives_zero_loss_and_zero_grad():
    x = f64((2, 3, 4), seed=7)
    y = np.full((2, 3), -100)
    for kwargs in ({}, {"label_smoothing": 0.2}, {"weight": np.ones(4)}):
        out = cross_entropy(x, y, **kwargs)
        assert out.item() == 0.0
        x.grad = None
        out.backward()
        np.testing.assert_array_equal(x.grad, np.zeros_like(x.data))
    assert cross_entropy(x, y, reduction="sum").item() == 0.0


def test_cross_entropy_float32_stays_float32():
    x = Tensor(np.random.default_rng(8).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    out = cross_entropy(x, np.array([0, 1, 2, -100]), label_smoothing=0.1, weight=[1.0, 2.0, 3.0])
    out.backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32


def test_cross_entropy_records_a_named_node_only_when_needed():
    x = f64((2, 3), seed=9)
    assert cross_entropy(x, np.array([0, 1])).op == "cross_entropy"
    constant = cross_entropy(Tensor(x.data), np.array([0, 1]))
    assert not constant.requires_grad and constant.op == ""


def test_cross_entropy_errors():
    x = f64((2, 3), seed=10)
    with pytest.raises(ValueError, match=r"target value 3 .*3 classes"):
        cross_entropy(x, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"target value -1 "):
        cross_entropy(x, np.array([-1, 0]))
    with pytest.raises(TypeError, match="integer class indices.*float64"):
        cross_entropy(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target shape \(3,\).*input shape \(2, 3\)"):
        cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*got \(2,\)"):
        cross_entropy(x, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(ValueError, match="reduction must be one of"):
        cross_entropy(x, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        cross_entropy(x, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="logits must be floating point"):
        cross_entropy(Tensor(np.array([[1, 2]])), np.array([0]))
    with pytest.raises(ValueError, match="class axis"):
        cross_entropy(Tensor(np.array(1.0)), np.array(0))


# ----- nll_loss ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_values_and_gradients(reduction, weighted):
    x = f64((3, 2, 4), seed=11)
    y = targets((3, 2), 4, seed=12)
    y[0, 0], y[2, 1] = -100, 1
    w = np.array([0.5, 2.0, 1.0, 3.0]) if weighted else None
    out = nll_loss(x, y, reduction=reduction, weight=w)
    np.testing.assert_allclose(out.data, ref_cross_entropy(x.data, y, reduction=reduction, w=w,
                                                           log_probs=True), rtol=1e-12)
    gradcheck(lambda t: nll_loss(t, y, reduction=reduction, weight=w), [x])


def test_nll_loss_all_ignored_and_errors():
    x = f64((2, 3), seed=13)
    out = nll_loss(x, np.array([-100, -100]))
    out.backward()
    assert out.item() == 0.0 and not x.grad.any()
    with pytest.raises(ValueError, match="target value 9"):
        nll_loss(x, np.array([9, 0]))
    with pytest.raises(TypeError, match="integer class indices"):
        nll_loss(x, np.array([0.5, 1.0]))


# ----- mse / l1 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("loss, formula", [
    (mse_loss, lambda a, b: (a - b) ** 2),
    (l1_loss, lambda a, b: np.abs(a - b)),
])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_values_and_gradients(loss, formula, reduction):
    x, t = f64((2, 3, 2), seed=14), f64((2, 3, 2), seed=15)
    elementwise = formula(x.data, t.data)
    expected = {"none": elementwise, "sum": elementwise.sum(), "mean": elementwise.mean()}[reduction]
    np.testing.assert_allclose(loss(x, t, reduction=reduction).data, expected, rtol=1e-12)
    gradcheck(lambda a, b: loss(a, b, reduction=reduction), [x, t])  # the target gets its gradient too
    gradcheck(lambda a: loss(a, t.data, reduction=reduction), [x])   # arrays are constants


@pytest.mark.parametrize("loss, formula", [
    (mse_loss, lambda a, b: (a - b) ** 2),
    (l1_loss, lambda a, b: np.abs(a - b)),
])
def test_regression_losses_with_position_mask(loss, formula):
    x, t = f64((2, 4, 3), seed=16), f64((2, 4, 3), seed=17)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=bool)  # (N, L) padded positions
    elementwise = formula(x.data, t.data)
    expected = elementwise[mask].sum() / (mask.sum() * 3)  # mean over unmasked elements
    np.testing.assert_allclose(loss(x, t, mask=mask).data, expected, rtol=1e-12)
    np.testing.assert_allclose(loss(x, t, mask=mask.astype(int), reduction="sum").data,
                               elementwise[mask].sum(), rtol=1e-12)
    none = loss(x, t, mask=mask, reduction="none").data
    np.testing.assert_array_equal(none[~mask], 0.0)
    for reduction in REDUCTIONS:
        gradcheck(lambda a, b: loss(a, b, mask=mask, reduction=reduction), [x, t])
    x.grad = None
    loss(x, t, mask=mask).backward()
    np.testing.assert_array_equal(x.grad[~mask], 0.0)  # padded positions get no gradient


def test_mse_hand_values_and_all_masked():
    x = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    t = np.array([1.0, 0.0, 1.0])
    assert mse_loss(x, t).item() == pytest.approx((0 + 4 + 9) / 3)
    assert l1_loss(x, t, mask=[0, 1, 1]).item() == pytest.approx((2 + 3) / 2)
    out = mse_loss(x, t, mask=np.zeros(3))
    out.backward()
    assert out.item() == 0.0 and not x.grad.any()


def test_regression_loss_errors():
    x = f64((2, 3), seed=18)
    with pytest.raises(ValueError, match=r"target shape \(2, 1\) must equal input shape \(2, 3\)"):
        mse_loss(x, np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"mask shape \(3,\) does not fit .*\(2, 3\)"):
        mse_loss(x, np.zeros((2, 3)), mask=np.ones(3))
    with pytest.raises(ValueError, match="only 0 and 1"):
        l1_loss(x, np.zeros((2, 3)), mask=np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="reduction must be one of"):
        l1_loss(x, np.zeros((2, 3)), reduction="mean ")
    with pytest.raises(TypeError, match="input must be a Tensor"):
        mse_loss([1.0, 2.0], [1.0, 2.0])


# ----- binary cross-entropy with logits ----------------------------------------------------------
def ref_bce(x, t, q=None):
    """-[q t log σ(x) + (1 - t) log(1 - σ(x))] written with σ directly (fine for moderate x)."""
    q = 1.0 if q is None else q
    s = 1.0 / (1.0 + np.exp(-x))
    return -(q * t * np.log(s) + (1 - t) * np.log(1 - s))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_values_and_gradients(reduction, with_pos_weight):
    x = f64((3, 4), seed=19, scale=3.0)
    t = Tensor(np.random.default_rng(20).random((3, 4)), requires_grad=True)
    q = np.array([0.5, 1.0, 2.0, 3.0]) if with_pos_weight else None
    elementwise = ref_bce(x.data, t.data, q)
    expected = {"none": elementwise, "sum": elementwise.sum(), "mean": elementwise.mean()}[reduction]
    out = binary_cross_entropy_with_logits(x, t, reduction=reduction, pos_weight=q)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    gradcheck(lambda a, b: binary_cross_entropy_with_logits(a, b, reduction=reduction, pos_weight=q), [x, t])


def test_bce_with_logits_mask_and_stability():
    x = f64((2, 3), seed=21)
    t = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    mask = np.array([[1, 0, 1], [1, 1, 0]])
    expected = ref_bce(x.data, t)[mask.astype(bool)].mean()
    np.testing.assert_allclose(binary_cross_entropy_with_logits(x, t, mask=mask).data, expected, rtol=1e-12)
    gradcheck(lambda a: binary_cross_entropy_with_logits(a, t, mask=mask), [x])
    # ±1e4: a confident right answer costs 0, a confident wrong one exactly |x|; no warnings.
    big = Tensor(np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = binary_cross_entropy_with_logits(big, np.array([1.0, 0.0, 0.0, 1.0]), reduction="none")
        out.backward(np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(out.data, np.array([0, 0, 1e4, 1e4], dtype=np.float32))
    np.testing.assert_array_equal(big.grad, np.array([0, 0, 1, -1], dtype=np.float32))


def test_bce_errors():
    x = f64((2, 3), seed=22)
    with pytest.raises(ValueError, match=r"target shape \(3,\) must equal input shape \(2, 3\)"):
        binary_cross_entropy_with_logits(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"pos_weight shape \(2,\)"):
        binary_cross_entropy_with_logits(x, np.zeros((2, 3)), pos_weight=np.ones(2))


# ----- metrics -----------------------------------------------------------------------------------
def test_accuracy_skips_ignored_positions():
    logits = np.array([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]],
                       [[0.0, 0.0, 5.0], [1.0, 0.0, 0.0]]])  # argmax: [[0, 1], [2, 0]]
    y = np.array([[0, 2], [2, -100]])
    assert accuracy(Tensor(logits), y) == pytest.approx(2 / 3)
    assert accuracy(logits, np.array([[0, 1], [2, 0]])) == 1.0
    assert math.isnan(accuracy(logits, np.full((2, 2), -100)))
    with pytest.raises(ValueError, match=r"target shape \(2,\)"):
        accuracy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        accuracy(logits, y.astype(float))


def test_perplexity_and_bits():
    assert perplexity(0.0) == 1.0
    assert perplexity(Tensor(np.array(math.log(5.0)))) == pytest.approx(5.0)
    assert perplexity(1000.0) == math.inf
    assert bits_per_token(math.log(2.0)) == pytest.approx(1.0)
