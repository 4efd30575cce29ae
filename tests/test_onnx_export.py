"""ONNX export, run in ONNX Runtime and compared with this library's own forward pass.

Needs the ``onnx`` extra (onnx, onnxruntime); skipped only when those are not installed.
Every exported file goes through ``onnx.checker.check_model``.
"""
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
import tinygrad_rnn.onnx as tonnx
from tinygrad_rnn import nn
from tinygrad_rnn.models import CharLM

try:
    import onnx
    import onnxruntime as ort
    HAVE_ONNX = True
except ImportError:  # pragma: no cover - CI installs the extra
    HAVE_ONNX = False

needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx extra (onnx, onnxruntime) is not installed")
TOL = dict(rtol=1e-5, atol=1e-5)
# (batch, length) pairs every exported model is run at: the export used (2, 5).
SIZES = [(1, 1), (3, 7), (5, 12)]
KINDS = {"rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
         "rnn_sigmoid": (nn.RNN, {"nonlinearity": "sigmoid"}),
         "lstm": (nn.LSTM, {}), "gru": (nn.GRU, {})}
CONFIGS = {
    "base": {},
    "layers2_bidir": dict(num_layers=2, bidirectional=True),
    "batch_first": dict(batch_first=True),
    "nobias": dict(bias=False, num_layers=2),
    "state": dict(num_layers=2, bidirectional=True),
    "lengths": dict(num_layers=2, bidirectional=True, batch_first=True),
    "lengths_state": dict(bidirectional=True),
    "unbatched": dict(num_layers=2, bidirectional=True),
    "dropout": dict(num_layers=3, dropout=0.5),
}
I, H = 4, 6


def run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_file(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model


def flat(value):
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in flat(v)]
    return [value.data if isinstance(value, tg.Tensor) else value]


def layer_inputs(layer, config, batch, length, rng):
    """The layer's positional arguments (x, hx, lengths) and the ONNX feeds for them."""
    count = layer.num_layers * layer.num_directions
    unbatched = config == "unbatched"
    shape = (length, I) if unbatched else (batch, length, I) if layer.batch_first else (length, batch, I)
    x = rng.standard_normal(shape).astype(np.float32)
    feeds = {"x": x}
    hx = None
    if config in ("state", "lengths_state"):
        states = [rng.standard_normal((count, batch, H)).astype(np.float32)
                  for _ in range(2 if isinstance(layer, nn.LSTM) else 1)]
        hx = tuple(states) if isinstance(layer, nn.LSTM) else states[0]
        feeds.update(zip(["h_0", "c_0"], states))
    lengths = None
    if config.startswith("lengths"):
        lengths = rng.integers(1, length + 1, size=batch).astype(np.int64)
        lengths[0] = length  # one full-length sequence, the others shorter or equal
        feeds["lengths"] = lengths
    return (x, hx, lengths), feeds


@needs_onnx
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_recurrent_layer_matches_onnxruntime(kind, config, tmp_path):
    cls, kwargs = KINDS[kind]
    tg.manual_seed(7)
    layer = cls(I, H, **kwargs, **CONFIGS[config])
    rng = np.random.default_rng(0)
    args, feeds = layer_inputs(layer, config, 2, 5, rng)
    is_lstm = isinstance(layer, nn.LSTM)
    outputs = ["output", "h_n", "c_n"] if is_lstm else ["output", "h_n"]
    path = tmp_path / f"{kind}_{config}.onnx"
    tonnx.export(layer, args, path, input_names=list(feeds), output_names=outputs)
    model = check_file(path)
    assert [n.op_type for n in model.graph.node].count(cls.__name__) == layer.num_layers  # one node per layer
    assert layer.training  # training flags restored after the eval-mode trace

    layer.eval()
    for batch, length in SIZES:
        args, feeds = layer_inputs(layer, config, batch, length, rng)
        got = run_onnx(path, feeds)
        with tg.no_grad():
            expected = flat(layer(*args))
        assert len(got) == len(expected)
        for name, a, b in zip(outputs, got, expected):
            assert a.shape == b.shape, (name, a.shape, b.shape)
            assert np.abs(b).max() > 1e-3, name  # not a trivially zero comparison
            np.testing.assert_allclose(a, b, **TOL, err_msg=f"{name} at batch {batch}, length {length}")


