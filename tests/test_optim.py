"""Tests for tinygrad_rnn.optim: optimizers, gradient clipping, LR schedules.

Each optimizer is compared against its textbook update formula, written here
independently in plain float64 NumPy.  Parameters are a local stand-in class
with ``.data``/``.grad``, which is all the optimizers rely on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    LinearLR,
    RMSprop,
    SequentialLR,
    StepLR,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    warmup_cosine,
)


class P:
    """Minimal parameter: a data array and an optional gradient."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad = None


SHAPES = [(3, 4), (5,), ()]
STEPS = 7


def make_problem(seed: int, dtype=np.float64, steps: int = STEPS):
    """Initial parameter values and a sequence of changing random gradients.

    Gradient scales vary per step so that second-moment estimates rise and
    fall (this is what makes AMSGrad's running max matter).
    """
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [
        [(rng.standard_normal(s) * rng.uniform(0.05, 3.0)).astype(dtype) for s in SHAPES]
        for _ in range(steps)
    ]
    return init, grads


def run_optimizer(opt_cls, kwargs, init, grads):
    """Run the library optimizer; return the parameters' values after each step."""
    params = [P(a.copy()) for a in init]
    opt = opt_cls(params, **kwargs)
    trajectory = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory, params, opt


# ---------------------------------------------------------------------------
# Reference update rules, written from the textbook formulas (float64)
# ---------------------------------------------------------------------------

def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    p = p.astype(np.float64)
    buf = None
    out = []
    for g in grads:
        d = g + weight_decay * p
        if momentum != 0:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        out.append(p)
    return out


def ref_rmsprop(p, grads, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
    p = p.astype(np.float64)
    v = np.zeros_like(p)
    mean_g = np.zeros_like(p)
    buf = np.zeros_like(p)
    out = []
    for g in grads:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        if centered:
            mean_g = alpha * mean_g + (1 - alpha) * g
            denom = np.sqrt(v - mean_g**2) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
        out.append(p)
    return out


def ref_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def ref_adamw(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    return ref_adam(p, grads, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


def ref_adagrad(p, grads, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    p = p.astype(np.float64)
    s = np.full_like(p, initial_accumulator_value)
    out = []
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        step_lr = lr / (1 + (t - 1) * lr_decay)
        s = s + g**2
        p = p - step_lr * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


REFERENCES = {SGD: ref_sgd, RMSprop: ref_rmsprop, Adam: ref_adam, AdamW: ref_adamw, Adagrad: ref_adagrad}

CONFIGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (SGD, dict(lr=0.05, momentum=0.7, dampening=0.1, weight_decay=0.02)),
    (SGD, dict(lr=0.05, weight_decay=0.1)),
    (RMSprop, dict()),
    (RMSprop, dict(lr=0.02, alpha=0.8, eps=1e-6)),
    (RMSprop, dict(lr=0.01, alpha=0.9, centered=True)),
    (RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.8)),
    (RMSprop, dict(lr=0.01, alpha=0.85, momentum=0.5, centered=True, weight_decay=0.05)),
    (Adam, dict()),
    (Adam, dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6)),
    (Adam, dict(lr=0.05, betas=(0.8, 0.9), amsgrad=True)),
    (Adam, dict(lr=0.05, weight_decay=0.1)),
    (Adam, dict(lr=0.05, betas=(0.5, 0.6), weight_decay=0.1, amsgrad=True)),
    (AdamW, dict()),
    (AdamW, dict(lr=0.05, weight_decay=0.3)),
    (AdamW, dict(lr=0.05, betas=(0.7, 0.8), weight_decay=0.3, amsgrad=True)),
    (Adagrad, dict()),
    (Adagrad, dict(lr=0.1, lr_decay=0.3)),
    (Adagrad, dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    (Adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.2)),
]


def _config_id(config):
    cls, kwargs = config
    return cls.__name__ + "(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")"


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_optimizer_matches_reference_formula(config):
    opt_cls, kwargs = config
    init, grads = make_problem(seed=len(_config_id(config)))
    trajectory, _, _ = run_optimizer(opt_cls, kwargs, init, grads)
    for i, p0 in enumerate(init):
        expected = REFERENCES[opt_cls](p0, [g[i] for g in grads], **kwargs)
        for t in range(STEPS):
            np.testing.assert_allclose(trajectory[t][i], expected[t], rtol=1e-12, atol=1e-14,
                                       err_msg=f"param {i}, step {t + 1}")


