"""nn.init laws, calculate_gain and cross_entropy with class-probability targets against PyTorch
fixtures written by scripts/make_torch_fixtures.py (no torch needed here)."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from fixture_utils import fixture_names, load_fixture
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn import functional as F

INIT = load_fixture("init_laws")
UNIFORM = {"uniform_", "xavier_uniform_", "kaiming_uniform_"}
NORMAL = {"normal_", "xavier_normal_", "kaiming_normal_"}


@pytest.mark.parametrize("case", INIT["config"]["cases"], ids=lambda c: c["name"])
def test_init_law_matches_torch(case):
    tg.manual_seed(11)
    w = nn.Parameter(np.zeros(case["shape"]))
    returned = getattr(nn.init, case["fn"])(w, **case["kwargs"])
    assert returned is w and w.shape == tuple(case["shape"]) and w.dtype == np.float64
    a = w.data
    t_mean, t_std, t_min, t_max = INIT["out"][case["name"]]
    n = a.size
    if case["fn"] in UNIFORM:
        # one draw of n uniforms reaches within (b - a) * 1e-3 of its bounds with near certainty
        span = t_max - t_min
        assert abs(a.min() - t_min) < 2e-3 * span and abs(a.max() - t_max) < 2e-3 * span
        assert abs(a.std() - t_std) < 0.02 * t_std
    elif case["fn"] in NORMAL:
        assert abs(a.std() - t_std) < 0.02 * t_std
        assert abs(a.mean() - t_mean) < 6 * t_std / np.sqrt(n)
    elif case["fn"] == "orthogonal_":
        rows = a.reshape(a.shape[0], -1)
        gram = rows @ rows.T if rows.shape[0] <= rows.shape[1] else rows.T @ rows
        np.testing.assert_allclose(np.diag(gram).mean(), INIT["out"][case["name"] + "_gram_diag_mean"], rtol=1e-12)
        np.testing.assert_allclose(gram, np.eye(len(gram)) * np.diag(gram).mean(), atol=1e-12)
        assert INIT["out"][case["name"] + "_gram_offdiag_maxabs"] < 1e-12
        assert abs(a.std() - t_std) < 0.02 * t_std
    else:  # zeros_, ones_
        np.testing.assert_array_equal(a, np.full(a.shape, t_mean))
        assert t_std == 0


@pytest.mark.parametrize("nonlinearity, param, expected", INIT["config"]["gains"])
def test_calculate_gain_matches_torch(nonlinearity, param, expected):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


def test_init_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"xavier_uniform_: fan in and fan out need .* at least 2 dimensions, got shape \(5,\)"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(5)))
    with pytest.raises(ValueError, match="kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan'"):
        nn.init.kaiming_normal_(nn.Parameter(np.zeros((2, 3))), mode="fan")
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'gelu'"):
        nn.init.calculate_gain("gelu")
    with pytest.raises(TypeError, match="orthogonal_: tensor must be a Tensor"):
        nn.init.orthogonal_(np.zeros((2, 2)))


def test_init_is_in_place_and_seeded():
    lin = nn.Linear(4, 3)
    before = lin.weight.data
    tg.manual_seed(1)
    nn.init.xavier_normal_(lin.weight)
    first = lin.weight.data.copy()
    assert lin.weight.data is before and lin.weight.dtype == np.float32
    tg.manual_seed(1)
    nn.init.xavier_normal_(lin.weight)
    np.testing.assert_array_equal(lin.weight.data, first)


@pytest.mark.parametrize("name", fixture_names("ce_prob_"))
def test_cross_entropy_probability_targets_match_torch(name):
    fx = load_fixture(name)
    cfg = fx["config"]
    x = Tensor(fx["x"], requires_grad=True)
    loss = F.cross_entropy(x, fx["target"], reduction=cfg["reduction"], label_smoothing=cfg["label_smoothing"],
                           weight=fx.get("weight"))
    np.testing.assert_allclose(loss.data, fx["out"]["loss"], rtol=1e-12, atol=1e-12)
    (loss * Tensor(fx["g"]["loss"])).sum().backward()
    np.testing.assert_allclose(x.grad, fx["grad"]["x"], rtol=1e-12, atol=1e-12)


def test_one_hot_targets_give_the_index_loss_and_shape_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 3))
    y = rng.integers(0, 3, (4, 6))
    onehot = F.one_hot(y, 3)
    assert onehot.dtype == np.int64 and onehot.shape == (4, 6, 3)
    np.testing.assert_array_equal(onehot.data.argmax(-1), y)
    by_index = F.cross_entropy(Tensor(x), y).data
    by_probs = F.cross_entropy(Tensor(x), onehot.data.astype(np.float64)).data
    np.testing.assert_allclose(by_probs, by_index, rtol=1e-13)
    with pytest.raises(ValueError, match=r"class-probability target must have the logits' shape \(4, 6, 3\), got \(4, 6, 2\)"):
        F.cross_entropy(Tensor(x), np.ones((4, 6, 2)) / 2)
    assert F.one_hot(np.array([0, 2])).shape == (2, 3)
    with pytest.raises(ValueError, match=r"one_hot: class values must lie in \[0, 2\)"):
        F.one_hot(np.array([0, 2]), 2)


@pytest.mark.parametrize("reduction, smoothing, weighted", [("none", 0.0, False), ("mean", 0.2, True),
                                                            ("sum", 0.0, True)])
def test_probability_target_gradient_by_finite_differences(reduction, smoothing, weighted):
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    raw = rng.random((3, 4, 5))
    target = raw / raw.sum(-1, keepdims=True)
    weight = rng.random(5) + 0.5 if weighted else None
    assert tg.gradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction, label_smoothing=smoothing,
                                                  weight=weight), [x])
