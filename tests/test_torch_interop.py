"""PyTorch round trip (tinygrad_rnn.torch_interop): ours -> torch -> ours keeps every weight and
every output. Skipped only when torch is not installed (CI installs it)."""
import pickle
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, torch_interop
from tinygrad_rnn.models import CharLM

try:
    import torch
    HAVE_TORCH = True
except ImportError:  # pragma: no cover - CI installs torch
    HAVE_TORCH = False

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")

MODULES = {
    "linear": lambda: nn.Linear(4, 3),
    "linear_nobias": lambda: nn.Linear(4, 3, bias=False),
    "embedding_pad": lambda: nn.Embedding(7, 4, padding_idx=2),
    "dropout": lambda: nn.Dropout(0.3),
    "rnn_relu_bidir": lambda: nn.RNN(4, 5, num_layers=2, nonlinearity="relu", bidirectional=True),
    "rnn_tanh_nobias": lambda: nn.RNN(4, 5, bias=False, batch_first=True),
    "lstm_2l_bidir_bf": lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2),
    "gru_2l": lambda: nn.GRU(4, 5, num_layers=2),
    "rnncell": lambda: nn.RNNCell(4, 5, nonlinearity="relu"),
    "lstmcell": lambda: nn.LSTMCell(4, 5),
    "grucell_nobias": lambda: nn.GRUCell(4, 5, bias=False),
    "sequential": lambda: nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 2)),
    "charlm_lstm": lambda: CharLM(9, embed=4, hidden=5, layers=2, cell="lstm", dropout=0.1),
    "charlm_gru": lambda: CharLM(9, embed=4, hidden=5, cell="gru"),
    "charlm_rnn": lambda: CharLM(9, embed=4, hidden=5, cell="rnn"),
}


def make_inputs(module, rng, dtype):
    """Positional arguments for ``module`` (as NumPy arrays), including initial states."""
    floats = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    if isinstance(module, CharLM):
        ids = rng.integers(0, 9, size=(3, 6))
        layers, hidden = module.config["layers"], module.config["hidden"]
        state = floats(layers, 3, hidden)
        return (ids, (state, floats(layers, 3, hidden)) if module.config["cell"] == "lstm" else state)
    if isinstance(module, nn.Embedding):
        return (rng.integers(0, 7, size=(3, 6)),)
    if isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        x = floats(3, 6, 4) if module.batch_first else floats(6, 3, 4)
        count = module.num_layers * module.num_directions
        h = floats(count, 3, 5)
        return (x, (h, floats(count, 3, 5)) if isinstance(module, nn.LSTM) else h)
    if isinstance(module, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        h = floats(3, 5)
        return (floats(3, 4), (h, floats(3, 5)) if isinstance(module, nn.LSTMCell) else h)
    return (floats(3, 6, 4),)


def to_numpy(value):
    """Flatten nested outputs (ours or torch's) into a list of float64 arrays."""
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in to_numpy(v)]
    if isinstance(value, tg.Tensor):
        return [value.data.astype(np.float64)]
    return [value.detach().numpy().astype(np.float64)]


def run_ours(module, args):
    with tg.no_grad():
        return to_numpy(module(*args))


def run_torch(module, args):
    def convert(a):
        if isinstance(a, tuple):
            return tuple(convert(v) for v in a)
        return torch.from_numpy(a)
    with torch.no_grad():
        return to_numpy(module(*[convert(a) for a in args]))


@needs_torch
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("name", list(MODULES))
def test_round_trip_keeps_weights_and_outputs(name, dtype, tol):
    tg.manual_seed(11)
    ours = MODULES[name]().to(dtype).eval()
    rng = np.random.default_rng(0)
    args = make_inputs(ours, rng, dtype)
    before = run_ours(ours, args)

    theirs = torch_interop.to_torch(ours)
    assert not theirs.training
    assert list(theirs.state_dict()) == list(ours.state_dict())  # same names, same order
    for value in theirs.state_dict().values():
        assert value.dtype == torch.from_numpy(np.zeros(0, dtype)).dtype
    in_torch = run_torch(theirs, args)

    back = torch_interop.from_torch(theirs)
    assert type(back) is type(ours) and not back.training
    for (k, a), (k2, b) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    after = run_ours(back, args)

    assert len(before) == len(in_torch) == len(after) >= 1
    for a, b, c in zip(before, in_torch, after):
        assert np.abs(a).max() > 1e-3  # not a trivially zero comparison
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)  # PyTorch computes what we compute
        np.testing.assert_allclose(c, a, rtol=tol, atol=tol)  # and the round trip changed nothing