@pytest.mark.parametrize(
    "ref, base, variant",
    [
        (ref_sgd, dict(lr=0.1, momentum=0.9), dict(dampening=0.5)),
        (ref_sgd, dict(lr=0.1, momentum=0.9), dict(nesterov=True)),
        (ref_rmsprop, dict(alpha=0.9), dict(centered=True)),
        (ref_rmsprop, dict(alpha=0.9), dict(momentum=0.5)),
        (ref_adam, dict(lr=0.05, betas=(0.8, 0.9)), dict(amsgrad=True)),
        (ref_adam, dict(lr=0.05, weight_decay=0.3), dict(decoupled=True)),
        (ref_adagrad, dict(lr=0.1), dict(lr_decay=0.3)),
    ],
)
def test_reference_problems_exercise_each_option(ref, base, variant):
    # Guards the comparison above: on these gradients every option changes the trajectory.
    init, grads = make_problem(seed=1)
    g0 = [g[0] for g in grads]
    plain = ref(init[0], g0, **base)[-1]
    varied = ref(init[0], g0, **base, **variant)[-1]
    assert np.max(np.abs(plain - varied)) > 1e-4


def test_param_groups_use_their_own_options():
    init, grads = make_problem(seed=3)
    params = [P(a.copy()) for a in init]
    opt = SGD(
        [{"params": params[:2]}, {"params": params[2:], "lr": 0.3, "momentum": 0.5}],
        lr=0.01,
        momentum=0.9,
    )
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.3
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
    for i in range(2):
        expected = ref_sgd(init[i], [g[i] for g in grads], lr=0.01, momentum=0.9)[-1]
        np.testing.assert_allclose(params[i].data, expected, rtol=1e-12)
    expected = ref_sgd(init[2], [g[2] for g in grads], lr=0.3, momentum=0.5)[-1]
    np.testing.assert_allclose(params[2].data, expected, rtol=1e-12)


@pytest.mark.parametrize("opt_cls", [SGD, RMSprop, Adam, AdamW, Adagrad])
def test_params_without_grad_are_skipped(opt_cls):
    init, grads = make_problem(seed=4)
    frozen, sometimes, always = (P(a.copy()) for a in init)
    opt = opt_cls([frozen, sometimes, always], lr=0.05, **({"momentum": 0.9} if opt_cls is SGD else {}))
    used_steps = []
    for t, step_grads in enumerate(grads):
        always.grad = step_grads[2].copy()
        sometimes.grad = step_grads[1].copy() if t % 2 == 0 else None
        if t % 2 == 0:
            used_steps.append(step_grads[1])
        opt.step()

    np.testing.assert_array_equal(frozen.data, init[0])
    assert id(frozen) not in opt.state
    # The other param advanced only on the steps where it had a gradient.
    kwargs = {"lr": 0.05, **({"momentum": 0.9} if opt_cls is SGD else {})}
    expected = REFERENCES[opt_cls](init[1], used_steps, **kwargs)[-1]
    np.testing.assert_allclose(sometimes.data, expected, rtol=1e-12)
    if "step" in opt.state[id(sometimes)]:
        assert opt.state[id(sometimes)]["step"] == len(used_steps)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[1]], ids=_config_id)
def test_float32_stays_float32_and_updates_in_place(config):
    opt_cls, kwargs = config
    init, grads = make_problem(seed=5, dtype=np.float32)
    params = [P(a.copy()) for a in init]
    arrays = [p.data for p in params]
    views = [a.reshape(-1) for a in arrays]  # aliases that must see the updates
    opt = opt_cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()
    for i, (p, a, v) in enumerate(zip(params, arrays, views)):
        assert p.data is a
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(v, p.data.reshape(-1))
        for name, buf in opt.state[id(p)].items():
            if isinstance(buf, np.ndarray):
                assert buf.dtype == np.float32, name
        expected = REFERENCES[opt_cls](init[i].astype(np.float64), [g[i].astype(np.float64) for g in grads], **kwargs)
        np.testing.assert_allclose(p.data, expected[-1], rtol=2e-4, atol=2e-5)


