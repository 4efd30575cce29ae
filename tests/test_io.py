"""Checkpoints: round trip, file format (no pickle), atomic writes under SIGKILL, validation that
leaves the model and optimizer untouched, and an exact training resume in a fresh process."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import safetensors.numpy

import tinygrad_rnn
from tinygrad_rnn import io, random as tr_random
from tinygrad_rnn.data import CharTokenizer
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.nn import GRU, Linear, Module
from tinygrad_rnn.optim import SGD, Adam
from tinygrad_rnn.train import checkpoints  # where save lives: the failure tests patch its os and tempfile


class Net(Module):
    def __init__(self, hidden=6, classes=3):
        super().__init__()
        self.rnn = GRU(2, hidden, batch_first=True)
        self.head = Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)


def trained(steps=3, seed=0, hidden=6):
    tinygrad_rnn.manual_seed(seed)
    model = Net(hidden)
    optimizer = Adam(model.parameters(), lr=0.05, betas=(0.8, 0.99))
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.standard_normal((2, 4, 2)).astype(np.float32)
        y = rng.integers(0, 3, (2, 4))
        optimizer.zero_grad()
        cross_entropy(model(x), y).backward()
        optimizer.step()
    return model, optimizer


def snapshot(model, optimizer=None):
    params = {k: v.copy() for k, v in model.state_dict().items()}
    return params, (optimizer.state_dict() if optimizer is not None else None)


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_same_optimizer_state(a, b):
    assert len(a["param_groups"]) == len(b["param_groups"])
    for ga, gb in zip(a["param_groups"], b["param_groups"]):
        assert ga == gb
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        sa, sb = a["state"][i], b["state"][i]
        assert sa.keys() == sb.keys()
        for k in sa:
            if isinstance(sa[k], np.ndarray):
                assert sa[k].dtype == sb[k].dtype
                np.testing.assert_array_equal(sa[k], sb[k])
            else:
                assert sa[k] == sb[k] and type(sa[k]) is type(sb[k])


# ----- round trip and format ---------------------------------------------------------------------
def test_round_trip_model_optimizer_and_metadata(tmp_path):
    model, optimizer = trained()
    tokenizer = CharTokenizer(specials=("<eos>",)).fit(["abc", "bd"])
    rng_state = tinygrad_rnn.get_rng_state()
    path = tmp_path / "ck.safetensors"
    io.save(path, model, optimizer, config={"hidden": 6, "classes": 3}, tokenizer=tokenizer, step=3,
            epoch=1, extra={"history": {"loss": [np.float32(1.5), 1.25]}, "best": 0.5})

    fresh_model = Net()
    fresh_optimizer = Adam(fresh_model.parameters(), lr=1.0)
    checkpoint = io.load(path, fresh_model, fresh_optimizer)
    assert_same_params(fresh_model.state_dict(), model.state_dict())
    assert_same_optimizer_state(fresh_optimizer.state_dict(), optimizer.state_dict())
    assert fresh_optimizer.param_groups[0]["betas"] == (0.8, 0.99)

    meta = checkpoint.metadata
    assert meta["format"] == "tinygrad_rnn.checkpoint" and meta["format_version"] == 1
    assert meta["library_version"] == tinygrad_rnn.__version__
    assert meta["model_class"] == "Net"
    assert checkpoint.config == {"hidden": 6, "classes": 3}
    assert (checkpoint.step, checkpoint.epoch) == (3, 1)
    assert checkpoint.extra == {"history": {"loss": [1.5, 1.25]}, "best": 0.5}
    np.testing.assert_array_equal(CharTokenizer.from_dict(checkpoint.tokenizer).encode("dab"),
                                  tokenizer.encode("dab"))
    assert meta["rng_state"] == rng_state
    assert_same_params(checkpoint.state_dict, model.state_dict())
    checkpoint.state_dict["head.bias"][0] += 1.0  # the loaded arrays are writable copies


def test_load_without_model_reads_only(tmp_path):
    model, _ = trained(steps=1)
    io.save(tmp_path / "m.safetensors", model)
    checkpoint = io.load(tmp_path / "m.safetensors")
    assert checkpoint.optimizer_state is None and checkpoint.step is None
    assert_same_params(checkpoint.state_dict, model.state_dict())


def test_file_is_plain_safetensors_not_pickle(tmp_path):
    model, optimizer = trained(steps=2)
    path = tmp_path / "ck.safetensors"
    io.save(path, model, optimizer, config={"a": 1})
    blob = path.read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + length])  # an 8-byte length, then a JSON header
    for name, entry in header.items():
        if name != "__metadata__":
            assert set(entry) == {"dtype", "shape", "data_offsets"}
    assert json.loads(header["__metadata__"]["format"]) == "tinygrad_rnn.checkpoint"
    sizes = [h["data_offsets"][1] - h["data_offsets"][0] for k, h in header.items() if k != "__metadata__"]
    assert 8 + length + sum(sizes) == len(blob)  # nothing but header and raw tensor bytes
    # Any safetensors reader sees the weights under their state_dict names.
    plain = safetensors.numpy.load_file(str(path))
    assert_same_params({k: v for k, v in plain.items() if not k.startswith("optim/")}, model.state_dict())
    assert "optim/state/0/exp_avg" in plain


def test_restore_rng_is_opt_in(tmp_path):
    tinygrad_rnn.manual_seed(123)
    model = Net()
    saved_state = tinygrad_rnn.get_rng_state()
    io.save(tmp_path / "ck.safetensors", model)
    tinygrad_rnn.manual_seed(7)
    io.load(tmp_path / "ck.safetensors", model)
    assert tinygrad_rnn.get_rng_state() != saved_state
    io.load(tmp_path / "ck.safetensors", model, restore_rng=True)
    assert tinygrad_rnn.get_rng_state() == saved_state


def test_save_argument_errors_write_nothing(tmp_path):
    model, optimizer = trained(steps=1)
    path = tmp_path / "ck.safetensors"
    with pytest.raises(TypeError, match="extra must be JSON-serialisable"):
        io.save(path, model, extra={"f": object()})
    with pytest.raises(TypeError, match="tokenizer must have a to_dict"):
        io.save(path, model, tokenizer="abc")
    with pytest.raises(TypeError, match="step must be an int"):
        io.save(path, model, step=1.5)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_checkpoint_and_leaves_no_temp(tmp_path, monkeypatch):
    model, optimizer = trained(steps=1)
    path = tmp_path / "ck.safetensors"
    io.save(path, model, step=1)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(checkpoints.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        io.save(path, model, step=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    model, _ = trained(steps=1)
    dead = tmp_path / ".ck.safetensors.4194400.abc.tmp"  # above Linux's PID_MAX_LIMIT: never alive
    alive = tmp_path / f".ck.safetensors.{os.getpid()}.abc.tmp"  # a save in progress: keep
    other = tmp_path / ".other.safetensors.4194400.abc.tmp"  # another target's: keep
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    io.save(tmp_path / "ck.safetensors", model)
    assert not dead.exists() and alive.exists() and other.exists()


# ----- atomicity under SIGKILL -------------------------------------------------------------------
SAVER = textwrap.dedent("""
    import sys
    from tinygrad_rnn import io
    from tinygrad_rnn.nn import Linear
    model = Linear(1024, 2048)  # an 8 MB checkpoint: each write takes a while
    step = 0
    while True:
        step += 1
        for p in model.parameters():
            p.data[...] = step
        print("saving", step, flush=True)
        io.save(sys.argv[1], model, step=step)
        print("saved", step, flush=True)