@needs_onnx
def test_lengths_pad_is_ignored_by_reverse_direction(tmp_path):
    """With lengths, the reverse direction starts at the last valid step: changing the padding
    changes nothing in ONNX Runtime either."""
    tg.manual_seed(1)
    gru = nn.GRU(I, H, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((6, 2, I)).astype(np.float32)
    lengths = np.array([6, 3])
    path = tmp_path / "gru.onnx"
    tonnx.export(gru, (x, None, lengths), path, input_names=["x", "lengths"])
    noisy = x.copy()
    noisy[3:, 1] = 100.0
    a = run_onnx(path, {"x": x, "lengths": lengths})
    b = run_onnx(path, {"x": noisy, "lengths": lengths})
    np.testing.assert_array_equal(a[1], b[1])
    assert np.all(a[0][3:, 1] == 0)  # padded outputs are 0
    np.testing.assert_allclose(a[0], gru.eval()(x, None, lengths)[0].data, **TOL)


def _charlm_feeds(model, ids, state):
    feeds = {"input_ids": ids}
    if state is not None:
        feeds.update(zip(["h_0", "c_0"], state if isinstance(state, tuple) else (state,)))
    return feeds


@needs_onnx
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("with_state", [False, True])
def test_char_model_matches_onnxruntime(cell, with_state, tmp_path):
    tg.manual_seed(3)
    model = CharLM(11, embed=5, hidden=7, layers=2, cell=cell, dropout=0.3)
    rng = np.random.default_rng(1)

    def state_for(batch):
        if not with_state:
            return None
        shape = (2, batch, 7)
        s = [rng.standard_normal(shape).astype(np.float32) for _ in range(2 if cell == "lstm" else 1)]
        return tuple(s) if cell == "lstm" else s[0]

    ids = rng.integers(0, 11, size=(2, 5))
    names = ["input_ids"] + (["h_0", "c_0"][:2 if cell == "lstm" else 1] if with_state else [])
    outputs = ["logits", "h_n"] + (["c_n"] if cell == "lstm" else [])
    path = tmp_path / "charlm.onnx"
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"},
            **{name: {1: "batch"} for name in names[1:] + outputs[1:]}}
    tonnx.export(model, (ids, state_for(2)), path, input_names=names, output_names=outputs, dynamic_axes=axes)
    graph = check_file(path).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]
    model.eval()
    for batch, length in SIZES:
        ids = rng.integers(0, 11, size=(batch, length))
        state = state_for(batch)
        got = run_onnx(path, _charlm_feeds(model, ids, state))
        with tg.no_grad():
            expected = flat(model(ids, state))
        for name, a, b in zip(outputs, got, expected):
            np.testing.assert_allclose(a, b, **TOL, err_msg=f"{name} at batch {batch}, length {length}")