def test_grads_are_not_modified_by_step():
    init, grads = make_problem(seed=6)
    params = [P(a.copy()) for a in init]
    opt = Adam(params, lr=0.1, weight_decay=0.5)
    for p, g in zip(params, grads[0]):
        p.grad = g.copy()
    opt.step()
    for p, g in zip(params, grads[0]):
        np.testing.assert_array_equal(p.grad, g)


def test_zero_grad():
    params = [P(np.ones(3)), P(np.ones(2))]
    opt = SGD(params, lr=0.1)
    params[0].grad = np.full(3, 2.0)
    grad_array = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is grad_array and np.all(grad_array == 0)
    assert params[1].grad is None
    opt.zero_grad()
    assert params[0].grad is None


def test_step_returns_closure_value():
    p = P(np.zeros(2))
    p.grad = np.ones(2)
    opt = SGD([p], lr=0.5)
    assert opt.step(lambda: 42.0) == 42.0
    np.testing.assert_array_equal(p.data, [-0.5, -0.5])


# ---------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_state_dict_round_trip_is_bitwise(config):
    opt_cls, kwargs = config
    init, grads = make_problem(seed=7, steps=6)
    params = [P(a.copy()) for a in init]
    opt = opt_cls(params, **kwargs)

    def train(optimizer, ps, grad_steps):
        for step_grads in grad_steps:
            for p, g in zip(ps, step_grads):
                p.grad = g.copy()
            optimizer.step()

    train(opt, params, grads[:3])
    saved = opt.state_dict()
    copies = [P(p.data.copy()) for p in params]
    # A differently configured fresh optimizer: loading must restore the options too.
    fresh = opt_cls(copies, lr=123.0) if opt_cls is SGD else opt_cls(copies)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]

    saved_copy = {i: {k: np.copy(v) for k, v in s.items()} for i, s in saved["state"].items()}

    train(opt, params, grads[3:])
    train(fresh, copies, grads[3:])
    # Loading copies the buffers: training the fresh optimizer left the dict intact.
    for i, buffers in saved_copy.items():
        for k, v in buffers.items():
            np.testing.assert_array_equal(saved["state"][i][k], v)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.data, q.data)
        assert p.data.tobytes() == q.data.tobytes()


def test_state_dict_is_a_plain_snapshot():
    init, grads = make_problem(seed=8)
    params = [P(a.copy()) for a in init]
    opt = Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.1}])
    for p, g in zip(params, grads[0]):
        p.grad = g
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    assert set(sd["state"]) == {0, 1, 2}
    assert sd["state"][0]["step"] == 1
    snapshot = sd["state"][0]["exp_avg"].copy()
    opt.step()  # later steps must not alter the saved dict
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], snapshot)
    assert sd["state"][0]["step"] == 1


def _trained_adam(n_params=3, amsgrad=False):
    init, grads = make_problem(seed=9)
    params = [P(a.copy()) for a in init[:n_params]]
    opt = Adam(params, amsgrad=amsgrad)
    for p, g in zip(params, grads[0]):
        p.grad = g
    opt.step()
    return opt, params


def test_load_state_dict_rejects_wrong_group_count():
    opt, params = _trained_adam()
    other = Adam([{"params": [P(p.data.copy())]} for p in params[:2]] + [{"params": [P(params[2].data.copy())]}])
    with pytest.raises(ValueError, match="group"):
        other.load_state_dict(opt.state_dict())


def test_load_state_dict_rejects_wrong_param_count():
    opt, params = _trained_adam()
    other = Adam([P(p.data.copy()) for p in params[:2]])
    with pytest.raises(ValueError, match="parameter"):
        other.load_state_dict(opt.state_dict())


def test_load_state_dict_rejects_wrong_buffer_shape():
    opt, params = _trained_adam()
    other = Adam([P(np.zeros((4, 3))), P(params[1].data.copy()), P(params[2].data.copy())])
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*\(4, 3\)"):
        other.load_state_dict(opt.state_dict())


