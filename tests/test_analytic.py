"""Tests for the handwritten BPTT in tinygrad_rnn.analytic.

Three independent references: central finite differences of the analytic
forward (float64, random upstream gradients), PyTorch's results stored in
tests/fixtures, and plain properties (dtype, stability, input validation).
"""

from __future__ import annotations

import numpy as np
import pytest

from fixture_utils import fixture_names, load_fixture
from tinygrad_rnn.reference import analytic

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
PARAM_NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


# ---------------------------------------------------------------------------
# helpers: one calling convention for all three recurrences
# ---------------------------------------------------------------------------


def _base(kind: str) -> str:
    return kind.split("_")[0]


def forward(kind, x, h0, c0, params):
    """Run the analytic forward; returns ({'output', 'h_n', 'c_n'}, cache)."""
    p = [params.get(n) for n in PARAM_NAMES]
    base = _base(kind)
    if base == "lstm":
        out, h_n, c_n, cache = analytic.lstm_forward(x, h0, c0, *p)
        return {"output": out, "h_n": h_n, "c_n": c_n}, cache
    if base == "gru":
        out, h_n, cache = analytic.gru_forward(x, h0, *p)
    else:
        out, h_n, cache = analytic.rnn_forward(x, h0, *p, nonlinearity=kind.split("_")[1])
    return {"output": out, "h_n": h_n}, cache


def backward(kind, upstream, cache):
    base = _base(kind)
    if base == "lstm":
        return analytic.lstm_backward(upstream.get("output"), upstream.get("h_n"), upstream.get("c_n"), cache)
    fn = analytic.gru_backward if base == "gru" else analytic.rnn_backward
    return fn(upstream.get("output"), upstream.get("h_n"), cache)