""")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_checkpoint_survives_sigkill_mid_save(tmp_path):
    """Kill the writer at a random moment inside a save (timed from the previous save's duration);
    the file must then hold one complete earlier save. A plain ``open(path, "wb").write`` fails this
    most of the time."""
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    path = tmp_path / "ck.safetensors"
    rng = np.random.default_rng(0)
    for _ in range(6):
        child = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                                 text=True)
        try:
            saved, started, duration = 0, 0.0, 0.0
            while True:
                word, step = child.stdout.readline().split()
                if word == "saved":
                    saved, duration = int(step), time.perf_counter() - started
                elif saved >= 2:  # "saving" the third (or a later) time: strike inside this save
                    time.sleep(float(rng.uniform(0.3, 1.0)) * duration)  # the write comes late in a save
                    break
                else:
                    started = time.perf_counter()
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            child.stdout.close()
        model = Linear(1024, 2048)
        checkpoint = io.load(path, model)  # validates the checksum: the file is complete
        assert checkpoint.step >= saved
        for p in model.parameters():  # and it is one consistent save, not a mix
            np.testing.assert_array_equal(p.data, np.float32(checkpoint.step))
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert all(name.startswith(".ck.safetensors.") for name in leftovers)
        io.save(path, model, step=checkpoint.step)  # the next save removes the dead writer's temp
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ----- validation: clear errors, nothing modified ------------------------------------------------
def _corrupt(blob: bytes, where: str) -> bytes:
    (length,) = struct.unpack("<Q", blob[:8])
    data = bytearray(blob)
    if where == "header":
        data[8 + length // 2] = ord("}")  # breaks the JSON
    elif where == "data":
        data[-5] ^= 0xFF  # one flipped byte in the last tensor
    elif where == "length":
        data[:8] = struct.pack("<Q", len(blob) * 2)
    return bytes(data)


CASES = {
    "missing": (FileNotFoundError, "no such file"),
    "text": (io.CheckpointError, "not a safetensors file"),
    "empty": (io.CheckpointError, r"only 0 bytes"),
    "truncated_tiny": (io.CheckpointError, "only 5 bytes"),
    "truncated_header": (io.CheckpointError, "truncated"),
    "truncated_data": (io.CheckpointError, "corrupted safetensors data"),
    "corrupted_header": (io.CheckpointError, "header is not valid JSON"),
    "corrupted_length": (io.CheckpointError, "truncated"),
    "corrupted_data": (io.CheckpointError, "checksum"),
    "plain_safetensors": (io.CheckpointError, "not a tinygrad_rnn checkpoint"),
    "other_shapes": (io.CheckpointError, r"shape mismatch for 'rnn.weight_ih_l0'"),
    "other_keys": (io.CheckpointError, r"missing keys \['rnn.weight_ih_l0'"),
    "other_dtype": (io.CheckpointError, "dtype mismatch for 'rnn.weight_ih_l0'.*float64"),
    "no_optimizer_state": (io.CheckpointError, "holds no optimizer state"),
    "other_optimizer": (io.CheckpointError, "saved from SGD, not Adam"),
    "optimizer_groups": (io.CheckpointError, "does not fit the optimizer"),
}


def _write_case(case: str, path, good: bytes) -> None:
    if case == "missing":
        return
    if case == "text":
        path.write_text("hello, this is not a checkpoint at all" * 3)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated_tiny":
        path.write_bytes(good[:5])
    elif case == "truncated_header":
        path.write_bytes(good[:40])
    elif case == "truncated_data":
        path.write_bytes(good[:-100])
    elif case.startswith("corrupted_"):
        path.write_bytes(_corrupt(good, case.split("_")[1]))
    elif case == "plain_safetensors":
        safetensors.numpy.save_file({"w": np.zeros(3, np.float32)}, str(path))
    elif case == "other_shapes":
        io.save(path, Net(hidden=5))
    elif case == "other_keys":
        io.save(path, Linear(6, 3))
    elif case == "other_dtype":
        io.save(path, Net().double())
    elif case == "no_optimizer_state":
        io.save(path, Net())
    elif case == "other_optimizer":
        model = Net()
        io.save(path, model, SGD(model.parameters(), lr=0.1, momentum=0.9))
    elif case == "optimizer_groups":
        model = Net()
        groups = [{"params": model.rnn.parameters()}, {"params": model.head.parameters(), "lr": 0.5}]
        io.save(path, model, Adam(groups))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_checkpoint_raises_and_leaves_model_and_optimizer_untouched(case, tmp_path):
    good_model, good_optimizer = trained(steps=2, seed=5)
    good = tmp_path / "good.safetensors"
    io.save(good, good_model, good_optimizer, step=2)
    path = tmp_path / f"{case}.safetensors"
    _write_case(case, path, good.read_bytes())

    model, optimizer = trained(steps=3, seed=9)
    params_before, optimizer_before = snapshot(model, optimizer)
    error, message = CASES[case]
    with pytest.raises(error, match=message) as info:
        io.load(path, model, optimizer)
    assert str(path) in str(info.value)
    assert isinstance(info.value, FileNotFoundError if case == "missing" else ValueError)
    assert_same_params(model.state_dict(), params_before)
    assert_same_optimizer_state(optimizer.state_dict(), optimizer_before)
    # The good file still loads into the same objects afterwards.
    io.load(good, model, optimizer)
    assert_same_params(model.state_dict(), good_model.state_dict())


# ----- exact resume in a fresh process -----------------------------------------------------------
JOB = textwrap.dedent("""
    import sys
    import numpy as np
    import tinygrad_rnn
    from tinygrad_rnn import io
    from tinygrad_rnn.losses import cross_entropy
    from tinygrad_rnn.nn import GRU, Linear, Module
    from tinygrad_rnn.optim import Adam

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.rnn = GRU(3, 8, num_layers=2, dropout=0.5, batch_first=True)  # dropout uses the RNG
            self.head = Linear(8, 4)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out)

    def train(model, optimizer, start, stop):
        for step in range(start, stop):
            data = np.random.default_rng(1000 + step)  # batch depends only on the step number
            x = data.standard_normal((4, 5, 3)).astype(np.float32)
            y = data.integers(0, 4, (4, 5))
            optimizer.zero_grad()
            cross_entropy(model(x), y).backward()
            optimizer.step()

    mode, path = sys.argv[1], sys.argv[2]
    tinygrad_rnn.manual_seed(0 if mode != "resume" else 99)  # resume must not depend on its seed
    model = Net()
    optimizer = Adam(model.parameters(), lr=0.01)
    if mode == "first":
        train(model, optimizer, 0, int(sys.argv[3]))
        io.save(path, model, optimizer, step=int(sys.argv[3]))
    else:
        start = 0
        if mode == "resume":
            start = io.load(path, model, optimizer, restore_rng=True).step
        train(model, optimizer, start, int(sys.argv[3]))
        np.savez(sys.argv[4], **model.state_dict())
