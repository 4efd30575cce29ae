"""The fused time-step path (impl="fused") against the composed one on identical weights."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.tensor import run_backward

CONFIGS = [
    dict(),
    dict(num_layers=2, bidirectional=True),
    dict(batch_first=True, bias=False),
]


def _run(layer, x, hx, lengths, grads):
    x = tg.Tensor(x, requires_grad=True)
    out, state = layer(x, hx, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    run_backward([out] + states, grads[:1 + len(states)], retain_graph=False)
    return [out.data] + [s.data for s in states] + [x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "RNN-relu"])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_fused_matches_composed(kind, config, dtype, tol, with_lengths):
    rng = np.random.default_rng(3)
    T, N, I, H = 6, 3, 4, 5
    cls = getattr(nn, kind.split("-")[0])
    extra = dict(nonlinearity="relu") if kind == "RNN-relu" else {}
    tg.manual_seed(1)
    composed = cls(I, H, **config, **extra).to(dtype)
    fused = cls(I, H, **config, **extra, impl="fused").to(dtype)
    fused.load_state_dict(composed.state_dict())
    D = 2 if config.get("bidirectional") else 1
    L = config.get("num_layers", 1)
    shape = (N, T, I) if config.get("batch_first") else (T, N, I)
    x = rng.standard_normal(shape).astype(dtype)
    lengths = [6, 2, 4] if with_lengths else None
    out_shape = (N, T, D * H) if config.get("batch_first") else (T, N, D * H)
    grads = [rng.standard_normal(out_shape).astype(dtype)] + \
            [rng.standard_normal((D * L, N, H)).astype(dtype) for _ in range(2)]
    a = _run(composed, x, None, lengths, grads)
    b = _run(fused, x, None, lengths, grads)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype == dtype
        np.testing.assert_allclose(v, u, rtol=tol, atol=tol)


def test_fused_graph_has_one_node_per_step():
    layer = nn.LSTM(2, 3, impl="fused")
    out, _ = layer(tg.Tensor(np.ones((4, 1, 2), dtype=np.float32)))
    ops = [t.op for t in tg.tensor.topological_order([out])]
    assert ops.count("lstm_cell") == 4
    assert "sigmoid" not in ops and "tanh" not in ops


def test_unknown_impl_is_rejected():
    with pytest.raises(ValueError, match="impl must be one of"):
        nn.GRU(2, 3, impl="cuda")
