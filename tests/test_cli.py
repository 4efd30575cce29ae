"""The ``tinygrad-rnn`` command, run as a user runs it: ``python -m tinygrad_rnn.cli`` in a
subprocess with a temporary working directory. Tiny settings keep every run to about a second."""
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn
from tinygrad_rnn import cli
from tinygrad_rnn.data import CharTokenizer
from tinygrad_rnn.datasets import names

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "8", "--embed", "4", "--batch-size", "16", "--quiet"]
ERROR_PREFIX = "tinygrad-rnn: error:"


def run_cli(*args, cwd, env=None, timeout=120):
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "tinygrad_rnn.cli", *map(str, args)], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=timeout)


def assert_ok(done):
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def assert_one_line_error(done, *fragments):
    """Non-zero exit, no traceback, exactly one stderr line starting with the error prefix."""
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_corpus(path: Path, n_chars: int = 3000, seed: int = 0) -> Path:
    words = "the cat sat on a mat and then ran far away from home while we sang".split()
    rng = np.random.default_rng(seed)
    text = ""
    while len(text) < n_chars:
        text += " ".join(rng.choice(words, size=8)) + ".\n"
    path.write_text(text[:n_chars], encoding="utf-8")
    return path


def sample_lines(done):
    return done.stdout.splitlines()


# ----- train (names) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def names_run(tmp_path_factory):
    """One tiny training run on the bundled names, shared by the tests that only read its output."""
    cwd = tmp_path_factory.mktemp("names")
    done = run_cli("train", "--steps", 5, *TINY, "--n", 4, "--out", "names.safetensors", cwd=cwd)
    return cwd, done


def test_train_on_names_reports_losses_samples_and_checkpoint(names_run):
    cwd, done = names_run
    assert_ok(done)
    out = done.stdout
    assert "LSTM" in out and "on names" in out
    assert re.search(r"^trained 5 steps in [\d.]+ s$", out, re.M)
    match = re.search(r"^held-out loss: ([\d.]+) nats/char \(bigram baseline: ([\d.]+) nats/char\)$", out, re.M)
    assert match, out
    held_out, baseline = map(float, match.groups())
    vocab = len(set("".join(names()))) + 1  # characters plus <eos>
    # Five steps barely move an untrained model: its loss stays near ln(vocab); the bigram beats it.
    assert abs(held_out - math.log(vocab)) < 0.5
    assert 1.5 < baseline < held_out
    header = out.index("4 sampled names")
    samples = [line[2:] for line in out[header:].splitlines()[1:] if line.startswith("  ")]
    assert len(samples) == 4
    assert all(set(s) <= set("".join(names())) for s in samples)
    assert out.rstrip().endswith("checkpoint: names.safetensors")

    checkpoint = tinygrad_rnn.load(cwd / "names.safetensors")
    assert checkpoint.step == 5
    assert checkpoint.config == {"model": "CharLM", "vocab_size": vocab, "embed": 4, "hidden": 8,
                                 "layers": 1, "cell": "lstm", "dropout": 0.0}
    assert checkpoint.extra["mode"] == "names"
    assert len(checkpoint.extra["history"]["train_loss"]) >= 1


def test_sample_reproduces_the_names_train_printed(names_run):
    cwd, done = names_run
    header = done.stdout.index("4 sampled names (temperature 0.8)")
    printed = [line[2:] for line in done.stdout[header:].splitlines()[1:5]]
    # train samples name i with seed (--seed 0) + i at temperature 0.8; so does sample --seed 0.
    again = run_cli("sample", "names.safetensors", "--n", 4, "--seed", 0, "--temperature", 0.8, cwd=cwd)
    assert_ok(again)
    assert sample_lines(again) == printed


def test_sample_is_deterministic_for_a_seed(names_run):
    cwd, _ = names_run
    first = run_cli("sample", "names.safetensors", "--n", 3, "--seed", 1, cwd=cwd)
    second = run_cli("sample", "names.safetensors", "--n", 3, "--seed", 1, cwd=cwd)
    other = run_cli("sample", "names.safetensors", "--n", 3, "--seed", 2, cwd=cwd)
    for done in (first, second, other):
        assert_ok(done)
        assert len(sample_lines(done)) == 3
    assert first.stdout == second.stdout
    assert first.stdout != other.stdout
    # --seed k gives names k, k+1, ...: seed 2's first name is seed 1's second.
    assert sample_lines(other)[0] == sample_lines(first)[1]


def test_sample_temperature_zero_is_greedy_whatever_the_seed(names_run):
    cwd, _ = names_run
    runs = [run_cli("sample", "names.safetensors", "--n", 2, "--temperature", 0, "--seed", s, cwd=cwd)
            for s in (1, 7)]
    top1 = run_cli("sample", "names.safetensors", "--n", 2, "--top-k", 1, "--temperature", 2, "--seed", 3,
                   cwd=cwd)
    for done in runs + [top1]:
        assert_ok(done)
    assert len(set(sample_lines(runs[0]) + sample_lines(runs[1]) + sample_lines(top1))) == 1