class Classifier(nn.Module):
    """Embedding -> GRU with lengths -> last state -> MLP with several activations."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(9, 4, padding_idx=0)
        self.rnn = nn.GRU(4, 6, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5))
        self.out = nn.Linear(8, 3)
        self.scale = nn.Parameter(np.array([0.5, 2.0, -1.0], dtype=np.float32))

    def forward(self, ids, lengths):
        _, h_n = self.rnn(self.embed(ids), None, lengths)
        hidden = self.mlp(h_n[-1]).tanh()
        z = self.out(hidden.relu() * 2.0 - 0.1) * self.scale + 1.0
        return z.sigmoid(), z.log_softmax(-1), (z / 3.0).softmax(axis=-1), -z[:, 1:]


@needs_onnx
def test_composed_model_with_activations(tmp_path):
    tg.manual_seed(5)
    model = Classifier()
    rng = np.random.default_rng(2)
    path = tmp_path / "clf.onnx"
    ids = rng.integers(1, 9, size=(2, 6))
    tonnx.export(model, (ids, np.array([6, 2])), path, input_names=["ids", "lengths"])
    check_file(path)
    model.eval()
    for batch, length in SIZES:
        ids = rng.integers(0, 9, size=(batch, length))
        lengths = rng.integers(1, length + 1, size=batch)
        got = run_onnx(path, {"ids": ids, "lengths": lengths})
        with tg.no_grad():
            expected = flat(model(ids, lengths))
        assert len(got) == 4
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, **TOL)


@needs_onnx
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_sequential_linear_gemm_and_matmul_paths(shape, tmp_path):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.2), nn.Linear(5, 2, bias=False))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    path = tmp_path / "seq.onnx"
    tonnx.export(model, x, path)
    check_file(path)
    bigger = np.random.default_rng(1).standard_normal((7,) + shape[1:-1] + (4,)).astype(np.float32)
    (got,) = run_onnx(path, {"input_0": bigger})
    np.testing.assert_allclose(got, model.eval()(bigger).data, **TOL)


@needs_onnx
def test_initializers_keep_state_dict_names(tmp_path):
    tg.manual_seed(0)
    model = CharLM(6, embed=3, hidden=4)
    proto = tonnx.export(model, np.zeros((1, 2), dtype=np.int64), tmp_path / "m.onnx",
                           metadata={"vocab": ["a", "b"], "note": "x"})
    names = {t.name for t in proto.graph.initializer}
    assert {"embedding.weight", "head.weight", "head.bias", "rnn.W_l0", "rnn.R_l0", "rnn.B_l0"} <= names
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta == {"vocab": '["a", "b"]', "note": "x"}


@needs_onnx
def test_static_axes_when_dynamic_axes_is_empty(tmp_path):
    lstm = nn.LSTM(I, H)
    path = tmp_path / "static.onnx"
    tonnx.export(lstm, np.zeros((5, 2, I), np.float32), path, dynamic_axes={})
    graph = check_file(path).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [5, 2, I]
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        run_onnx(path, {"input_0": np.zeros((5, 3, I), np.float32)})


# ----- clear errors -----------------------------------------------------------------------------
class WithCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)

    def forward(self, x):
        return self.cell(x)[0]


class WithStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x):
        return tg.functional.stack([self.lin(x), self.lin(x)], axis=0)


class WithSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x):
        return self.lin(x).logsumexp()


class WithBranch(nn.Module):
    def forward(self, x):
        return x if x else -x


@needs_onnx
@pytest.mark.parametrize("model, pattern", [
    (WithCell(), "LSTMCell 'cell' is not supported"),
    (WithStack(), "WithStack .*stack"),
    (WithSum(), "Tensor.logsumexp is not supported"),
    (WithBranch(), "branches on a tensor's value"),
    (nn.RNN(3, 4, nonlinearity=lambda t: t.tanh() * 2), "callable nonlinearity"),
    (nn.Recurrent(nn.GRUCell(3, 4)), "Recurrent '.*' is not supported"),
])
def test_unsupported_layer_or_op_is_named(model, pattern, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(tonnx.OnnxExportError, match=pattern):
        tonnx.export(model, np.zeros((2, 3), np.float32), path)
    assert path.read_bytes() == b"previous"  # a failed export leaves the file alone
    assert "forward" not in vars(model)  # the trace's patches are removed


@needs_onnx
def test_bad_arguments(tmp_path):
    lstm = nn.LSTM(I, H)
    x = np.zeros((3, 2, I), np.float32)
    with pytest.raises(TypeError, match="example_inputs"):
        tonnx.export(lstm, ("text",), tmp_path / "a.onnx")
    with pytest.raises(ValueError, match="input_names must be 1"):
        tonnx.export(lstm, x, tmp_path / "a.onnx", input_names=["x", "y"])
    with pytest.raises(ValueError, match="output_names must be 3"):
        tonnx.export(lstm, x, tmp_path / "a.onnx", output_names=["y"])
    with pytest.raises(ValueError, match=r"dynamic_axes names \['nope'\]"):
        tonnx.export(lstm, x, tmp_path / "a.onnx", dynamic_axes={"nope": [0]})
    with pytest.raises(ValueError, match="axis 3"):
        tonnx.export(lstm, x, tmp_path / "a.onnx", dynamic_axes={"input_0": [3]})
    with pytest.raises(ValueError, match="opset_version"):
        tonnx.export(lstm, x, tmp_path / "a.onnx", opset_version=7)
    with pytest.raises(tonnx.OnnxExportError, match="expects 4 input features"):
        tonnx.export(lstm, np.zeros((3, 2, 5), np.float32), tmp_path / "a.onnx")
    with pytest.raises(tonnx.OnnxExportError, match="dtype float64 differs"):
        tonnx.export(lstm, x.astype(np.float64), tmp_path / "a.onnx")
    with pytest.raises(tonnx.OnnxExportError, match="float32 only"):
        tonnx.export(nn.GRU(I, H).double(), x.astype(np.float64), tmp_path / "a.onnx")
    with pytest.raises(TypeError, match="model must be a tinygrad_rnn Module"):
        tonnx.export(lambda x: x, x, tmp_path / "a.onnx")
    assert not (tmp_path / "a.onnx").exists()


def test_missing_onnx_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "tinygrad_rnn\[onnx\]"'):
        tonnx.export(nn.Linear(2, 2), np.zeros((1, 2), np.float32), None)


def test_traced_values_answer_hasattr():
    """Probing a traced value (as library code does with getattr(x, name, default)) is not an error;
    using a missing Tensor method is, and names it."""
    value = tonnx.Traced(None, "x", (2, 3), np.float32)
    assert not hasattr(value, "numpy") and getattr(value, "grad", None) is None
    with pytest.raises(tonnx.OnnxExportError, match="Tensor.numpy is not supported"):
        value.numpy()