@needs_torch
def test_torch_trained_weights_come_back():
    """A module initialised and modified in PyTorch keeps its outputs when moved here and back."""
    torch.manual_seed(0)
    theirs = torch_interop.TorchCharLM(9, embed=4, hidden=5, layers=2, cell="gru")
    with torch.no_grad():
        theirs.rnn.bias_hh_l1.add_(0.5)  # something our initialisation would not produce
    theirs.eval()
    ours = torch_interop.from_torch(theirs)
    assert isinstance(ours, CharLM) and ours.config == theirs.config
    args = make_inputs(ours, np.random.default_rng(1), np.float32)
    for a, b in zip(run_torch(theirs, args), run_ours(ours, args)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    again = torch_interop.to_torch(ours)
    for (k, a), (_, b) in zip(theirs.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


@needs_torch
def test_training_mode_and_pickling():
    ours = CharLM(5, embed=2, hidden=3)
    theirs = torch_interop.to_torch(ours)
    assert theirs.training and theirs.rnn.training
    copy = pickle.loads(pickle.dumps(theirs))
    assert type(copy).__qualname__ == "TorchCharLM"
    assert torch.equal(copy.head.weight, theirs.head.weight)


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x)


@needs_torch
def test_lstm_with_proj_size_round_trip():
    tg.manual_seed(3)
    ours = nn.LSTM(4, 5, num_layers=2, bidirectional=True, proj_size=3).double()
    theirs = torch_interop.to_torch(ours)
    assert theirs.proj_size == 3 and list(theirs.state_dict()) == list(ours.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 2, 4))
    out, (h, c) = ours(tg.Tensor(x))
    t_out, (t_h, t_c) = theirs(torch.from_numpy(x))
    for a, b in ((out, t_out), (h, t_h), (c, t_c)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), atol=1e-12, rtol=0)
    back = torch_interop.from_torch(theirs)
    np.testing.assert_allclose(back(tg.Tensor(x))[0].data, out.data, atol=0, rtol=0)


@needs_torch
def test_unsupported_modules_are_named():
    with pytest.raises(TypeError, match="to_torch: Custom has no PyTorch equivalent"):
        torch_interop.to_torch(Custom())
    with pytest.raises(TypeError, match="to_torch: Custom has no PyTorch equivalent"):
        torch_interop.to_torch(nn.Sequential(nn.Linear(2, 2), Custom()))
    with pytest.raises(TypeError, match="from_torch: Conv1d has no equivalent"):
        torch_interop.from_torch(torch.nn.Conv1d(2, 2, 3))
    with pytest.raises(TypeError, match="expected a tinygrad_rnn Module, got int"):
        torch_interop.to_torch(3)
    with pytest.raises(TypeError, match=r"to_torch: RNN\(nonlinearity='sigmoid'\) has no PyTorch equivalent"):
        torch_interop.to_torch(nn.RNN(2, 3, nonlinearity="sigmoid"))
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got LSTM"):
        torch_interop.from_torch(nn.LSTM(2, 2))


def test_missing_torch_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for call in (lambda: torch_interop.to_torch(nn.Linear(2, 2)), lambda: torch_interop.from_torch(object()),
                 lambda: torch_interop.state_dict_to_torch({})):
        with pytest.raises(ImportError, match=r'pip install "tinygrad_rnn\[torch\]"'):
            call()


@needs_torch
def test_continue_in_pytorch_example_runs_ddp_over_two_processes(tmp_path):
    """examples/continue_in_pytorch.py --quick: trains here, continues with DDP (2 CPU processes,
    gloo), comes back; both losses go down, the replicas agree, PyTorch and this library compute
    the same held-out loss."""
    import os
    import re
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "continue_in_pytorch.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(script), "--quick", "--no-plot", "--out", str(tmp_path / "m.safetensors")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "DistributedDataParallel, 2 CPU processes (gloo)" in out
    assert "replicas identical: True" in out
    losses = {k: (float(a), float(b)) for k, a, b in re.findall(r"loss\[(\w+)\]: first ([\d.]+) final ([\d.]+)", out)}
    assert set(losses) == {"here", "ddp"}
    assert all(final < first for first, final in losses.values()), losses
    ours, theirs = map(float, re.search(r"held-out loss ([\d.]+) nats/char \(PyTorch computes ([\d.]+)", out).groups())
    assert abs(ours - theirs) < 1e-5
    assert len(re.search(r"samples: (.*)", out).group(1).split(", ")) == 10
    ckpt = tg.load(tmp_path / "m.safetensors")
    assert ckpt.metadata["config"]["model"] == "CharLM"