""")


def test_resume_in_fresh_process_is_bitwise_exact(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    ck, resumed, full = tmp_path / "ck.safetensors", tmp_path / "resumed.npz", tmp_path / "full.npz"

    def run(*args):
        subprocess.run([sys.executable, str(script), *map(str, args)], check=True)
    run("first", ck, 4)
    run("resume", ck, 7, resumed)
    run("full", ck, 7, full)
    with np.load(resumed) as a, np.load(full) as b:
        assert sorted(a.files) == sorted(b.files) and len(a.files) == 10
        for name in a.files:
            assert a[name].dtype == b[name].dtype == np.float32
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_save_into_a_missing_directory_names_the_target_and_creates_nothing(tmp_path):
    model, _ = trained(steps=1)
    target = tmp_path / "no" / "such" / "dir" / "ck.safetensors"
    with pytest.raises(FileNotFoundError) as caught:
        io.save(target, model)
    message = str(caught.value)
    assert str(target) in message and "does not exist" in message
    assert ".tmp" not in message  # not the temporary file the caller never asked for
    assert list(tmp_path.iterdir()) == []


def test_save_below_a_file_names_the_target(tmp_path):
    model, _ = trained(steps=1)
    (tmp_path / "plain").write_text("x")
    target = tmp_path / "plain" / "ck.safetensors"
    with pytest.raises(NotADirectoryError, match="not a directory") as caught:
        io.save(target, model)
    assert str(target) in str(caught.value) and ".tmp" not in str(caught.value)


def test_save_that_cannot_create_its_temporary_file_names_the_target(tmp_path, monkeypatch):
    # As in a read-only directory (simulated: root, who runs CI, may write anywhere).
    model, _ = trained(steps=1)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".ck.safetensors.1.abc.tmp"))
    monkeypatch.setattr(checkpoints.tempfile, "mkstemp", refused)
    with pytest.raises(PermissionError, match="Permission denied") as caught:
        io.save(tmp_path / "ck.safetensors", model)
    assert str(tmp_path / "ck.safetensors") in str(caught.value) and ".tmp" not in str(caught.value)