def test_load_state_dict_rejects_malformed_dict():
    opt, params = _trained_adam()
    with pytest.raises(ValueError, match="param_groups"):
        opt.load_state_dict({"state": {}})
    sd = opt.state_dict()
    sd["state"][7] = sd["state"][0]
    with pytest.raises(ValueError, match="index 7"):
        opt.load_state_dict(sd)


def test_load_state_dict_rejects_other_optimizer_kind():
    opt, params = _trained_adam()
    sgd = SGD([P(p.data.copy()) for p in params], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        sgd.load_state_dict(opt.state_dict())


def test_load_state_dict_casts_buffers_to_param_dtype():
    opt, params = _trained_adam()  # float64 buffers
    copies = [P(p.data.astype(np.float32)) for p in params]
    fresh = Adam(copies)
    fresh.load_state_dict(opt.state_dict())
    for p in copies:
        assert fresh.state[id(p)]["exp_avg"].dtype == np.float32
        assert fresh.state[id(p)]["exp_avg_sq"].dtype == np.float32


def test_failed_load_leaves_optimizer_untouched():
    opt, params = _trained_adam()
    before = opt.state[id(params[0])]["exp_avg"].copy()
    sd = opt.state_dict()
    sd["state"][2]["exp_avg"] = np.zeros(7)
    with pytest.raises(ValueError):
        opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[id(params[0])]["exp_avg"], before)


# ---------------------------------------------------------------------------
# argument validation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "make, name",
    [
        (lambda ps: SGD(ps, lr=-0.1), "lr"),
        (lambda ps: SGD(ps, lr=0.1, momentum=-1), "momentum"),
        (lambda ps: SGD(ps, lr=0.1, weight_decay=-1), "weight_decay"),
        (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov"),
        (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (lambda ps: RMSprop(ps, alpha=-0.5), "alpha"),
        (lambda ps: RMSprop(ps, eps=-1.0), "eps"),
        (lambda ps: Adam(ps, lr=float("nan")), "lr"),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda ps: Adam(ps, betas=(0.9,)), "betas"),
        (lambda ps: AdamW(ps, weight_decay=-0.1), "weight_decay"),
        (lambda ps: Adagrad(ps, lr_decay=-0.1), "lr_decay"),
        (lambda ps: Adagrad(ps, initial_accumulator_value=-1), "initial_accumulator_value"),
        (lambda ps: SGD([{"params": ps, "lr": -1.0}], lr=0.1), "lr"),
        (lambda ps: SGD([{"params": ps, "learning_rate": 1.0}], lr=0.1), "learning_rate"),
        (lambda ps: SGD([], lr=0.1), "empty"),
        (lambda ps: SGD([ps[0], ps[0]], lr=0.1), "more than one"),
        (lambda ps: SGD([{"params": ps[:1]}, {"params": ps}], lr=0.1), "more than one"),
    ],
)
def test_invalid_arguments_raise_value_error(make, name):
    params = [P(np.zeros(2)), P(np.zeros(3))]
    with pytest.raises(ValueError, match=name):
        make(params)


def test_invalid_param_types_raise_type_error():
    p = P(np.zeros(2))
    with pytest.raises(TypeError, match="iterable"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"params'\]\[0\]"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="floating"):
        SGD([P(np.zeros(2, dtype=np.int64))], lr=0.1)


def test_grad_shape_mismatch_raises():
    p = P(np.zeros((2, 3)))
    p.grad = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        SGD([p], lr=0.1).step()


# ---------------------------------------------------------------------------
# gradient clipping
# ---------------------------------------------------------------------------