def make_problem(kind, T, N, I=3, H=4, *, seed=0, bias=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    G = GATES[_base(kind)]
    scale = 1 / np.sqrt(H)
    params = {
        "weight_ih": rng.uniform(-2 * scale, 2 * scale, (G * H, I)),
        "weight_hh": rng.uniform(-2 * scale, 2 * scale, (G * H, H)),
    }
    if bias:
        params["bias_ih"] = rng.uniform(-1, 1, G * H)
        params["bias_hh"] = rng.uniform(-1, 1, G * H)
    arrays = {
        "x": rng.standard_normal((T, N, I)),
        "h0": 0.5 * rng.standard_normal((N, H)),
        "c0": 0.5 * rng.standard_normal((N, H)),
    }
    upstream = {
        "output": rng.standard_normal((T, N, H)),
        "h_n": rng.standard_normal((N, H)),
        "c_n": rng.standard_normal((N, H)),
    }
    cast = lambda d: {k: v.astype(dtype) for k, v in d.items()}  # noqa: E731
    return cast(arrays), cast(params), cast(upstream)


def loss_of(results, upstream):
    return sum(float(np.sum(results[k] * upstream[k])) for k in results if upstream.get(k) is not None)


def numerical_grads(kind, arrays, params, upstream, eps=1e-6):
    """Central differences of the loss w.r.t. every input array and parameter."""
    inputs = {**arrays, **params}
    if _base(kind) != "lstm":
        inputs.pop("c0")

    def loss():
        results, _ = forward(kind, inputs["x"], inputs["h0"], inputs.get("c0"),
                             {n: inputs[n] for n in PARAM_NAMES if n in inputs})
        return loss_of(results, upstream)

    grads = {}
    for name, a in inputs.items():
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            plus = loss()
            a[idx] = old - eps
            minus = loss()
            a[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        grads[name] = g
    return grads


def assert_grads_close(analytic_grads, numeric, rtol=1e-6, atol=1e-8):
    for name, expected in numeric.items():
        np.testing.assert_allclose(analytic_grads[name], expected, rtol=rtol, atol=atol, err_msg=name)


# ---------------------------------------------------------------------------
# analytic backward vs central finite differences
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("N", [1, 3])
def test_backward_matches_finite_differences(kind, T, N):
    arrays, params, upstream = make_problem(kind, T, N, seed=T * 10 + N)
    results, cache = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    got = backward(kind, upstream, cache)
    assert_grads_close(got, numerical_grads(kind, arrays, params, upstream))


@pytest.mark.parametrize("kind", KINDS)
def test_missing_initial_state_means_zeros(kind):
    arrays, params, upstream = make_problem(kind, T=3, N=2, seed=5)
    zeros = np.zeros_like(arrays["h0"])
    results, cache = forward(kind, arrays["x"], None, None, params)
    got = backward(kind, upstream, cache)
    # the gradient is still returned, as the gradient w.r.t. the zero state
    arrays["h0"], arrays["c0"] = zeros.copy(), zeros.copy()
    expected_results, _ = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    for key in results:
        np.testing.assert_array_equal(results[key], expected_results[key])
    numeric = numerical_grads(kind, arrays, params, upstream)
    assert set(numeric) <= set(got)
    assert_grads_close(got, numeric)


@pytest.mark.parametrize("kind, missing", [
    (kind, missing)
    for kind in KINDS
    for missing in ["output", "h_n", "output+h_n"] + (["c_n", "h_n+c_n"] if kind == "lstm" else [])
])
def test_none_upstream_gradient_means_zero(kind, missing):
    arrays, params, upstream = make_problem(kind, T=4, N=3, seed=11)
    for key in missing.split("+"):
        upstream[key] = None
    _, cache = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    got = backward(kind, upstream, cache)
    assert_grads_close(got, numerical_grads(kind, arrays, params, upstream))


@pytest.mark.parametrize("kind", KINDS)
def test_without_bias(kind):
    arrays, params, upstream = make_problem(kind, T=3, N=3, seed=3, bias=False)
    _, cache = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    got = backward(kind, upstream, cache)
    assert got["bias_ih"] is None and got["bias_hh"] is None
    assert_grads_close(got, numerical_grads(kind, arrays, params, upstream))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_only_one_bias(kind):
    # GRU's b_hn sits inside the reset product, so each bias must be handled on its own
    arrays, params, upstream = make_problem(kind, T=3, N=2, seed=8)
    del params["bias_ih"]
    _, cache = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    got = backward(kind, upstream, cache)
    assert got["bias_ih"] is None
    assert_grads_close(got, numerical_grads(kind, arrays, params, upstream))


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_and_cache_not_mutated(kind):
    arrays, params, upstream = make_problem(kind, T=3, N=2, seed=4)
    before = {k: v.copy() for k, v in {**arrays, **params, **upstream}.items()}
    results, cache = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    first = backward(kind, upstream, cache)
    results["output"][...] = 123.0  # editing a returned array must not reach the cache
    results["h_n"][...] = 123.0
    second = backward(kind, upstream, cache)
    for name, value in {**arrays, **params, **upstream}.items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


# ---------------------------------------------------------------------------
# analytic vs PyTorch fixtures
# ---------------------------------------------------------------------------


def _fixture_kind(config):
    kind = config["kind"].removesuffix("Cell").lower()
    return f"rnn_{config['nonlinearity']}" if kind == "rnn" else kind


def _tolerance(fx):
    return {"rtol": 1e-10, "atol": 1e-10} if fx["meta"]["dtype"] == "float64" else {"rtol": 1e-5, "atol": 1e-5}


def _cell_case(fx):
    """A cell call is one time step: (N, I) -> (1, N, I); unbatched (I,) -> (1, 1, I)."""
    H = fx["config"]["hidden_size"]
    x = fx["x"].reshape(1, -1, fx["x"].shape[-1])
    N = x.shape[1]
    states = {k: None if fx[k] is None else fx[k].reshape(N, H) for k in ("h0", "c0")}
    upstream = {k: v.reshape(N, H) for k, v in fx["g"].items()}
    upstream["output"] = None
    return x, states, fx["params"], upstream


def _layer_case(fx):
    """Single-layer, unidirectional, time-major fixtures ((L, I) unbatched gets N = 1)."""
    H = fx["config"]["hidden_size"]
    x = fx["x"]
    x = x[:, None, :] if fx["meta"]["unbatched"] else x
    N = x.shape[1]
    states = {k: None if fx[k] is None else fx[k].reshape(N, H) for k in ("h0", "c0")}
    params = {k.removesuffix("_l0"): v for k, v in fx["params"].items()}
    upstream = {"output": fx["g"]["output"].reshape(x.shape[0], N, H)}
    upstream.update({k: fx["g"][k].reshape(N, H) for k in ("h_n", "c_n") if k in fx["g"]})
    return x, states, params, upstream


def _single_layer_fixtures():
    names = []
    for name in fixture_names("layer_"):
        fx = load_fixture(name)
        cfg, meta = fx["config"], fx["meta"]
        if (cfg["num_layers"] == 1 and not cfg["bidirectional"] and not cfg["batch_first"]
                and not meta["has_lengths"] and not cfg.get("proj_size")):  # analytic has no projection
            names.append(name)
    return names


SINGLE_LAYER_FIXTURES = _single_layer_fixtures()


def test_fixture_selection_covers_every_kind():
    # guards the filter above: base, nostate, float32, nobias and unbatched for each kind
    assert len(SINGLE_LAYER_FIXTURES) == 5 * len(KINDS)


@pytest.mark.parametrize("name", fixture_names("cell_") + SINGLE_LAYER_FIXTURES)
def test_matches_torch_fixture(name):
    fx = load_fixture(name)
    kind = _fixture_kind(fx["config"])
    is_cell = name.startswith("cell_")
    x, states, params, upstream = (_cell_case if is_cell else _layer_case)(fx)
    tol = _tolerance(fx)

    results, cache = forward(kind, x, states["h0"], states["c0"], params)
    for key, expected in fx["out"].items():
        np.testing.assert_allclose(results[key].reshape(expected.shape), expected, **tol, err_msg=key)
        assert results[key].dtype == expected.dtype

    got = backward(kind, upstream, cache)
    sfx = "" if is_cell else "_l0"
    for key, expected in fx["grad"].items():
        ours = got[key.removesuffix(sfx)] if key.startswith(("weight", "bias")) else got[key]
        np.testing.assert_allclose(ours.reshape(expected.shape), expected, **tol, err_msg=key)
    if not fx["config"]["bias"]:
        assert got["bias_ih"] is None and got["bias_hh"] is None


def _stacked_layer_from_analytic(fx):
    """Compose the one-direction analytic pieces into a full torch-style layer.

    Covers num_layers, bidirectional, batch_first, unbatched input and
    lengths: with lengths every sequence runs alone over its first len_b
    steps, the reverse direction on those steps reversed, padded outputs stay 0.
    Returns (results, grads) keyed like the fixture's ``out`` and ``grad``.
    """
    cfg, meta = fx["config"], fx["meta"]
    kind = _fixture_kind(cfg)
    H, layers = cfg["hidden_size"], cfg["num_layers"]
    D = 2 if cfg["bidirectional"] else 1

    def to_time_major(a):  # fixture layout -> (L, N, F)
        a = a[:, None] if meta["unbatched"] else a
        return a.transpose(1, 0, 2) if cfg["batch_first"] else a

    def from_time_major(a, like):
        a = a.transpose(1, 0, 2) if cfg["batch_first"] else a
        return a.reshape(like.shape)

    x = to_time_major(fx["x"])
    L, N, _ = x.shape
    states = {k: None if fx[k] is None else fx[k].reshape(D * layers, N, H) for k in ("h0", "c0")}
    g = {"output": to_time_major(fx["g"]["output"])}
    g.update({k: fx["g"][k].reshape(D * layers, N, H) for k in ("h_n", "c_n") if k in fx["g"]})
    if fx["lengths"] is None:
        groups = [(slice(0, N), L)]  # the whole batch in one call
    else:
        groups = [(slice(b, b + 1), int(n)) for b, n in enumerate(fx["lengths"])]

    results = {k: np.zeros((D * layers, N, H)) for k in g if k != "output"}
    caches, layer_in = {}, x
    for layer in range(layers):
        layer_out = np.zeros((L, N, D * H), dtype=x.dtype)
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            params = {n: fx["params"][n + sfx] for n in PARAM_NAMES if n + sfx in fx["params"]}
            k = layer * D + d
            for rows, n in groups:
                seq = layer_in[:n, rows][::-1] if d else layer_in[:n, rows]
                init = {s: None if v is None else v[k, rows] for s, v in states.items()}
                res, caches[layer, d, rows.start] = forward(kind, seq, init["h0"], init["c0"], params)
                layer_out[:n, rows, d * H:(d + 1) * H] = res["output"][::-1] if d else res["output"]
                for key in results:
                    results[key][k, rows] = res[key]
        layer_in = layer_out
    results["output"] = layer_in

    grads = {"h0": np.zeros((D * layers, N, H)), "c0": np.zeros((D * layers, N, H))}
    d_layer_out = g["output"]
    for layer in reversed(range(layers)):
        d_layer_in = np.zeros((L, N, x.shape[2] if layer == 0 else D * H))
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            k = layer * D + d
            for rows, n in groups:
                d_out = d_layer_out[:n, rows, d * H:(d + 1) * H]
                upstream = {"output": d_out[::-1] if d else d_out}
                upstream.update({key: g[key][k, rows] for key in ("h_n", "c_n") if key in g})
                got = backward(kind, upstream, caches[layer, d, rows.start])
                d_layer_in[:n, rows] += got["x"][::-1] if d else got["x"]
                for name in PARAM_NAMES:
                    if got[name] is not None:
                        grads[name + sfx] = grads.get(name + sfx, 0) + got[name]
                grads["h0"][k, rows] = got["h0"]
                if "c0" in got:
                    grads["c0"][k, rows] = got["c0"]
        d_layer_out = d_layer_in
    grads["x"] = d_layer_out

    results["output"] = from_time_major(results["output"], fx["out"]["output"])
    grads["x"] = from_time_major(grads["x"], fx["x"])
    return results, grads


@pytest.mark.parametrize("name", [n for n in fixture_names("layer_") if "_proj" not in n])  # no projection here
def test_composed_layer_matches_torch_fixture(name):
    # Checks the fixtures' documented semantics (stacking, reverse direction,
    # batch_first, lengths, unbatched) against the analytic pieces.
    fx = load_fixture(name)
    tol = _tolerance(fx)
    results, grads = _stacked_layer_from_analytic(fx)
    for key, expected in fx["out"].items():
        np.testing.assert_allclose(results[key].reshape(expected.shape), expected, **tol, err_msg=key)
    assert set(fx["grad"]) <= set(grads)
    for key, expected in fx["grad"].items():
        np.testing.assert_allclose(grads[key].reshape(expected.shape), expected, **tol, err_msg=key)


# ---------------------------------------------------------------------------
# dtype, stability, validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(kind, dtype):
    arrays, params, upstream = make_problem(kind, T=3, N=2, dtype=dtype)
    results, cache = forward(kind, arrays["x"], arrays["h0"], arrays["c0"], params)
    got = backward(kind, upstream, cache)
    for key, value in {**results, **got}.items():
        assert value.dtype == dtype, key
    # zero initial states are created in the same dtype
    results, cache = forward(kind, arrays["x"], None, None, params)
    got = backward(kind, {"output": None, "h_n": upstream["h_n"]}, cache)
    for key, value in {**results, **got}.items():
        assert value.dtype == dtype, key


def test_sigmoid_is_stable_at_large_inputs():
    with np.errstate(all="raise"):
        for dtype in (np.float32, np.float64):
            s = analytic._sigmoid(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype))
            assert s.dtype == dtype
            np.testing.assert_allclose(s, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-15)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_saturated_gates_raise_no_warnings(kind):
    arrays, params, upstream = make_problem(kind, T=4, N=2)
    arrays["x"] = arrays["x"] * 1e4  # pre-activations around +-1e4
    runs = {}
    with np.errstate(all="raise"):
        for dtype in (np.float32, np.float64):
            cast = {k: v.astype(dtype) for k, v in {**arrays, **params}.items()}
            results, cache = forward(kind, cast["x"], cast["h0"], cast["c0"],
                                     {n: cast[n] for n in PARAM_NAMES})
            got = backward(kind, {k: v.astype(dtype) for k, v in upstream.items()}, cache)
            runs[dtype] = {**results, **got}
    for key, value in runs[np.float64].items():
        assert np.all(np.isfinite(value)), key
        # float32 saturates to the same values as float64 (no overflow, no NaN)
        np.testing.assert_allclose(runs[np.float32][key], value, rtol=1e-3, atol=1e-3, err_msg=key)
    assert np.all(np.abs(runs[np.float64]["output"]) <= 1.0)


def _valid(kind="lstm", T=2, N=3, I=4, H=5):
    G = GATES[kind]
    return {"x": np.zeros((T, N, I)), "h0": np.zeros((N, H)), "c0": np.zeros((N, H)),
            "weight_ih": np.zeros((G * H, I)), "weight_hh": np.zeros((G * H, H)),
            "bias_ih": np.zeros(G * H), "bias_hh": np.zeros(G * H)}


def _call_forward(kind, a, **kw):
    p = [a[n] for n in PARAM_NAMES]
    if kind == "lstm":
        return analytic.lstm_forward(a["x"], a["h0"], a["c0"], *p)
    if kind == "gru":
        return analytic.gru_forward(a["x"], a["h0"], *p)
    return analytic.rnn_forward(a["x"], a["h0"], *p, **kw)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("name, bad_shape, pattern", [
    ("x", (3, 4), r"x: expected shape \(T, N, I\).*got \(3, 4\)"),
    ("weight_hh", (7, 5), r"weight_hh: expected shape .*H, H\).*got \(7, 5\)"),
    ("weight_ih", "I+1", r"weight_ih: expected shape .*got \(\d+, 5\)"),
    ("bias_ih", (2,), r"bias_ih: expected shape .*got \(2,\)"),
    ("bias_hh", (2, 1), r"bias_hh: expected shape .*got \(2, 1\)"),
    ("h0", (2, 5), r"h0: expected shape \(3, 5\) = \(N, H\), got \(2, 5\)"),
])
def test_forward_shape_errors(kind, name, bad_shape, pattern):
    a = _valid(kind)
    if bad_shape == "I+1":
        bad_shape = (a["weight_ih"].shape[0], a["weight_ih"].shape[1] + 1)
    a[name] = np.zeros(bad_shape)
    with pytest.raises(ValueError, match=pattern):
        _call_forward(kind, a)


def test_lstm_c0_shape_error():
    a = _valid("lstm")
    a["c0"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"c0: expected shape \(3, 5\) = \(N, H\), got \(3, 4\)"):
        _call_forward("lstm", a)


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match=r"nonlinearity: expected 'tanh' or 'relu', got 'sigmoid'"):
        _call_forward("rnn", _valid("rnn"), nonlinearity="sigmoid")


@pytest.mark.parametrize("kind, which", [
    ("rnn", "d_out"), ("rnn", "d_h_n"), ("gru", "d_out"), ("gru", "d_h_n"),
    ("lstm", "d_out"), ("lstm", "d_h_n"), ("lstm", "d_c_n"),
])
def test_backward_shape_errors(kind, which):
    a = _valid(kind)
    cache = _call_forward(kind, a)[-1]
    upstream = {"d_out": None, "d_h_n": None, "d_c_n": None}
    upstream[which] = np.zeros((9, 9))
    with pytest.raises(ValueError, match=rf"{which}: expected shape .*got \(9, 9\)"):
        if kind == "lstm":
            analytic.lstm_backward(upstream["d_out"], upstream["d_h_n"], upstream["d_c_n"], cache)
        else:
            getattr(analytic, f"{kind}_backward")(upstream["d_out"], upstream["d_h_n"], cache)


def test_backward_rejects_cache_of_other_kind():
    cache = _call_forward("gru", _valid("gru"))[-1]
    with pytest.raises(ValueError, match=r"cache: expected the cache returned by lstm_forward, got one from 'gru'"):
        analytic.lstm_backward(None, None, None, cache)
