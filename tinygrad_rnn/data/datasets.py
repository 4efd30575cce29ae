"""Bundled datasets, run-time corpora and synthetic benchmark tasks. Nothing is downloaded.

Shipped files (``tinygrad_rnn/data/datasets_data/``, built by the scripts in ``data/``, provenance in
``data/README.md``):
  * :func:`names`     - lowercase US first names (SSA baby names, public domain).
  * :func:`surnames`  - (surname, language) pairs from Faker's last-name lists (MIT).
  * :func:`sunspots`  - yearly mean sunspot numbers 1700-2008 (NOAA/NGDC, public domain).

Read at run time: :func:`python_source` (the interpreter's own standard library), :func:`load_text`.

Synthetic tasks, reproducible from a seed: :func:`adding_problem`, :func:`copy_task`,
:func:`embedded_reber` (with :func:`reber_next_symbols` for evaluation).
"""
from __future__ import annotations

import csv
import io
import math
import os
import sysconfig
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "names",
    "surnames",
    "sunspots",
    "python_source",
    "load_text",
    "adding_problem",
    "copy_task",
    "copy_task_baseline",
    "embedded_reber",
    "reber_next_symbols",
    "is_embedded_reber",
]


def _read_bundled(filename: str) -> str:
    return (resources.files("tinygrad_rnn.data") / "datasets_data" / filename).read_text(encoding="ascii")