def test_sample_prime_and_max_len(names_run):
    cwd, _ = names_run
    done = run_cli("sample", "names.safetensors", "--n", 5, "--prime", "an", "--max-len", 4, "--seed", 0,
                   "--temperature", 2.0, cwd=cwd)
    assert_ok(done)
    lines = sample_lines(done)
    assert len(lines) == 5
    assert all(line.startswith("an") and len(line) <= 2 + 4 for line in lines)


def test_resume_continues_and_updates_the_checkpoint(names_run, tmp_path):
    cwd, _ = names_run
    shutil.copy(cwd / "names.safetensors", tmp_path / "ckpt.safetensors")
    before = tinygrad_rnn.load(tmp_path / "ckpt.safetensors")
    done = run_cli("train", "--resume", "ckpt.safetensors", "--steps", 3, "--out", "ckpt.safetensors",
                   "--n", 1, "--quiet", cwd=tmp_path)
    assert_ok(done)
    assert re.search(r"^trained 3 steps in", done.stdout, re.M)
    after = tinygrad_rnn.load(tmp_path / "ckpt.safetensors")
    assert after.step == before.step + 3 == 8
    assert after.config == before.config
    assert after.tokenizer == before.tokenizer
    changed = [k for k in before.state_dict if not np.array_equal(before.state_dict[k], after.state_dict[k])]
    assert changed  # the weights were trained further
    # Adam's step count continued from the saved optimizer state rather than restarting at 0.
    assert after.optimizer_state["state"][0]["step"] == before.optimizer_state["state"][0]["step"] + 3


def test_resume_replaces_the_checkpoint_only_with_a_better_model(tmp_path):
    """A resumed run starts from the best validation loss its checkpoint recorded: a worse model
    (here, a learning rate that wrecks it) never replaces the best one at --out."""
    first = run_cli("train", "--steps", 4, *TINY, "--n", 0, "--out", "best.safetensors", cwd=tmp_path)
    assert_ok(first)
    before = (tmp_path / "best.safetensors").read_bytes()
    recorded = tinygrad_rnn.load(tmp_path / "best.safetensors").extra["history"]["best_val_loss"]
    worse = run_cli("train", "--resume", "best.safetensors", "--out", "best.safetensors", "--lr", 5,
                    "--steps", 4, "--n", 0, "--quiet", cwd=tmp_path)
    assert_ok(worse)
    assert (tmp_path / "best.safetensors").read_bytes() == before
    assert f"no validation loss below the resumed run's best ({recorded:.4f})" in worse.stderr
    assert re.search(r"^held-out loss: \d+\.\d+", worse.stdout, re.M)  # still reports the final model