def _params_with_grads(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [P(np.zeros(s)) for s in [(3, 4), (6,), (2, 2, 2)]]
    for p in params:
        p.grad = rng.standard_normal(p.data.shape) * scale
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf"), "inf"])
def test_clip_grad_norm_clips_to_max_norm(norm_type):
    params = _params_with_grads(seed=10, scale=5.0)
    flat = np.concatenate([p.grad.ravel() for p in params])
    order = float(norm_type)
    expected_total = np.max(np.abs(flat)) if math.isinf(order) else np.sum(np.abs(flat) ** order) ** (1 / order)
    before = [p.grad.copy() for p in params]
    grad_arrays = [p.grad for p in params]

    total = clip_grad_norm_(params, max_norm=0.5, norm_type=norm_type)

    assert isinstance(total, float)
    assert total == pytest.approx(expected_total, rel=1e-12)
    coef = 0.5 / (expected_total + 1e-6)
    for p, g0, arr in zip(params, before, grad_arrays):
        assert p.grad is arr  # clipped in place
        np.testing.assert_allclose(p.grad, g0 * coef, rtol=1e-12)
    flat_after = np.concatenate([p.grad.ravel() for p in params])
    after = np.max(np.abs(flat_after)) if math.isinf(order) else np.sum(np.abs(flat_after) ** order) ** (1 / order)
    assert after == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_leaves_small_grads_alone():
    params = _params_with_grads(seed=11, scale=0.01)
    before = [p.grad.copy() for p in params]
    expected_total = np.linalg.norm(np.concatenate([g.ravel() for g in before]))
    total = clip_grad_norm_(params, max_norm=10.0)
    assert total == pytest.approx(expected_total, rel=1e-12)
    for p, g0 in zip(params, before):
        np.testing.assert_array_equal(p.grad, g0)


def test_clip_grad_norm_skips_none_grads_and_accepts_one_param():
    params = _params_with_grads(seed=12)
    params[1].grad = None
    expected = np.linalg.norm(np.concatenate([params[0].grad.ravel(), params[2].grad.ravel()]))
    assert clip_grad_norm_(params, 1e9) == pytest.approx(expected, rel=1e-12)
    assert params[1].grad is None

    single = params[0]
    g0 = single.grad.copy()
    total = clip_grad_norm_(single, max_norm=0.1)
    assert total == pytest.approx(np.linalg.norm(g0), rel=1e-12)
    np.testing.assert_allclose(single.grad, g0 * 0.1 / (np.linalg.norm(g0) + 1e-6), rtol=1e-12)


def test_clip_grad_norm_without_grads_is_zero():
    assert clip_grad_norm_([P(np.ones(3))], max_norm=1.0) == 0.0
    assert clip_grad_norm_([], max_norm=1.0) == 0.0


def test_clip_grad_norm_float32_keeps_dtype():
    params = _params_with_grads(seed=13, scale=4.0)
    for p in params:
        p.grad = p.grad.astype(np.float32)
    expected = np.linalg.norm(np.concatenate([p.grad.astype(np.float64).ravel() for p in params]))
    total = clip_grad_norm_(params, max_norm=1.0)
    assert total == pytest.approx(expected, rel=1e-6)
    assert all(p.grad.dtype == np.float32 for p in params)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_nonfinite(bad, norm_type):
    params = _params_with_grads(seed=14)
    params[2].grad[0, 1, 1] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type, error_if_nonfinite=True)
    # Without the flag the norm is returned and the grads are scaled by it anyway (as torch does).
    total = clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert (math.isnan(total) if np.isnan(bad) else total == math.inf)
    if np.isnan(bad):
        assert np.all(np.isnan(params[0].grad))
    else:
        assert np.all(params[0].grad == 0)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
def test_get_total_norm_is_the_norm_of_the_concatenation(norm_type):
    params = _params_with_grads(seed=21, scale=3.0)
    grads = [p.grad.astype(np.float32) for p in params] + [None]  # None entries are skipped
    flat = np.concatenate([g.astype(np.float64).ravel() for g in grads if g is not None])
    expected = np.max(np.abs(flat)) if math.isinf(norm_type) else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    assert get_total_norm(grads, norm_type) == pytest.approx(expected, rel=1e-6)
    assert get_total_norm(grads[0], norm_type) == pytest.approx(
        np.max(np.abs(grads[0])) if math.isinf(norm_type) else np.linalg.norm(grads[0].ravel(), ord=norm_type),
        rel=1e-6)
    assert get_total_norm([]) == 0.0
    assert [g.tolist() for g in grads[:-1]] == [p.grad.astype(np.float32).tolist() for p in params]  # untouched


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_get_total_norm_nonfinite_raises_only_when_asked(bad):
    grads = [np.ones(3), np.array([1.0, bad])]
    total = get_total_norm(grads)
    assert math.isnan(total) if np.isnan(bad) else total == math.inf
    with pytest.raises(RuntimeError, match=r"non-finite \((nan|inf)\)"):
        get_total_norm(grads, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="norm_type"):
        get_total_norm(grads, norm_type=-1)


