"""`tinygrad-rnn export` on the checkpoint `tinygrad-rnn train` writes, run in ONNX Runtime.

Needs the ``onnx`` extra (onnx, onnxruntime); skipped only when those are not installed.
"""
import json
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import cli, io
from tinygrad_rnn.data import CharTokenizer
from tinygrad_rnn.models import CharLM

try:
    import onnx
    import onnxruntime as ort
    HAVE_ONNX = True
except ImportError:  # pragma: no cover - CI installs the extra
    HAVE_ONNX = False

needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx extra (onnx, onnxruntime) is not installed")
PREFIXES = ["", "a", "mar", "jo", "elizabet", "qqz"]


def softmax(logits):
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


CACHE = {}


def train_checkpoint(kind, tmp_path_factory):
    """A checkpoint written by `tinygrad-rnn train` (the names default, or a 2-layer GRU on text),
    with the model and tokenizer loaded from it; trained once per kind."""
    if kind in CACHE:
        return CACHE[kind]
    tmp = tmp_path_factory.mktemp(kind)
    ckpt = tmp / "model.safetensors"
    argv = ["train", "--steps", "30", "--quiet", "--n", "0", "--out", str(ckpt)]
    if kind == "text-gru2":
        text = tmp / "text.txt"
        text.write_text("the quick brown fox jumps over the lazy dog.\n" * 20)
        argv += ["--data", str(text), "--cell", "gru", "--layers", "2", "--hidden", "24", "--seq-len", "16"]
    assert cli.main(argv) == 0
    meta = io.read(ckpt).metadata
    model = CharLM(**{k: v for k, v in meta["config"].items() if k != "model"})
    io.load(ckpt, model=model)
    CACHE[kind] = ckpt, model.eval(), CharTokenizer.from_dict(meta["tokenizer"])
    return CACHE[kind]


@pytest.fixture(params=["names-lstm", "text-gru2"])
def trained(request, tmp_path_factory):
    return train_checkpoint(request.param, tmp_path_factory)


def our_distribution(model, ids):
    with tg.no_grad():
        logits, _ = model(ids)
    return softmax(logits.data[:, -1].astype(np.float64))


def prefix_ids(tokenizer, prefix):
    chars = [c for c in prefix if c in tokenizer.vocab]
    return np.concatenate([[tokenizer.eos_id], tokenizer.encode("".join(chars))]).astype(np.int64)[None, :]


@needs_onnx
def test_export_gives_the_same_next_character_distribution(trained, tmp_path, capsys):
    ckpt, model, tokenizer = trained
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(ckpt), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert CharTokenizer.from_dict(json.loads(meta["tokenizer"])).vocab == tokenizer.vocab
    assert json.loads(meta["vocab"]) == tokenizer.vocab and meta["mode"] in ("names", "text")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for prefix in PREFIXES:
        ids = prefix_ids(tokenizer, prefix)
        logits = session.run(["logits"], {"input_ids": ids})[0]
        got = softmax(logits[:, -1].astype(np.float64))
        np.testing.assert_allclose(got, our_distribution(model, ids), rtol=0, atol=1e-5, err_msg=prefix)
        assert abs(got.sum() - 1) < 1e-6 and got.max() < 1  # a real distribution, not one-hot
    # a batch of equal-length prefixes at once
    batch = np.concatenate([prefix_ids(tokenizer, p) for p in ("ann", "bob", "eve")])
    logits = session.run(["logits"], {"input_ids": batch})[0]
    np.testing.assert_allclose(softmax(logits[:, -1].astype(np.float64)), our_distribution(model, batch), atol=1e-5)


@needs_onnx
def test_export_with_state_feeds_one_character_at_a_time(trained, tmp_path):
    ckpt, model, tokenizer = trained
    out = tmp_path / "stateful.onnx"
    assert cli.main(["export", str(ckpt), "-o", str(out), "--state"]) == 0
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    state_names = [i.name for i in session.get_inputs()][1:]
    outputs = [o.name for o in session.get_outputs()]
    assert state_names == (["h_0", "c_0"] if model.config["cell"] == "lstm" else ["h_0"])
    ids = prefix_ids(tokenizer, "marie")
    shape = (model.config["layers"], 1, model.config["hidden"])
    state = [np.zeros(shape, np.float32) for _ in state_names]
    for t in range(ids.shape[1]):
        logits, *state = session.run(outputs, {"input_ids": ids[:, t:t + 1], **dict(zip(state_names, state))})
    got = softmax(logits[:, -1].astype(np.float64))
    np.testing.assert_allclose(got, our_distribution(model, ids), atol=1e-5)


def test_export_refuses_a_foreign_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "linear.safetensors"
    tg.save(ckpt, tg.nn.Linear(2, 3))
    out = tmp_path / "x.onnx"
    assert cli.main(["export", str(ckpt), "-o", str(out)]) == 1
    assert "not a CharLM checkpoint" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "missing.safetensors"), "-o", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_export_without_onnx_says_how_to_install(trained, tmp_path, monkeypatch, capsys):
    ckpt, _, _ = trained
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    assert cli.main(["export", str(ckpt), "-o", str(tmp_path / "x.onnx")]) == 1
    assert 'pip install "tinygrad_rnn[onnx]"' in capsys.readouterr().err


@needs_onnx
def test_readme_onnx_snippet(tmp_path_factory, tmp_path, monkeypatch):
    """The export how-to's command and ONNX Runtime lines, run as written on a names model."""
    import re
    from pathlib import Path

    ckpt, model, tokenizer = train_checkpoint("names-lstm", tmp_path_factory)
    section = (Path(__file__).resolve().parent.parent / "docs" / "how-to" / "export-onnx.md").read_text()
    command = re.search(r"^(tinygrad-rnn export [^\n#]*)", section, re.MULTILINE).group(1).split()
    snippet = re.search(r"```python\n(import json[^`]*?InferenceSession.*?)```", section, re.DOTALL).group(1)
    assert len(snippet.strip().splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(Path(ckpt).read_bytes())
    assert cli.main(command[1:]) == 0
    scope = {}
    exec(snippet, scope)
    ids = np.array([[tokenizer.eos_id, tokenizer.encode("a")[0]]])
    np.testing.assert_allclose(scope["p"], our_distribution(model, ids)[0], atol=1e-5)
