"""Tests for tinygrad_rnn.datasets: bundled files, run-time corpora and synthetic tasks."""
import math
import re
from collections import Counter

import numpy as np
import pytest

from tinygrad_rnn import datasets
from tinygrad_rnn.datasets import (
    adding_problem,
    copy_task,
    copy_task_baseline,
    embedded_reber,
    is_embedded_reber,
    load_text,
    python_source,
    reber_next_symbols,
)

# ---------------------------------------------------------------------------------------------
# Bundled files
# ---------------------------------------------------------------------------------------------


def test_names_lowercase_unique_sorted_and_large():
    names = datasets.names()
    assert 20_000 <= len(names) <= 100_000
    assert all(re.fullmatch(r"[a-z]+", n) for n in names)
    assert len(set(names)) == len(names)
    assert names == sorted(names)
    for common in ("emma", "olivia", "james", "john", "mary"):
        assert common in names
    names.append("zzz")  # callers get their own copy
    assert "zzz" not in datasets.names()


def test_surnames_labels_and_languages():
    pairs = datasets.surnames()
    assert len(pairs) > 5000
    counts = Counter(lang for _, lang in pairs)
    assert len(counts) >= 8
    assert all(c >= 50 for c in counts.values())
    assert all(re.fullmatch(r"[a-z]+", s) for s, _ in pairs)
    surnames = [s for s, _ in pairs]
    assert len(set(surnames)) == len(surnames)  # one label per surname
    labels = dict(pairs)
    # well-known surnames specific to one language in Faker's lists
    assert labels.get("kowalski") == "Polish"
    assert labels.get("bianchi") == "Italian"
    assert labels.get("virtanen") == "Finnish"
    assert labels.get("horvat") == "Croatian"


def test_sunspots_series():
    years, values = datasets.sunspots()
    assert years.shape == values.shape and years.ndim == 1
    assert len(years) > 300
    assert np.all(np.diff(years) == 1)
    assert years[0] == 1700
    assert values.dtype == np.float64 and np.all(values >= 0)
    assert np.isfinite(values).all() and values.max() > 100  # solar maxima exceed 100


# ---------------------------------------------------------------------------------------------
# Text read at run time
# ---------------------------------------------------------------------------------------------


def test_python_source_deterministic_and_truncated():
    a = python_source(max_chars=50_000)
    b = python_source(max_chars=50_000)
    assert len(a) == 50_000 and a == b
    assert "def " in a or "class " in a
    longer = python_source(max_chars=80_000)
    assert longer.startswith(a)
    with pytest.raises(ValueError, match="max_chars"):
        python_source(max_chars=0)
    with pytest.raises(TypeError, match="max_chars"):
        python_source(max_chars=1.5)


def test_load_text(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("héllo\nworld\n", encoding="utf-8")
    assert load_text(path) == "héllo\nworld\n"
    assert load_text(str(path)) == "héllo\nworld\n"


def test_load_text_errors(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_text(missing)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt"):
        load_text(empty)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"ok\xff\xfe")
    with pytest.raises(ValueError, match=r"bad\.bin.*offset 2"):
        load_text(bad)
    with pytest.raises(ValueError, match="directory"):
        load_text(tmp_path)


# ---------------------------------------------------------------------------------------------
# Adding problem
# ---------------------------------------------------------------------------------------------


def test_adding_problem_definition():
    n, T = 200, 15
    x, y = adding_problem(n, T, seed=0)
    assert x.shape == (n, T, 2) and y.shape == (n,)
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers).tolist()) == {0.0, 1.0}
    half = T // 2
    assert np.all(markers[:, :half].sum(axis=1) == 1)
    assert np.all(markers[:, half:].sum(axis=1) == 1)
    np.testing.assert_allclose(y, (values * markers).sum(axis=1))


def test_adding_problem_seeded_and_baseline():
    x1, y1 = adding_problem(5, 10, seed=7)
    x2, y2 = adding_problem(5, 10, seed=7)
    x3, _ = adding_problem(5, 10, seed=8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    # predicting 1 scores MSE ~ 1/6
    _, y = adding_problem(20_000, 10, seed=1)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.01


def test_adding_problem_errors():
    with pytest.raises(ValueError, match="T must be >= "):
        adding_problem(3, 1)
    with pytest.raises(ValueError, match="n must be >= 1"):
        adding_problem(0, 5)


# ---------------------------------------------------------------------------------------------
# Copy task
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 30])
def test_copy_task_layout(T):
    n = 50
    x, y = copy_task(n, T, seed=T)
    assert x.shape == y.shape == (n, T + 20)
    assert x.dtype == np.int64 and y.dtype == np.int64
    symbols = x[:, :10]
    assert np.all((symbols >= 1) & (symbols <= 8))
    assert np.all(x[:, 10:T + 9] == 0)  # T-1 blanks
    assert np.all(x[:, T + 9] == 9)  # delimiter
    assert np.all(x[:, T + 10:] == 0)  # 10 blanks
    assert np.all(y[:, :T + 10] == 0)
    np.testing.assert_array_equal(y[:, T + 10:], symbols)