def test_clip_grads_with_norm_scales_by_the_given_norm():
    params = _params_with_grads(seed=22, scale=5.0)
    before = [p.grad.copy() for p in params]
    clip_grads_with_norm_(params, max_norm=1.0, total_norm=10.0)
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad, g * (1.0 / (10.0 + 1e-6)), rtol=1e-12)
    clip_grads_with_norm_(params, max_norm=100.0, total_norm=10.0)  # below max_norm: unchanged
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad, g * (1.0 / (10.0 + 1e-6)), rtol=1e-12)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grads_with_norm_(params, max_norm=-1.0, total_norm=1.0)


def test_clip_grad_norm_with_error_if_nonfinite_leaves_the_grads_untouched():
    params = _params_with_grads(seed=23)
    params[1].grad[2] = np.nan
    before = [p.grad.copy() for p in params]
    with pytest.raises(RuntimeError, match="error_if_nonfinite=False"):
        clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True)
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_norm_rejects_bad_arguments():
    params = _params_with_grads(seed=15)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(params, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(params, -1.0)


def test_clip_grad_value():
    params = _params_with_grads(seed=16, scale=2.0)
    params[1].grad = None
    before = [None if p.grad is None else p.grad.copy() for p in params]
    arrays = [p.grad for p in params]
    clip_grad_value_(params, 0.7)
    for p, g0, arr in zip(params, before, arrays):
        if g0 is None:
            assert p.grad is None
            continue
        assert p.grad is arr
        expected = np.where(g0 > 0.7, 0.7, np.where(g0 < -0.7, -0.7, g0))
        np.testing.assert_array_equal(p.grad, expected)
    assert np.any(np.abs(before[0]) > 0.7) and np.any(np.abs(before[0]) < 0.7)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(params, -1.0)


# ---------------------------------------------------------------------------
# learning-rate schedules
# ---------------------------------------------------------------------------

BASE_LRS = [0.1, 0.025]


def _two_group_sgd():
    return SGD([{"params": [P(np.zeros(2))]}, {"params": [P(np.zeros(3))], "lr": BASE_LRS[1]}], lr=BASE_LRS[0])


def _lr_sequence(scheduler, n):
    """lrs read from the optimizer at epochs 0..n-1 (epoch 0 = after construction)."""
    seq = []
    for t in range(n):
        lrs = [g["lr"] for g in scheduler.optimizer.param_groups]
        assert scheduler.get_last_lr() == lrs
        seq.append(lrs)
        scheduler.step()
    return np.array(seq)


def _expected(fn, n):
    return np.array([[fn(base, t) for base in BASE_LRS] for t in range(n)])


def test_step_lr():
    opt = _two_group_sgd()
    sched = StepLR(opt, step_size=3, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == BASE_LRS
    got = _lr_sequence(sched, 11)
    np.testing.assert_allclose(got, _expected(lambda b, t: b * 0.5 ** math.floor(t / 3), 11), rtol=1e-14)


def test_cosine_annealing_lr():
    opt = _two_group_sgd()
    sched = CosineAnnealingLR(opt, T_max=8, eta_min=0.001)

    def cosine(base, t):
        return 0.001 + (base - 0.001) * 0.5 * (1 + math.cos(math.pi * t / 8))

    got = _lr_sequence(sched, 12)
    np.testing.assert_allclose(got, _expected(cosine, 12), rtol=1e-14)
    np.testing.assert_allclose(got[8], [0.001, 0.001], rtol=1e-12)


def test_linear_lr():
    opt = _two_group_sgd()
    sched = LinearLR(opt, start_factor=0.25, end_factor=0.75, total_iters=4)
    factors = [0.25, 0.375, 0.5, 0.625, 0.75, 0.75, 0.75]
    got = _lr_sequence(sched, 7)
    np.testing.assert_allclose(got, _expected(lambda b, t: b * factors[t], 7), rtol=1e-14)


def test_linear_lr_defaults_match_torch_documentation():
    opt = SGD([P(np.zeros(1))], lr=0.05)
    got = _lr_sequence(LinearLR(opt), 7)[:, 0]
    # torch docs example: 0.025 (=0.05/3 ... ) -> 0.05 over 5 steps with factor 1/3
    expected = [0.05 * (1 / 3 + (2 / 3) * min(t, 5) / 5) for t in range(7)]
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_sequential_warmup_then_cosine():
    opt = _two_group_sgd()
    warm = LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=3)
    cos = CosineAnnealingLR(opt, T_max=6)
    sched = SequentialLR(opt, [warm, cos], milestones=[3])

    def piecewise(base, t):
        if t < 3:
            return base * (0.1 + 0.9 * t / 3)
        return base * 0.5 * (1 + math.cos(math.pi * (t - 3) / 6))

    np.testing.assert_allclose(_lr_sequence(sched, 10), _expected(piecewise, 10), rtol=1e-14, atol=1e-17)


def test_warmup_cosine_helper():
    opt = _two_group_sgd()
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=10, start_factor=0.01, eta_min=0.002)

    def piecewise(base, t):
        if t < 4:
            return base * (0.01 + 0.99 * t / 4)
        return 0.002 + (base - 0.002) * 0.5 * (1 + math.cos(math.pi * (t - 4) / 6))

    got = _lr_sequence(sched, 11)
    np.testing.assert_allclose(got, _expected(piecewise, 11), rtol=1e-14)
    np.testing.assert_allclose(got[4], BASE_LRS, rtol=1e-14)  # peak right after warm-up
    np.testing.assert_allclose(got[10], [0.002, 0.002], rtol=1e-12)