def test_resume_in_names_mode_rejects_another_seed(names_run, tmp_path):
    cwd, _ = names_run
    done = run_cli("train", "--resume", cwd / "names.safetensors", "--seed", 7, "--steps", 1,
                   "--out", "x.safetensors", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "--seed 7 does not match the seed 0" in done.stderr
    assert not (tmp_path / "x.safetensors").exists()


# ----- divergence -------------------------------------------------------------------------------
def test_a_diverging_run_stops_with_a_one_line_error_and_writes_no_checkpoint(tmp_path):
    done = run_cli("train", "--steps", 200, *TINY, "--lr", "1e6", "--out", "div.safetensors", cwd=tmp_path)
    assert_one_line_error(done, "training diverged at step", "uniform guessing (ln 27 = 3.30)",
                          "--lr 1e+06", "smaller --lr", "no checkpoint written to div.safetensors")
    step = int(re.search(r"at step (\d+):", done.stderr).group(1))
    assert 1 <= step < 200
    assert "held-out loss" not in done.stdout  # no report, no samples of a diverged model
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_resume_keeps_the_last_good_checkpoint(names_run, tmp_path):
    shutil.copy(names_run[0] / "names.safetensors", tmp_path / "names.safetensors")
    before = (tmp_path / "names.safetensors").read_bytes()
    done = run_cli("train", "--resume", "names.safetensors", "--steps", 200, "--lr", "1e6", "--quiet",
                   "--out", "names.safetensors", cwd=tmp_path)
    assert_one_line_error(done, "training diverged at step", "--lr 1e+06", "names.safetensors left as it was")
    assert int(re.search(r"at step (\d+):", done.stderr).group(1)) > 5  # counted on from the resumed step
    assert (tmp_path / "names.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.safetensors"]  # no .last either


def test_divergence_after_a_checkpoint_names_the_step_it_holds(monkeypatch, tmp_path, capsys):
    # In process, with fit replaced: it writes the best checkpoint at step 7, then diverges at 8.
    from tinygrad_rnn import train
    from tinygrad_rnn.train import DivergenceError, History

    def fit_that_diverges(*args, checkpoint, **kwargs):
        history = History(steps=7)
        checkpoint(history)
        raise DivergenceError(8, float("inf"), None, kwargs["max_loss"], history)
    monkeypatch.setattr(train, "fit", fit_that_diverges)
    out = tmp_path / "best.safetensors"
    assert cli.main(["train", *TINY, "--steps", "10", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"{ERROR_PREFIX} training diverged at step 8: the loss is inf; the learning rate (--lr 0.003) "
                   f"is likely too high, try a smaller --lr; {out} holds the best model, from step 7")
    assert tinygrad_rnn.load(out).step == 7


# ----- train (text) -----------------------------------------------------------------------------
def test_train_on_a_text_file_then_sample_with_a_prime(tmp_path):
    write_corpus(tmp_path / "corpus.txt")
    done = run_cli("train", "--data", "corpus.txt", "--steps", 5, *TINY, "--seq-len", 16, "--n", 2,
                   "--out", "text.safetensors", cwd=tmp_path)
    assert_ok(done)
    assert "on corpus.txt (characters" in done.stdout
    assert "2 sampled samples" in done.stdout
    assert re.search(r"held-out loss: [\d.]+ nats/char \(bigram baseline: [\d.]+ nats/char\)", done.stdout)
    checkpoint = tinygrad_rnn.load(tmp_path / "text.safetensors")
    assert checkpoint.step == 5 and checkpoint.extra["mode"] == "text"
    assert checkpoint.extra["source"] == "corpus.txt"
    tokenizer = CharTokenizer.from_dict(checkpoint.tokenizer)
    assert set(tokenizer.chars) == set((tmp_path / "corpus.txt").read_text())

    sampled = run_cli("sample", "text.safetensors", "--n", 2, "--prime", "the ", "--max-len", 20,
                      "--seed", 0, cwd=tmp_path)
    assert_ok(sampled)
    lines = sampled.stdout.split("\n")
    assert lines[0].startswith("the ")
    # A text model maps unseen characters to an untrained <unk>: a --prime holding them is refused too.
    assert_one_line_error(run_cli("sample", "text.safetensors", "--prime", "The", cwd=tmp_path),
                          "--prime 'The': 'T' not among the characters", "try it in lowercase: --prime 'the'")
    vocab = tokenizer.vocab_size  # the characters, <eos> and <unk>
    assert_ok(run_cli("sample", "text.safetensors", "--n", 1, "--top-k", vocab, "--max-len", 5, cwd=tmp_path))
    assert_one_line_error(run_cli("sample", "text.safetensors", "--top-k", vocab + 1, cwd=tmp_path),
                          f"vocabulary size {vocab}, got {vocab + 1}")

    # Resuming without --data trains on the file the checkpoint names (and, with a larger --seq-len
    # than the text allows, the batch count shrinks so that every stream still holds seq_len + 1 ids).
    resumed = run_cli("train", "--resume", "text.safetensors", "--steps", 2, "--out", "text.safetensors",
                      "--n", 1, "--quiet", "--seq-len", 64, "--batch-size", 64, cwd=tmp_path)
    assert_ok(resumed)
    assert "on corpus.txt (characters" in resumed.stdout
    assert tinygrad_rnn.load(tmp_path / "text.safetensors").step == 7


def test_the_default_seq_len_is_shortened_for_a_short_text_with_a_note(tmp_path):
    write_corpus(tmp_path / "short.txt", n_chars=300)  # a validation split of 30 characters
    done = run_cli("train", "--data", "short.txt", "--steps", 2, *TINY, "--n", 0, cwd=tmp_path)
    assert_ok(done)
    assert done.stdout.splitlines()[0] == ("note: --seq-len 64 is too long for the 30-character validation "
                                           "split of short.txt; using 14")
    # The longest chunk that fits is accepted when given explicitly; one more is an error.
    assert_ok(run_cli("train", "--data", "short.txt", "--steps", 1, *TINY, "--n", 0, "--seq-len", 14,
                      "--out", "b.safetensors", cwd=tmp_path))
    assert_one_line_error(run_cli("train", "--data", "short.txt", "--steps", 1, *TINY, "--n", 0,
                                  "--seq-len", 15, cwd=tmp_path), "at most --seq-len 14")


def test_resume_reuses_the_run_options_unless_given(tmp_path):
    write_corpus(tmp_path / "corpus.txt")
    options = ["--seq-len", 16, "--batch-size", 4, "--lr", 0.01, "--clip", 0.5, "--seed", 3]
    first = run_cli("train", "--data", "corpus.txt", "--epochs", 1, "--hidden", 8, "--embed", 4, "--cell", "gru",
                    *options, "--n", 0, "--quiet", "--out", "a.safetensors", cwd=tmp_path)
    assert_ok(first)
    saved = tinygrad_rnn.load(tmp_path / "a.safetensors")
    assert saved.extra["options"] == {"seq_len": 16, "batch_size": 4, "lr": 0.01, "clip": 0.5, "seed": 3}
    steps_per_epoch = saved.step  # with --seq-len 16 and --batch-size 4 (the defaults give 1 step)
    assert steps_per_epoch > 10

    # Nothing given: one more epoch has the same number of steps, and the options are kept.
    again = run_cli("train", "--resume", "a.safetensors", "--epochs", 1, "--n", 0, "--quiet",
                    "--out", "b.safetensors", cwd=tmp_path)
    assert_ok(again)
    resumed = tinygrad_rnn.load(tmp_path / "b.safetensors")
    assert resumed.step == 2 * steps_per_epoch
    assert resumed.extra["options"] == saved.extra["options"]
    assert resumed.optimizer_state["param_groups"][0]["lr"] == 0.01

    # Given explicitly (model options equal to the checkpoint's are allowed): those win.
    changed = run_cli("train", "--resume", "a.safetensors", "--steps", 1, "--lr", 0.002, "--batch-size", 8,
                      "--hidden", 8, "--cell", "gru", "--n", 0, "--quiet", "--out", "c.safetensors", cwd=tmp_path)
    assert_ok(changed)
    resumed = tinygrad_rnn.load(tmp_path / "c.safetensors")
    assert resumed.extra["options"] == {"seq_len": 16, "batch_size": 8, "lr": 0.002, "clip": 0.5, "seed": 3}
    assert resumed.optimizer_state["param_groups"][0]["lr"] == 0.002
    assert resumed.config == saved.config


def greedy_by_hand(path, context: str, n: int) -> str:
    """The n-token argmax continuation of ``context`` (no start token, <eos> never drawn) by the
    checkpoint's model; decoded like the CLI does (specials such as <unk> print as nothing)."""
    from tinygrad_rnn.models import CharLM
    from tinygrad_rnn.tensor import Tensor, no_grad

    checkpoint = tinygrad_rnn.load(path)
    tokenizer = CharTokenizer.from_dict(checkpoint.tokenizer)
    model = CharLM(**{k: v for k, v in checkpoint.config.items() if k != "model"})
    tinygrad_rnn.load(path, model=model)
    model.eval()
    out = []
    with no_grad():
        logits, state = model(Tensor(np.asarray([tokenizer.encode(context)], dtype=np.int64)), None)
        for _ in range(n):
            row = logits.data[0, -1].copy()
            row[tokenizer.eos_id] = -np.inf
            out.append(int(np.argmax(row)))
            logits, state = model(Tensor(np.asarray([[out[-1]]], dtype=np.int64)), state)
    return tokenizer.decode(out)


def text_checkpoint(path, text: str, first_char=None):
    """A 'train --data' checkpoint of an untrained CharLM whose greedy output depends on its input."""
    from tinygrad_rnn.models import CharLM

    tokenizer = CharTokenizer(specials=("<eos>",), unknown="unk").fit(text)
    tinygrad_rnn.manual_seed(1)
    model = CharLM(tokenizer.vocab_size, embed=8, hidden=16, cell="gru")
    model.head.weight.data *= 8  # far from uniform: a different start gives a different sample
    extra = {"source": "corpus.txt", "mode": "text"}
    if first_char is not None:
        extra["first_char"] = first_char
    tinygrad_rnn.save(path, model, config={"model": "CharLM", **model.config}, tokenizer=tokenizer,
                      extra=extra)
    return path


def test_text_sampling_without_prime_starts_after_a_newline_not_from_eos(tmp_path):
    text = write_corpus(tmp_path / "corpus.txt").read_text()
    path = text_checkpoint(tmp_path / "text.safetensors", text, first_char=text[0])
    sampled = run_cli("sample", "text.safetensors", "--n", 1, "--temperature", 0, "--max-len", 40, cwd=tmp_path)
    assert_ok(sampled)
    assert sampled.stdout == greedy_by_hand(path, "\n", 40) + "\n"  # the newline is context, not printed


@pytest.mark.parametrize("saved_first_char", [True, False])
def test_text_sampling_without_a_newline_starts_from_the_first_character(tmp_path, saved_first_char):
    text = write_corpus(tmp_path / "corpus.txt").read_text().replace("\n", " ")
    # Older checkpoints lack first_char: they start from the lowest character (" " here).
    start = text[0] if saved_first_char else min(text)
    path = text_checkpoint(tmp_path / "line.safetensors", text, first_char=text[0] if saved_first_char else None)
    sampled = run_cli("sample", "line.safetensors", "--n", 1, "--temperature", 0, "--max-len", 20, cwd=tmp_path)
    assert_ok(sampled)
    assert sampled.stdout == start + greedy_by_hand(path, start, 20) + "\n"  # the start is printed


def test_text_train_saves_the_first_character_and_prints_what_sample_prints(tmp_path):
    text = write_corpus(tmp_path / "corpus.txt").read_text()
    done = run_cli("train", "--data", "corpus.txt", "--steps", 3, *TINY, "--seq-len", 16, "--n", 1,
                   "--out", "text.safetensors", cwd=tmp_path)
    assert_ok(done)
    assert tinygrad_rnn.load(tmp_path / "text.safetensors").extra["first_char"] == text[0]
    # train samples with --seed 0 at temperature 0.8, 200 characters; so does sample --seed 0.
    sampled = run_cli("sample", "text.safetensors", "--n", 1, "--seed", 0, cwd=tmp_path)
    assert_ok(sampled)
    assert f"(temperature 0.8):\n  {sampled.stdout}checkpoint:" in done.stdout


# ----- graph ------------------------------------------------------------------------------------
def step_clusters(dot_source: str) -> set[int]:
    return {int(k) for k in re.findall(r'label="[^"]*/t(\d+)"', dot_source)}


def test_graph_dot(tmp_path):
    done = run_cli("graph", "--cell", "lstm", "--steps", 3, "--format", "dot", "-o", "g.dot", cwd=tmp_path)
    assert_ok(done)
    source = (tmp_path / "g.dot").read_text()
    assert source.lstrip().startswith("digraph")
    assert step_clusters(source) == {0, 1, 2}
    assert "LSTM unrolled over 3 steps" in done.stdout and "g.dot" in done.stdout


def test_graph_svg(tmp_path):
    if shutil.which("dot") is None:
        if os.environ.get("TINYGRAD_RNN_ALLOW_NO_DOT") == "1":
            pytest.skip("Graphviz `dot` is not installed and TINYGRAD_RNN_ALLOW_NO_DOT=1")
        pytest.fail("Graphviz `dot` is not installed (apt-get install graphviz), "
                    "or set TINYGRAD_RNN_ALLOW_NO_DOT=1 to skip this test")
    done = run_cli("graph", "--cell", "gru", "--steps", 2, "--format", "svg", "-o", "g.svg", cwd=tmp_path)
    assert_ok(done)
    svg = (tmp_path / "g.svg").read_text()
    assert "<svg" in svg and "</svg>" in svg
    assert "gru/l0/fwd/t1" in svg


def test_graph_without_dot_on_path_writes_the_dot_file_and_fails_in_one_line(tmp_path):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    done = run_cli("graph", "--format", "svg", "-o", "g.svg", cwd=tmp_path, env=env)
    assert_one_line_error(done, "dot", "g.dot")
    assert (tmp_path / "g.dot").exists() and step_clusters((tmp_path / "g.dot").read_text()) == {0, 1, 2}
    assert not (tmp_path / "g.svg").exists()


def test_graph_when_dot_itself_fails_is_a_one_line_error(tmp_path):
    fake_bin = tmp_path / "fake_bin"
    fake_bin.mkdir()
    fake_dot = fake_bin / "dot"
    fake_dot.write_text("#!/bin/sh\necho 'Error: layout exploded' >&2\nexit 3\n")
    fake_dot.chmod(0o755)
    env = dict(os.environ, PATH=os.pathsep.join([str(fake_bin), os.environ.get("PATH", "")]))
    done = run_cli("graph", "--format", "svg", "-o", "g.svg", cwd=tmp_path, env=env)
    assert_one_line_error(done, "exit code 3", "layout exploded")


# ----- check ------------------------------------------------------------------------------------
def test_check_passes_for_every_cell(tmp_path):
    done = run_cli("check", cwd=tmp_path)
    assert_ok(done)
    for kind in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
        assert re.search(rf"^\| {kind} \|.*\| PASS \|$", done.stdout, re.M), kind
    assert "FAIL" not in done.stdout
    assert done.stdout.rstrip().endswith("all checks PASS")


def test_check_fails_for_a_wrong_lstm_step(monkeypatch, capsys):
    import tinygrad_rnn.nn.cells as cells
    from tinygrad_rnn import ops

    def wrong_lstm_step(gx, h, c, whh_t):
        gates = gx + h @ whh_t
        i, f, g, o = ops.chunk(gates, 4, axis=-1)
        c_next = f.tanh() * c + i.sigmoid() * g.tanh()  # forget gate through tanh: wrong
        return o.sigmoid() * c_next.tanh(), c_next
    monkeypatch.setattr(cells, "lstm_step", wrong_lstm_step)  # what LSTMCell.step calls
    assert cli.main(["check", "--cell", "lstm"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^\| lstm \|.*\| FAIL \|$", out, re.M)
    assert "FAIL: lstm" in out
    # the failure is spelled out under the table: which quantity, which step, the worst element
    assert re.search(r"^lstm: outputs: autograd vs analytic first disagrees at time step 0: .*worst at index",
                     out, re.M)
    monkeypatch.undo()
    assert cli.main(["check", "--cell", "lstm"]) == 0  # the real step passes again


EXAMPLES = REPO / "examples"


def test_check_runs_the_table_for_a_user_cell_and_its_derivation():
    done = run_cli("check", "--cell", "peephole_lstm:PeepholeLSTMCell",
                   "--analytic", "peephole_lstm:forward,backward", cwd=EXAMPLES)
    assert_ok(done)
    row = re.search(r"^\| PeepholeLSTMCell \| (\S+) \| (\S+) \| (\S+) \| (\S+) \| PASS \|$", done.stdout, re.M)
    assert row, done.stdout
    assert float(row.group(1)) < 1e-12 and float(row.group(3)) < 1e-6
    assert done.stdout.rstrip().endswith("all checks PASS")


def test_check_fails_for_a_user_derivation_with_a_bug_and_says_where():
    done = run_cli("check", "--cell", "peephole_lstm:PeepholeLSTMCell",
                   "--analytic", "peephole_lstm:forward,backward_with_a_bug", cwd=EXAMPLES)
    assert done.returncode == 1, done.stderr
    assert re.search(r"^\| PeepholeLSTMCell \|.*\| FAIL \|$", done.stdout, re.M)
    assert re.search(r"^PeepholeLSTMCell: gradient of 'w_cf': autograd vs analytic first disagrees at "
                     r"time step 1 .*worst at index \(\d+,\): autograd \S+, analytic \S+, difference",
                     done.stdout, re.M), done.stdout
    assert "FAIL: PeepholeLSTMCell" in done.stdout


def test_check_accepts_one_object_holding_forward_and_backward(tmp_path):
    (tmp_path / "mycell.py").write_text(
        "import sys, types\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        "import peephole_lstm as p\n"
        "Cell = p.PeepholeLSTMCell\n"
        "derivation = types.SimpleNamespace(forward=p.forward, backward=p.backward)\n")
    done = run_cli("check", "--cell", "mycell:Cell", "--analytic", "mycell:derivation", cwd=tmp_path)
    assert_ok(done)
    assert re.search(r"^\| PeepholeLSTMCell \|.*\| PASS \|$", done.stdout, re.M)


@pytest.mark.parametrize("args, fragments", [
    (["--cell", "peephole_lstm:PeepholeLSTMCell"], ["--cell", "--analytic", "go together"]),
    (["--cell", "lstmm"], ["--cell", "lstmm", "package.module:CellClass"]),
    (["--cell", "no_such_module:Cell", "--analytic", "no_such_module:f,b"], ["--cell", "no_such_module"]),
    (["--cell", "peephole_lstm:Nope", "--analytic", "peephole_lstm:forward,backward"], ["--cell", "Nope"]),
    (["--cell", "peephole_lstm:PeepholeLSTMCell", "--analytic", "peephole_lstm:forward"],
     ["--analytic", "peephole_lstm:forward"]),
    (["--cell", "peephole_lstm:PeepholeLSTMCell", "--analytic", "peephole_lstm:forward,"], ["--analytic"]),
])
def test_check_user_cell_errors_are_one_line(args, fragments):
    assert_one_line_error(run_cli("check", *args, cwd=EXAMPLES), *fragments)


# ----- errors -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory, names_run):
    """Inputs for the error tests: bad text files and bad checkpoints."""
    d = tmp_path_factory.mktemp("files")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(b"hello \xff\xfe\xfd world" * 30)
    (d / "short.txt").write_text("just a few words", encoding="utf-8")
    write_corpus(d / "corpus.txt")  # 3000 characters: a validation split of 300
    (d / "adir").mkdir()
    (d / "random.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    tinygrad_rnn.save(d / "linear.safetensors", tinygrad_rnn.nn.Linear(3, 2))
    blob = (names_run[0] / "names.safetensors").read_bytes()
    (d / "truncated.safetensors").write_bytes(blob[: len(blob) // 2])
    shutil.copy(names_run[0] / "names.safetensors", d / "good.safetensors")
    return d


ERRORS = [
    # (arguments, fragments the one-line message must contain)
    (["train", "--hidden", "0", "--steps", "1"], ["--hidden", "0"]),
    (["train", "--steps", "-1"], ["--steps", "-1"]),
    (["train", "--lr", "0", "--steps", "1"], ["--lr"]),
    (["train", "--lr", "inf", "--steps", "1"], ["--lr", "inf"]),
    (["train", "--lr", "nan", "--steps", "1"], ["--lr", "nan"]),
    (["train", "--lr", "-0.5", "--steps", "1"], ["--lr", "-0.5"]),
    (["train", "--clip", "0", "--steps", "1"], ["--clip"]),
    (["train", "--clip", "inf", "--steps", "1"], ["--clip", "inf"]),
    (["train", "--clip=-inf", "--steps", "1"], ["--clip", "-inf"]),
    (["train", "--temperature", "inf", "--steps", "1"], ["--temperature", "inf"]),
    (["train", "--batch-size", "0", "--steps", "1"], ["--batch-size"]),
    (["train", "--temperature", "-1", "--steps", "1", "--hidden", "8", "--quiet"], ["--temperature"]),
    (["train", "--n", "-1", "--steps", "1", "--hidden", "8", "--quiet"], ["--n"]),
    (["train", "--data", "missing.txt", "--steps", "1"], ["missing.txt"]),
    (["train", "--data", "empty.txt", "--steps", "1"], ["empty.txt", "empty"]),
    (["train", "--data", "binary.txt", "--steps", "1"], ["binary.txt", "decode"]),
    (["train", "--data", "short.txt", "--steps", "1"], ["short.txt", "200"]),
    (["train", "--data", "adir", "--steps", "1"], ["adir"]),
    (["train", "--data", "corpus.txt", "--seq-len", "1000000", "--steps", "1"],
     ["--seq-len 1000000 is too long for --data corpus.txt", "(300 characters)", "at most --seq-len 149"]),
    (["train", "--seq-len", "1000000", "--steps", "1"], ["--seq-len 1000000 applies only with --data"]),
    (["train", "--resume", "good.safetensors", "--seq-len", "16", "--steps", "1"],
     ["--seq-len 16 applies only with --data"]),
    (["train", "--out", "adir", "--steps", "1", "--hidden", "8", "--quiet"], ["--out", "directory"]),
    (["train", "--resume", "linear.safetensors", "--steps", "1"], ["linear.safetensors", "CharLM"]),
    (["train", "--resume", "missing.safetensors", "--steps", "1"], ["missing.safetensors"]),
    (["train", "--resume", "truncated.safetensors", "--steps", "1"], ["truncated.safetensors"]),
    (["train", "--resume", "good.safetensors", "--hidden", "16", "--steps", "1"], ["--hidden 16", "8"]),
    (["train", "--resume", "good.safetensors", "--cell", "gru", "--steps", "1"], ["--cell gru", "lstm"]),
    (["train", "--resume", "good.safetensors", "--layers", "2", "--steps", "1"], ["--layers 2", "1"]),
    (["train", "--resume", "good.safetensors", "--embed", "8", "--steps", "1"], ["--embed 8", "4"]),
    (["sample", "missing.safetensors"], ["missing.safetensors"]),
    (["sample", "random.safetensors"], ["random.safetensors"]),
    (["sample", "linear.safetensors"], ["linear.safetensors", "CharLM"]),
    (["sample", "truncated.safetensors"], ["truncated.safetensors"]),
    (["sample", "adir"], ["adir"]),
    (["sample", "good.safetensors", "--n", "0"], ["--n"]),
    (["sample", "good.safetensors", "--temperature", "-1"], ["--temperature"]),
    (["sample", "good.safetensors", "--temperature", "inf"], ["--temperature", "inf"]),
    (["sample", "good.safetensors", "--temperature", "nan"], ["--temperature", "nan"]),
    # The user's flags, not generate()'s argument names; the bundled names are lowercase, 27 symbols with <eos>.
    (["sample", "good.safetensors", "--top-k", "0"], ["--top-k", "between 1 and the model's vocabulary size 27, got 0"]),
    (["sample", "good.safetensors", "--top-k", "1000"], ["--top-k", "vocabulary size 27, got 1000"]),
    (["sample", "good.safetensors", "--max-len", "0"], ["--max-len must be >= 1, got 0"]),
    (["sample", "good.safetensors", "--max-len", "-1"], ["--max-len must be >= 1, got -1"]),
    (["sample", "good.safetensors", "--prime", "A#"], ["--prime 'A#'", "'#', 'A' not among the characters",
                                                      "'abcdefghijklmnopqrstuvwxyz'"]),
    (["sample", "good.safetensors", "--prime", "Jo"], ["--prime 'Jo'", "'J' not among", "--prime 'jo'"]),
    (["train", "--resume", "good.safetensors", "--data", "corpus.txt", "--steps", "1"],
     ["--data corpus.txt", "vocabulary of --resume good.safetensors does not cover this text",
      "'\\n', ' ', '.' not among its 26 characters"]),
    (["graph", "--steps", "0", "--format", "dot"], ["--steps"]),
]


@pytest.fixture(scope="module")
def error_runs(files):
    """Run every error case concurrently (each is a fresh interpreter) to keep the file fast."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    procs = []
    for index, (args, _) in enumerate(ERRORS):
        # Its own directory (inputs linked in), so a stray checkpoint is blamed on the right case.
        case = files / f"case{index}"
        case.mkdir()
        for item in files.iterdir():
            if not item.name.startswith("case"):
                (case / item.name).symlink_to(item)
        procs.append(subprocess.Popen([sys.executable, "-m", "tinygrad_rnn.cli", *args], cwd=case, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


@pytest.mark.parametrize("index", range(len(ERRORS)), ids=[" ".join(a) for a, _ in ERRORS])
def test_user_errors_are_one_line_without_traceback(index, error_runs, files):
    args, fragments = ERRORS[index]
    done = error_runs[index]
    assert_one_line_error(done, *fragments)
    if args[0] == "train":
        assert "training a" not in done.stdout  # rejected before any training
    assert [p.name for p in (files / f"case{index}").iterdir() if not p.is_symlink()] == []  # nothing written


@pytest.mark.parametrize("args, fragment", [
    (["train", "--cell", "transformer"], "invalid choice"),
    (["train", "--hidden", "many"], "invalid int value"),
    (["sample"], "required"),
    (["graph", "--format", "pdf"], "invalid choice"),
    ([], "required"),
])
def test_bad_option_values_give_argparse_usage_errors(args, fragment, tmp_path):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: tinygrad-rnn")
    assert fragment in done.stderr.strip().splitlines()[-1]


def test_in_process_main_returns_error_codes(capsys, tmp_path):
    # The same paths through main() (no subprocess): return codes instead of sys.exit.
    assert cli.main(["train", "--hidden", "0", "--steps", "1"]) == 1
    assert capsys.readouterr().err.startswith(ERROR_PREFIX)
    assert cli.main(["sample", str(tmp_path / "nope.safetensors")]) == 1
    assert "nope.safetensors" in capsys.readouterr().err


# ----- Ctrl-C -----------------------------------------------------------------------------------
def start_training(tmp_path, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "tinygrad_rnn.cli", "train", "--steps", "100000", *TINY,
                             *map(str, args)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt(proc, ready):
    """Send SIGINT once ``ready()`` holds (polled while training runs); return (stdout, stderr)."""
    try:
        first = proc.stdout.readline()  # printed (flushed) just before the training loop starts
        assert first.startswith("training a"), first + proc.stderr.read()
        deadline = time.monotonic() + 60
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready(), "the condition for the interrupt never held"
        assert proc.poll() is None, "training ended before the interrupt"
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_saves_a_loadable_state_beside_the_checkpoint_and_exits_130(tmp_path):
    proc = start_training(tmp_path, "--out", "ctrl_c.safetensors")
    started = time.monotonic()
    out, err = interrupt(proc, lambda: time.monotonic() - started > 1.5)  # long before the first epoch ends
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    match = re.search(r"interrupted after (\d+) steps: state saved to ctrl_c.last.safetensors "
                      r"\(continue with --resume ctrl_c.last.safetensors\); "
                      r"no checkpoint at ctrl_c.safetensors yet$", err.strip())
    assert match, err
    checkpoint = tinygrad_rnn.load(tmp_path / "ctrl_c.last.safetensors")
    assert checkpoint.step == int(match.group(1))  # the state at the interrupt, not an older one
    assert checkpoint.extra["history"]["interrupted"] is True
    assert not (tmp_path / "ctrl_c.safetensors").exists()
    assert "held-out loss" not in out  # stopped: no report, no samples


def test_ctrl_c_never_overwrites_the_best_checkpoint(tmp_path):
    # Huge batches: an epoch (and its validation, and the best checkpoint) every few steps.
    best = tmp_path / "best.safetensors"
    proc = start_training(tmp_path, "--batch-size", 4096, "--out", best.name)
    out, err = interrupt(proc, best.exists)
    assert proc.returncode == 130, err
    kept = tinygrad_rnn.load(best)
    history = kept.extra["history"]
    assert not history["interrupted"]  # a validated state, not the one at the Ctrl-C
    match = re.search(r"interrupted after (\d+) steps: state saved to best.last.safetensors .*; "
                      r"best checkpoint best.safetensors left as it was$", err.strip())
    assert match, err
    interrupted_at = int(match.group(1))
    assert kept.step <= interrupted_at
    assert history["best_val_loss"] == min(history["val_loss"]) == history["val_loss"][-1]
    last = tinygrad_rnn.load(tmp_path / "best.last.safetensors")
    assert last.step == interrupted_at and last.extra["history"]["interrupted"]
    # The interrupted state resumes like any checkpoint.
    resumed = run_cli("train", "--resume", "best.last.safetensors", "--steps", 2, "--n", 0, "--quiet",
                      "--out", "more.safetensors", cwd=tmp_path)
    assert_ok(resumed)
    assert tinygrad_rnn.load(tmp_path / "more.safetensors").step == interrupted_at + 2


def test_graph_long_sequences_use_the_linear_layout_and_say_so(tmp_path):
    done = run_cli("graph", "--steps", 100, "-o", "long.svg", cwd=tmp_path)
    assert_ok(done)
    assert "linear-in-T layout" in done.stdout and "--layout dot" in done.stdout
    svg = (tmp_path / "long.svg").read_text()
    assert svg.count('class="cluster step"') == 100 and svg.rstrip().endswith("</svg>")
    small = run_cli("graph", "--steps", 3, "--format", "svg", "-o", "small.svg", cwd=tmp_path)
    assert_ok(small)
    assert "Graphviz dot layout" in small.stdout and "note:" not in small.stdout


def test_graph_html_writes_the_viewer(tmp_path):
    done = run_cli("graph", "--cell", "gru", "--steps", 5, "--layers", 2, "--bidirectional",
                   "--format", "html", "-o", "v.html", cwd=tmp_path)
    assert_ok(done)
    page = (tmp_path / "v.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count('class="cluster step"') == 20
    assert 'class="strip-chart"' in page


def test_train_with_and_without_compile_gives_the_same_model(tmp_path):
    """The compiled step (the default) replays what eager execution does: same weights."""
    from tinygrad_rnn import load
    paths = {}
    for flag in ([], ["--no-compile"]):
        out = tmp_path / f"model{len(flag)}.safetensors"
        assert cli.main(["train", "--steps", "12", "--hidden", "16", "--embed", "8", "--quiet",
                         "--n", "1", "--out", str(out), *flag]) == 0
        paths[bool(flag)] = load(out)
    compiled, eager = paths[False].state_dict, paths[True].state_dict
    assert compiled.keys() == eager.keys()
    for name, value in eager.items():
        np.testing.assert_allclose(compiled[name], value, rtol=1e-5, atol=1e-6)


def test_text_training_replays_without_falling_back_to_eager(tmp_path):
    """Truncated BPTT on a repetitive text: the compiled step's first replay is checked against
    eager execution; float32 sums in another order (one product for W_hh's per-step pieces)
    must not count as a difference (this text once made fit fall back with a warning)."""
    import warnings
    text = tmp_path / "mine.txt"
    text.write_text("hello world, this is my own text.\n" * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a fallback warning fails the test
        assert cli.main(["train", "--data", str(text), "--steps", "20", "--hidden", "32", "--quiet",
                         "--n", "0", "--out", str(tmp_path / "m.safetensors")]) == 0