def test_copy_task_seeded_symbol_spread_and_baseline():
    x1, _ = copy_task(400, 5, seed=0)
    x2, _ = copy_task(400, 5, seed=0)
    np.testing.assert_array_equal(x1, x2)
    assert set(np.unique(x1[:, :10]).tolist()) == set(range(1, 9))
    assert copy_task_baseline(100) == pytest.approx(10 * math.log(8) / 120)
    with pytest.raises(ValueError, match="T must be >= "):
        copy_task(2, 0)


# ---------------------------------------------------------------------------------------------
# Embedded Reber grammar
# ---------------------------------------------------------------------------------------------

# An independent description of the Reber grammar as a regular expression, derived by hand from the
# transition graph of Hochreiter & Schmidhuber (1997): from the start, T S* X reaches node 4 and
# P T* V reaches node 5; node 5 ends with V or goes to node 4 with P; node 4 ends with S or loops
# back to node 5 through X T* V.
REBER = r"B(?:(?:TS*X|PT*VP)(?:XT*VP)*(?:S|XT*VV)|PT*VV)E"
EMBEDDED = re.compile(rf"B(?:T{REBER}T|P{REBER}P)E")


def test_reber_regex_sanity():
    for good in ["BTXSE", "BPVVE", "BTSSXXTVVE", "BPTVPSE", "BTXXVPSE"]:
        assert re.fullmatch(REBER, good), good
    for bad in ["BTSE", "BPVE", "BTXXE", "BE"]:
        assert not re.fullmatch(REBER, bad), bad


def test_embedded_reber_strings_follow_grammar():
    strings = embedded_reber(300, seed=0)
    assert len(strings) == 300
    for s in strings:
        assert EMBEDDED.fullmatch(s), s
        assert is_embedded_reber(s)
    assert {s[1] for s in strings} == {"T", "P"}
    assert len(set(strings)) > 50  # a variety of strings, not one repeated
    assert embedded_reber(20, seed=5) == embedded_reber(20, seed=5)


def _reber_strings(max_len):
    """All Reber strings of length <= max_len, enumerated from the pieces of the REBER regex:
    B, a head (T S* X | P T* V P), any number of loops X T* V P, a tail (S | X T* V V), E;
    or the short form B P T* V V E."""
    out = set()
    heads = ["T" + "S" * a + "X" for a in range(max_len)] + ["P" + "T" * b + "VP" for b in range(max_len)]
    loops = ["X" + "T" * c + "VP" for c in range(max_len)]
    tails = ["S"] + ["X" + "T" * d + "VV" for d in range(max_len)]

    def grow(body):
        for tail in tails:
            if len(body) + len(tail) + 2 <= max_len:
                out.add("B" + body + tail + "E")
        for loop in loops:
            if len(body) + len(loop) + 3 <= max_len:
                grow(body + loop)

    for head in heads:
        grow(head)
    out.update("BP" + "T" * b + "VVE" for b in range(max_len - 4))
    return out


MAX_LEN = 18
ALL_EMBEDDED = {"B" + a + r + a + "E" for r in _reber_strings(MAX_LEN - 4) for a in "TP"}
ALL_PREFIXES = {s[:k] for s in ALL_EMBEDDED for k in range(1, len(s) + 1)}


def test_reber_enumeration_matches_regex():
    assert len(ALL_EMBEDDED) > 100
    assert all(EMBEDDED.fullmatch(s) for s in ALL_EMBEDDED)


def test_reber_next_symbols_exact_against_enumeration():
    # The shortest completion of any viable prefix has at most 7 symbols, so for prefixes of
    # length <= MAX_LEN - 7 the enumerated strings decide viability exactly.
    checked = 0
    for s in embedded_reber(200, seed=1):
        steps = reber_next_symbols(s)
        assert len(steps) == len(s) and steps[-1] == set()
        for i in range(min(len(s) - 1, MAX_LEN - 8)):
            for symbol in "BTSXPVE":
                viable = s[:i + 1] + symbol in ALL_PREFIXES
                assert (symbol in steps[i]) == viable, (s[:i + 1], symbol)
                checked += 1
    assert checked > 1000
    # the decisive prediction: before the final E only the outer symbol is allowed
    assert reber_next_symbols("BT" + "BTXSE" + "TE")[-3] == {"T"}
    assert reber_next_symbols("BP" + "BTXSE" + "PE")[-3] == {"P"}


def test_reber_errors():
    with pytest.raises(ValueError, match="position 3"):
        reber_next_symbols("BTBB")
    with pytest.raises(ValueError, match="position 7"):
        reber_next_symbols("BTBTXSEPE")  # outer symbols differ
    assert not is_embedded_reber("BTBTXSE")  # incomplete
    assert not is_embedded_reber("")
    with pytest.raises(TypeError):
        reber_next_symbols(123)
    with pytest.raises(ValueError, match="n must be >= 1"):
        embedded_reber(0)