def test_scheduler_lr_drives_the_optimizer():
    p = P(np.zeros(1))
    opt = SGD([p], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    moves = []
    for _ in range(3):
        p.grad = np.ones(1)
        before = p.data.copy()
        opt.step()
        moves.append(float(before[0] - p.data[0]))
        sched.step()
    assert moves == [1.0, 0.5, 0.25]


@pytest.mark.parametrize(
    "make",
    [
        lambda opt: StepLR(opt, step_size=2, gamma=0.3),
        lambda opt: CosineAnnealingLR(opt, T_max=5, eta_min=0.01),
        lambda opt: LinearLR(opt, start_factor=0.2, total_iters=4),
        lambda opt: warmup_cosine(opt, warmup_steps=2, total_steps=7),
    ],
    ids=["step", "cosine", "linear", "warmup_cosine"],
)
def test_scheduler_state_dict_round_trip(make):
    opt = _two_group_sgd()
    sched = make(opt)
    for _ in range(3):
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    fresh_opt = _two_group_sgd()
    fresh = make(fresh_opt)
    fresh_opt.load_state_dict(opt_state)
    fresh.load_state_dict(sched_state)
    assert fresh.last_epoch == 3
    assert fresh.get_last_lr() == sched.get_last_lr()
    assert _lr_sequence(fresh, 6).tolist() == _lr_sequence(sched, 6).tolist()


def test_scheduler_load_restores_lr_even_without_optimizer_state():
    opt = _two_group_sgd()
    sched = CosineAnnealingLR(opt, T_max=5)
    for _ in range(2):
        sched.step()
    fresh_opt = _two_group_sgd()
    fresh = CosineAnnealingLR(fresh_opt, T_max=5)
    fresh.load_state_dict(sched.state_dict())
    assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in opt.param_groups]


def test_scheduler_state_dict_errors():
    opt = _two_group_sgd()
    sched = StepLR(opt, step_size=2)
    sd = sched.state_dict()
    del sd["gamma"]
    with pytest.raises(ValueError, match="gamma"):
        sched.load_state_dict(sd)
    sd = sched.state_dict()
    sd["base_lrs"] = [0.1]
    with pytest.raises(ValueError, match="base lr"):
        sched.load_state_dict(sd)