def _check_count(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# ----------------------------------------------------------------------------------------------
# Bundled files
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _names() -> tuple[str, ...]:
    return tuple(line for line in _read_bundled("names.txt").splitlines() if line)


def names() -> list[str]:
    """Lowercase US first names (``[a-z]+``, unique, sorted alphabetically).

    Every name the US Social Security Administration recorded for at least 100 babies in total over
    1880-2017 (both sexes pooled): 36,719 names. Returns a new list on each call.
    """
    return list(_names())


@lru_cache(maxsize=None)
def _surnames() -> tuple[tuple[str, str], ...]:
    rows = list(csv.reader(io.StringIO(_read_bundled("surnames.csv"))))
    return tuple((surname, language) for surname, language in rows[1:])


def surnames() -> list[tuple[str, str]]:
    """``(surname, language)`` pairs for sequence classification, sorted by (language, surname).

    Surnames are lowercase ASCII ``[a-z]+`` (diacritics folded), from Faker's Latin-script locales
    for 11 languages; a surname listed under two or more languages is dropped, so each surname has
    exactly one label. Classes are unbalanced (Polish is the largest).
    """
    return list(_surnames())


def sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Yearly mean sunspot numbers: ``(years int64 (309,), values float64 (309,))`` for 1700-2008."""
    rows = list(csv.reader(io.StringIO(_read_bundled("sunspots.csv"))))[1:]
    years = np.asarray([int(year) for year, _ in rows], dtype=np.int64)
    values = np.asarray([float(value) for _, value in rows], dtype=np.float64)
    return years, values


# ----------------------------------------------------------------------------------------------
# Text read at run time
# ----------------------------------------------------------------------------------------------


def _stdlib_py_files(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(root):
        # prune in place so os.walk never descends into third-party packages
        subdirs[:] = [d for d in subdirs if d not in ("site-packages", "dist-packages")]
        found.extend(Path(directory) / f for f in files if f.endswith(".py"))
    return found


def python_source(max_chars: int | None = None) -> str:
    """A large character corpus: the running interpreter's standard-library ``.py`` files.

    Files under ``sysconfig.get_paths()["stdlib"]`` are read in sorted order of their relative
    paths, skipping ``site-packages``/``dist-packages`` (installed third-party code varies between
    machines) and any file that cannot be read or is not valid UTF-8. The texts are concatenated,
    each followed by ``"\\n"``; ``max_chars`` keeps only the first ``max_chars`` characters (and stops
    reading early). The content depends on the Python version but is fixed for a given install.
    """
    if max_chars is not None:
        max_chars = _check_count("max_chars", max_chars)
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(_stdlib_py_files(root), key=lambda p: p.relative_to(root).parts)
    pieces: list[str] = []
    total = 0
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pieces.append(text + "\n")
        total += len(text) + 1
        if max_chars is not None and total >= max_chars:
            break
    if not pieces:
        raise FileNotFoundError(f"no readable .py files found under the standard library directory {root}")
    corpus = "".join(pieces)
    return corpus if max_chars is None else corpus[:max_chars]


def load_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a whole text file (e.g. a corpus for a character model).

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``ValueError`` (naming the path) if it
    is a directory, is empty, or cannot be decoded with ``encoding``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"text file not found: {path}")
    if path.is_dir():
        raise ValueError(f"expected a text file, got a directory: {path}")
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"cannot decode {path} as {encoding}: bad byte at offset {err.start}") from err
    if not text:
        raise ValueError(f"text file is empty: {path}")
    return text


# ----------------------------------------------------------------------------------------------
# Synthetic long-range tasks
# ----------------------------------------------------------------------------------------------


def adding_problem(n: int, T: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Le et al. 2015; Arjovsky et al. 2016).

    ``x`` float64 ``(n, T, 2)``: channel 0 holds ``T`` values drawn from U[0, 1); channel 1 is a
    marker that is 1 at exactly two steps, ``i`` drawn uniformly from ``[0, T//2)`` and ``j`` from
    ``[T//2, T)``, and 0 elsewhere. Target ``y`` float64 ``(n,)``: ``y = x[i, 0] + x[j, 0]``.
    Predicting the constant 1 gives mean squared error 1/6 (the variance of a sum of two U[0,1)).
    """
    n = _check_count("n", n)
    T = _check_count("T", T, minimum=2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, T))
    first = rng.integers(0, T // 2, size=n)
    second = rng.integers(T // 2, T, size=n)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = values[rows, first] + values[rows, second]
    return x, y


COPY_SYMBOLS = 10  # how many symbols to remember
COPY_BLANK = 0
COPY_DELIMITER = 9


def copy_task(n: int, T: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The copy-memory task (Arjovsky et al. 2016), sequences of length ``T + 20``.

    Alphabet: 0 = blank, 1..8 = data symbols, 9 = delimiter. For each of the ``n`` rows:

        x = s_1..s_10, then T-1 blanks, then the delimiter, then 10 blanks
        y = T+10 blanks, then s_1..s_10

    with ``s_k`` uniform over 1..8. Both are int64 ``(n, T + 20)``. A model that outputs blanks and
    then guesses uniformly over the 8 symbols gets cross-entropy :func:`copy_task_baseline` (T).
    """
    n = _check_count("n", n)
    T = _check_count("T", T)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(1, 9, size=(n, COPY_SYMBOLS))
    length = T + 2 * COPY_SYMBOLS
    x = np.full((n, length), COPY_BLANK, dtype=np.int64)
    y = np.full((n, length), COPY_BLANK, dtype=np.int64)
    x[:, :COPY_SYMBOLS] = symbols
    x[:, COPY_SYMBOLS + T - 1] = COPY_DELIMITER
    y[:, -COPY_SYMBOLS:] = symbols
    return x, y


def copy_task_baseline(T: int) -> float:
    """Memoryless baseline cross-entropy per step of the copy task: ``10 ln 8 / (T + 20)`` nats."""
    T = _check_count("T", T)
    return COPY_SYMBOLS * math.log(8) / (T + 2 * COPY_SYMBOLS)


# The Reber grammar as a finite automaton: state -> {symbol: next state}. State 0 is the start
# (expects B), state 6 expects the final E, state 7 is the end.
#   1 -T-> 2, 1 -P-> 3;  2 -S-> 2, 2 -X-> 4;  3 -T-> 3, 3 -V-> 5;  4 -X-> 3, 4 -S-> 6;  5 -P-> 4, 5 -V-> 6
_REBER = {
    0: {"B": 1},
    1: {"T": 2, "P": 3},
    2: {"S": 2, "X": 4},
    3: {"T": 3, "V": 5},
    4: {"X": 3, "S": 6},
    5: {"P": 4, "V": 6},
    6: {"E": 7},
    7: {},
}
REBER_ALPHABET = "BTSXPVE"


def _reber_string(rng: np.random.Generator) -> str:
    state, out = 0, []
    while _REBER[state]:
        options = sorted(_REBER[state])  # sorted so the seed alone fixes the string
        symbol = options[rng.integers(len(options))]
        out.append(symbol)
        state = _REBER[state][symbol]
    return "".join(out)


def embedded_reber(n: int, seed: int | None = None) -> list[str]:
    """``n`` strings of the embedded Reber grammar (Hochreiter & Schmidhuber 1997).

    Each is ``"B" + a + r + a + "E"`` where ``a`` is ``"T"`` or ``"P"`` (equally likely) and ``r`` is
    a Reber string (B ... E) produced by walking the automaton above, taking each branch with
    probability 1/2. Predicting the ``a`` before the final ``E`` needs memory of the second symbol.
    """
    n = _check_count("n", n)
    rng = np.random.default_rng(seed)
    strings = []
    for _ in range(n):
        outer = "TP"[rng.integers(2)]
        strings.append("B" + outer + _reber_string(rng) + outer + "E")
    return strings


def reber_next_symbols(s: str) -> list[set[str]]:
    """For each position ``i`` of an embedded Reber string (or prefix), the set of symbols that may
    follow ``s[:i+1]``; the entry after the final ``E`` is the empty set.

    A prediction at position ``i`` is "correct" when the predicted symbol is in this set, the usual
    way to score a net on the task. Raises ``ValueError`` at the first symbol the grammar forbids.
    """
    if not isinstance(s, str):
        raise TypeError(f"s must be a str, got {type(s).__name__}")
    result: list[set[str]] = []
    # phase: 0 expect B, 1 expect T|P, 2 inside the inner Reber string, 3 expect outer symbol, 4 expect E, 5 done
    phase, outer, state = 0, "", 0
    for i, ch in enumerate(s):
        if phase == 0 and ch == "B":
            phase, allowed = 1, {"T", "P"}
        elif phase == 1 and ch in "TP":
            phase, outer, allowed = 2, ch, {"B"}
        elif phase == 2 and ch in _REBER[state]:
            state = _REBER[state][ch]
            if _REBER[state]:
                allowed = set(_REBER[state])
            else:
                phase, allowed = 3, {outer}
        elif phase == 3 and ch == outer:
            phase, allowed = 4, {"E"}
        elif phase == 4 and ch == "E":
            phase, allowed = 5, set()
        else:
            raise ValueError(f"symbol {ch!r} at position {i} of {s!r} is not allowed by the embedded Reber grammar")
        result.append(allowed)
    return result


def is_embedded_reber(s: str) -> bool:
    """True when ``s`` is a complete embedded Reber string."""
    try:
        steps = reber_next_symbols(s)
    except (ValueError, TypeError):
        return False
    return bool(steps) and steps[-1] == set()
