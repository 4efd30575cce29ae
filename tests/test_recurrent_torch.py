"""The composed cells and layers against PyTorch reference fixtures (outputs, states, gradients).

The fixtures were produced by scripts/make_torch_fixtures.py with torch; no torch is needed here.
"""
import numpy as np
import pytest

from fixture_utils import fixture_names, load_fixture
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.tensor import run_backward

LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
CELLS = {"RNNCell": nn.RNNCell, "LSTMCell": nn.LSTMCell, "GRUCell": nn.GRUCell}


def _tolerance(fx):
    return dict(rtol=1e-10, atol=1e-10) if fx["meta"]["dtype"] == "float64" else dict(rtol=1e-5, atol=1e-5)


def _build(fx, registry, **extra):
    config = dict(fx["config"])
    module = registry[config.pop("kind")](**config, **extra)
    dtype = np.dtype(fx["meta"]["dtype"])
    module.to(dtype)
    assert [n for n, _ in module.named_parameters()] == list(fx["params"]), "registration order differs from torch"
    module.load_state_dict(fx["params"])
    return module


def _backward(fx, results):
    roots, grads = [], []
    for key, value in results.items():
        roots.append(value)
        grads.append(fx["g"][key])
    run_backward(roots, grads, retain_graph=False)


@pytest.mark.parametrize("name", fixture_names("layer_"))
def test_layer_matches_torch(name):
    fx = load_fixture(name)
    layer = _build(fx, LAYERS)
    tol = _tolerance(fx)
    x = Tensor(fx["x"], requires_grad=True)
    h0 = Tensor(fx["h0"], requires_grad=True) if fx["h0"] is not None else None
    c0 = Tensor(fx["c0"], requires_grad=True) if fx["c0"] is not None else None
    lstm = fx["config"]["kind"] == "LSTM"
    hx = None
    if lstm and h0 is not None:
        hx = (h0, c0)
    elif not lstm:
        hx = h0
    output, state = layer(x, hx, lengths=fx["lengths"])
    results = {"output": output}
    if lstm:
        results["h_n"], results["c_n"] = state
    else:
        results["h_n"] = state
    for key, value in results.items():
        np.testing.assert_allclose(value.data, fx["out"][key], **tol, err_msg=f"{name}: {key}")
        assert value.dtype == fx["x"].dtype
    _backward(fx, results)
    np.testing.assert_allclose(x.grad, fx["grad"]["x"], **tol, err_msg=f"{name}: dL/dx")
    if h0 is not None:
        np.testing.assert_allclose(h0.grad, fx["grad"]["h0"], **tol, err_msg=f"{name}: dL/dh0")
    if c0 is not None:
        np.testing.assert_allclose(c0.grad, fx["grad"]["c0"], **tol, err_msg=f"{name}: dL/dc0")
    for pname, param in layer.named_parameters():
        np.testing.assert_allclose(param.grad, fx["grad"][pname], **tol, err_msg=f"{name}: dL/d{pname}")


@pytest.mark.parametrize("name", fixture_names("cell_"))
def test_cell_matches_torch(name):
    fx = load_fixture(name)
    cell = _build(fx, CELLS)
    tol = _tolerance(fx)
    x = Tensor(fx["x"], requires_grad=True)
    h0 = Tensor(fx["h0"], requires_grad=True) if fx["h0"] is not None else None
    c0 = Tensor(fx["c0"], requires_grad=True) if fx["c0"] is not None else None
    if fx["config"]["kind"] == "LSTMCell":
        h, c = cell(x, (h0, c0) if h0 is not None else None)
        results = {"h_n": h, "c_n": c}
    else:
        results = {"h_n": cell(x, h0)}
    for key, value in results.items():
        np.testing.assert_allclose(value.data, fx["out"][key], **tol, err_msg=f"{name}: {key}")
    _backward(fx, results)
    np.testing.assert_allclose(x.grad, fx["grad"]["x"], **tol)
    if h0 is not None:
        np.testing.assert_allclose(h0.grad, fx["grad"]["h0"], **tol)
    if c0 is not None:
        np.testing.assert_allclose(c0.grad, fx["grad"]["c0"], **tol)
    for pname, param in cell.named_parameters():
        np.testing.assert_allclose(param.grad, fx["grad"][pname], **tol, err_msg=f"{name}: dL/d{pname}")