def test_second_scheduler_keeps_original_base_lr():
    opt = _two_group_sgd()
    LinearLR(opt, start_factor=0.5, total_iters=2)  # sets lr to half the base
    cos = CosineAnnealingLR(opt, T_max=4)
    assert cos.base_lrs == BASE_LRS


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda opt: StepLR(opt, step_size=0), "step_size"),
        (lambda opt: StepLR(opt, step_size=2, gamma=0.0), "gamma"),
        (lambda opt: CosineAnnealingLR(opt, T_max=0), "T_max"),
        (lambda opt: CosineAnnealingLR(opt, T_max=3, eta_min=-1.0), "eta_min"),
        (lambda opt: LinearLR(opt, start_factor=0.0), "start_factor"),
        (lambda opt: LinearLR(opt, end_factor=1.5), "end_factor"),
        (lambda opt: LinearLR(opt, total_iters=0), "total_iters"),
        (lambda opt: SequentialLR(opt, [StepLR(opt, 1), StepLR(opt, 2)], milestones=[]), "milestones"),
        (lambda opt: SequentialLR(opt, [StepLR(opt, 1), StepLR(_two_group_sgd(), 2)], [2]), "different optimizer"),
        (lambda opt: warmup_cosine(opt, warmup_steps=5, total_steps=5), "total_steps"),
    ],
)
def test_scheduler_arguments_are_validated(make, name):
    with pytest.raises(ValueError, match=name):
        make(_two_group_sgd())


# ---------------------------------------------------------------------------
# PyTorch oracle (recorded by scripts/make_optim_fixtures.py; torch not needed here)
# ---------------------------------------------------------------------------

TORCH_FIXTURE = Path(__file__).parent / "fixtures" / "optim_torch.npz"
OPTIMIZERS_BY_NAME = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW, "Adagrad": Adagrad}


def _torch_fixture():
    data = np.load(TORCH_FIXTURE)
    return data, json.loads(str(data["meta"]))


def _unflatten(vector, shapes):
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(vector[start:start + size].reshape(shape))
        start += size
    return out


def _torch_cases(kind):
    _, meta = _torch_fixture()
    return [pytest.param(case, id=case["key"]) for case in meta[kind]]


@pytest.mark.parametrize("case", _torch_cases("optimizers"))
def test_optimizer_trajectory_matches_torch(case):
    data, _ = _torch_fixture()
    shapes = [tuple(s) for s in case["shapes"]]
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in case["kwargs"].items()}
    init = _unflatten(data[case["key"] + "/init"], shapes)
    grads = [_unflatten(g, shapes) for g in data[case["key"] + "/grads"]]
    expected = data[case["key"] + "/trajectory"]

    trajectory, params, _ = run_optimizer(OPTIMIZERS_BY_NAME[case["optimizer"]], kwargs, init, grads)
    got = np.stack([np.concatenate([a.ravel() for a in step]) for step in trajectory])
    assert got.dtype == expected.dtype
    # Same order of operations as torch; torch's CPU kernels may fuse multiply-adds,
    # so allow a few rounding errors of the (order-one) parameter values.
    tolerance = 4 * np.finfo(got.dtype).eps * max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("case", _torch_cases("schedules"))
def test_schedule_matches_torch(case):
    data, _ = _torch_fixture()
    base_lrs = case["base_lrs"]
    opt = SGD([{"params": [P(np.zeros(1))], "lr": lr} for lr in base_lrs], lr=base_lrs[0])
    kwargs = case["kwargs"]
    if case["scheduler"] == "warmup_cosine":
        sched = warmup_cosine(opt, **kwargs)
    else:
        sched = {"StepLR": StepLR, "CosineAnnealingLR": CosineAnnealingLR, "LinearLR": LinearLR}[
            case["scheduler"]](opt, **kwargs)
    expected = data[case["key"] + "/lrs"]
    got = _lr_sequence(sched, len(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("case", _torch_cases("clipping"))
def test_clip_grad_norm_matches_torch(case):
    data, _ = _torch_fixture()
    shapes = [tuple(s) for s in case["shapes"]]
    params = [P(np.zeros(s)) for s in shapes]
    for p, g in zip(params, _unflatten(data[case["key"] + "/grads"], shapes)):
        p.grad = g.copy()
    total = clip_grad_norm_(params, case["max_norm"], norm_type=case["norm_type"])
    assert total == pytest.approx(float(data[case["key"] + "/total"]), rel=1e-13)
    got = np.concatenate([p.grad.ravel() for p in params])
    np.testing.assert_allclose(got, data[case["key"] + "/clipped"], rtol=1e-13)
