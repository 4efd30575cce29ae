"""Text and sequence data utilities: tokenizers, padding and mini-batch iterators.

Everything here is plain NumPy: token ids come back as ``int64`` arrays and batches as NumPy arrays,
ready to be wrapped in a ``Tensor`` by the caller.

Contents
  * :class:`CharTokenizer`  - one id per character, optional special tokens such as ``"<eos>"``.
  * :class:`WordTokenizer`  - regex word split, frequency-ranked vocabulary, ``<pad>`` = 0, ``<unk>`` = 1.
  * :func:`pad`             - Keras-style padding/truncation of id sequences to a common length.
  * :func:`pad_batch`       - post-pad variable-length sequences (ids or ``(L, F)`` features).
  * :func:`lm_batches`      - truncated-BPTT language-model chunks whose rows continue across chunks.
  * :func:`batches`         - seeded, shuffled mini-batches over aligned arrays.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CharTokenizer",
    "WordTokenizer",
    "pad",
    "pad_batch",
    "lm_batches",
    "num_lm_batches",
    "batches",
]

UNK = "<unk>"
PAD = "<pad>"
EOS = "<eos>"


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return int(value)


def _as_id_array(ids: Any, name: str = "ids") -> np.ndarray:
    """Coerce ``ids`` to a 1-D int64 array, refusing floats/bools/strings instead of truncating them."""
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array.astype(np.int64, copy=False)


# ----------------------------------------------------------------------------------------------
# Character tokenizer
# ----------------------------------------------------------------------------------------------


class CharTokenizer:
    """Map each character to an integer id.

    Vocabulary order (deterministic): the ``specials`` in the order given, then ``"<unk>"`` when
    ``unknown="unk"`` (unless already among the specials), then every distinct character seen by
    :meth:`fit`, sorted by code point. So with ``specials=("<eos>",)`` the end token is id 0.

    * ``unknown="error"``: encoding a character not seen in ``fit`` raises ``ValueError`` naming it.
    * ``unknown="unk"``: such characters map to the ``"<unk>"`` id.
    * ``lower=True``: text is lower-cased in :meth:`fit` and :meth:`encode` (``"Anna"`` and ``"anna"``
      encode alike; the vocabulary has no capitals).

    Special tokens are never produced from text by :meth:`encode` (the string ``"<eos>"`` in the
    text is just five characters); append them by id, e.g. ``encode(name, add_eos=True)``.
    :meth:`decode` renders specials (``"<unk>"`` included) as ``""`` when ``skip_specials=True``
    (the default, handy for sampled names ending in ``<eos>``) or as their own string otherwise.
    """

    def __init__(self, specials: Sequence[str] = (), unknown: str = "error", lower: bool = False) -> None:
        if not isinstance(lower, bool):
            raise TypeError(f"lower must be a bool, got {type(lower).__name__}")
        self.lower = lower
        if isinstance(specials, str):
            raise TypeError(f"specials must be a sequence of strings, got the string {specials!r}")
        specials = tuple(specials)
        for token in specials:
            if not isinstance(token, str) or token == "":
                raise ValueError(f"specials must be non-empty strings, got {token!r}")
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials must be unique, got {specials}")
        if unknown not in ("error", "unk"):
            raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
        self.specials: tuple[str, ...] = specials
        self.unknown = unknown
        self.chars: list[str] | None = None  # set by fit
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}

    # -- building ---------------------------------------------------------------------------
    def _special_tokens(self) -> list[str]:
        tokens = list(self.specials)
        if self.unknown == "unk" and UNK not in tokens:
            tokens.append(UNK)
        return tokens

    def fit(self, text: str | Iterable[str]) -> CharTokenizer:
        """Build the vocabulary from a string or an iterable of strings (e.g. a list of names)."""
        if isinstance(text, str):
            seen = set(text.lower() if self.lower else text)
        else:
            seen = set()
            for piece in text:
                if not isinstance(piece, str):
                    raise TypeError(f"text must be a str or an iterable of str, found {type(piece).__name__}")
                seen.update(piece.lower() if self.lower else piece)
        return self._build(sorted(seen))

    def _build(self, chars: list[str]) -> CharTokenizer:
        specials = self._special_tokens()
        clash = sorted(set(chars) & set(specials))
        if clash:
            raise ValueError(f"special token(s) {clash} also occur as characters of the text")
        self.chars = list(chars)
        self._itos = specials + self.chars
        self._stoi = {token: i for i, token in enumerate(self._itos)}
        return self

    def _require_fitted(self) -> None:
        if self.chars is None:
            raise RuntimeError("CharTokenizer is not fitted: call fit(text) first")

    # -- queries ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        self._require_fitted()
        return len(self._itos)

    @property
    def vocab(self) -> list[str]:
        """All tokens in id order (specials first)."""
        self._require_fitted()
        return list(self._itos)

    def token_to_id(self, token: str) -> int:
        """Id of a character or special token; ``ValueError`` if it is not in the vocabulary."""
        self._require_fitted()
        if token not in self._stoi:
            raise ValueError(f"token {token!r} is not in the vocabulary")
        return self._stoi[token]

    def id_to_token(self, index: int) -> str:
        self._require_fitted()
        if not 0 <= index < len(self._itos):
            raise ValueError(f"id must be in [0, {len(self._itos)}), got {index}")
        return self._itos[index]

    @property
    def eos_id(self) -> int:
        """Id of ``"<eos>"``; ``ValueError`` if the tokenizer was built without it."""
        if EOS not in self.specials:
            raise ValueError(f"this tokenizer has no {EOS!r} special token (specials={self.specials})")
        return self.token_to_id(EOS)

    @property
    def unk_id(self) -> int:
        if self.unknown != "unk" and UNK not in self.specials:
            raise ValueError("this tokenizer has no '<unk>' token (built with unknown='error')")
        return self.token_to_id(UNK)

    # -- encode / decode --------------------------------------------------------------------
    def encode(self, text: str | Sequence[str], add_eos: bool = False) -> np.ndarray | list[np.ndarray]:
        """``text`` -> int64 ids, one per character (plus ``eos_id`` at the end if ``add_eos``);
        a list of texts gives a list of id arrays (e.g. for ``Sequential.fit``)."""
        self._require_fitted()
        if isinstance(text, (list, tuple)):
            return [self.encode(t, add_eos) for t in text]
        if not isinstance(text, str):
            raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
        if self.lower:
            text = text.lower()
        ids = []
        for position, ch in enumerate(text):
            index = self._stoi.get(ch) if ch not in self.specials else None
            if index is None:
                if self.unknown == "error":
                    raise ValueError(f"character {ch!r} at position {position} was not seen in fit()")
                index = self._stoi[UNK]
            ids.append(index)
        if add_eos:
            ids.append(self.eos_id)
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray, skip_specials: bool = True) -> str:
        """int ids -> string; specials become ``""`` (``skip_specials``) or their own string."""
        self._require_fitted()
        array = _as_id_array(list(ids) if not isinstance(ids, np.ndarray) else ids)
        n_special = len(self._itos) - len(self.chars)
        out = []
        for index in array.tolist():
            if not 0 <= index < len(self._itos):
                raise ValueError(f"id {index} is out of range for vocab_size {len(self._itos)}")
            if index < n_special and skip_specials:
                continue
            out.append(self._itos[index])
        return "".join(out)

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able description; ``CharTokenizer.from_dict(t.to_dict())`` rebuilds ``t`` exactly."""
        self._require_fitted()
        return {"type": "CharTokenizer", "specials": list(self.specials), "unknown": self.unknown,
                "chars": list(self.chars), "lower": self.lower}

    @classmethod
    def from_dict(cls, state: dict) -> CharTokenizer:
        if not isinstance(state, dict) or state.get("type") != "CharTokenizer":
            raise ValueError(f"expected a dict with type 'CharTokenizer', got {state!r:.80}")
        chars = state.get("chars")
        if not isinstance(chars, list) or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("state['chars'] must be a list of single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("state['chars'] contains duplicates")
        tokenizer = cls(specials=state.get("specials", ()), unknown=state.get("unknown", "error"),
                        lower=bool(state.get("lower", False)))
        return tokenizer._build(list(chars))

    def __repr__(self) -> str:
        size = len(self._itos) if self.chars is not None else "unfitted"
        return f"CharTokenizer(vocab_size={size}, specials={self.specials}, unknown={self.unknown!r})"


# ----------------------------------------------------------------------------------------------
# Word tokenizer
# ----------------------------------------------------------------------------------------------

#: A word is a run of letters/digits/underscores, optionally with apostrophe parts ("don't");
#: every other non-space character is a token of its own ("," "." "!"). Whitespace separates.
WORD_PATTERN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


class WordTokenizer:
    """Split text into words with :data:`WORD_PATTERN` and map them to ids.

    Ids: ``<pad>`` = 0, ``<unk>`` = 1, then words by decreasing frequency in :meth:`fit`, ties broken
    alphabetically. Words seen fewer than ``min_freq`` times are left out; ``max_vocab`` caps the
    total ``vocab_size`` (the two reserved tokens included). ``lower=True`` lowercases before
    splitting. Words not in the vocabulary encode to ``<unk>``.
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, lower: bool = True, max_vocab: int | None = None, min_freq: int = 1) -> None:
        if max_vocab is not None:
            max_vocab = _check_positive_int("max_vocab", max_vocab)
            if max_vocab < 2:
                raise ValueError(f"max_vocab must be >= 2 (room for <pad> and <unk>), got {max_vocab}")
        self.lower = bool(lower)
        self.max_vocab = max_vocab
        self.min_freq = _check_positive_int("min_freq", min_freq)
        self.words: list[str] | None = None
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}

    def tokenize(self, text: str) -> list[str]:
        """The word split used by fit and encode."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return WORD_PATTERN.findall(text.lower() if self.lower else text)

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Count words over an iterable of texts (a single string is refused, to avoid fitting on chars)."""
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not a single str (wrap it in a list)")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.tokenize(text))
        ranked = sorted((w for w, c in counts.items() if c >= self.min_freq and w not in (PAD, UNK)),
                        key=lambda w: (-counts[w], w))
        if self.max_vocab is not None:
            ranked = ranked[: self.max_vocab - 2]
        return self._build(ranked)

    def _build(self, words: list[str]) -> WordTokenizer:
        self.words = list(words)
        self._itos = [PAD, UNK] + self.words
        self._stoi = {w: i for i, w in enumerate(self._itos)}
        return self

    def _require_fitted(self) -> None:
        if self.words is None:
            raise RuntimeError("WordTokenizer is not fitted: call fit(texts) first")

    @property
    def vocab_size(self) -> int:
        self._require_fitted()
        return len(self._itos)

    @property
    def vocab(self) -> list[str]:
        self._require_fitted()
        return list(self._itos)

    def token_to_id(self, word: str) -> int:
        """Id of ``word`` (``unk_id`` if it is not in the vocabulary)."""
        self._require_fitted()
        return self._stoi.get(word, self.unk_id)

    def encode(self, text: str | Sequence[str]) -> np.ndarray | list[np.ndarray]:
        """``text`` -> int64 word ids; a list of texts gives a list of id arrays."""
        self._require_fitted()
        if isinstance(text, (list, tuple)):
            return [self.encode(t) for t in text]
        if not isinstance(text, str):
            raise TypeError(f"text must be a str or a list of str, got {type(text).__name__}")
        return np.asarray([self._stoi.get(w, self.unk_id) for w in self.tokenize(text)], dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """Ids -> words joined by single spaces; ``<pad>`` ids are skipped, ``<unk>`` shows as ``<unk>``."""
        self._require_fitted()
        array = _as_id_array(list(ids) if not isinstance(ids, np.ndarray) else ids)
        words = []
        for index in array.tolist():
            if not 0 <= index < len(self._itos):
                raise ValueError(f"id {index} is out of range for vocab_size {len(self._itos)}")
            if index != self.pad_id:
                words.append(self._itos[index])
        return " ".join(words)

    def to_dict(self) -> dict:
        self._require_fitted()
        return {"type": "WordTokenizer", "lower": self.lower, "max_vocab": self.max_vocab,
                "min_freq": self.min_freq, "words": list(self.words)}

    @classmethod
    def from_dict(cls, state: dict) -> WordTokenizer:
        if not isinstance(state, dict) or state.get("type") != "WordTokenizer":
            raise ValueError(f"expected a dict with type 'WordTokenizer', got {state!r:.80}")
        words = state.get("words")
        if not isinstance(words, list) or any(not isinstance(w, str) for w in words):
            raise ValueError("state['words'] must be a list of strings")
        if len(set(words)) != len(words) or PAD in words or UNK in words:
            raise ValueError("state['words'] must be unique and exclude '<pad>'/'<unk>'")
        tokenizer = cls(lower=state.get("lower", True), max_vocab=state.get("max_vocab"),
                        min_freq=state.get("min_freq", 1))
        return tokenizer._build(words)

    def __repr__(self) -> str:
        size = len(self._itos) if self.words is not None else "unfitted"
        return f"WordTokenizer(vocab_size={size}, lower={self.lower})"


# ----------------------------------------------------------------------------------------------
# Padding
# ----------------------------------------------------------------------------------------------


def pad(sequences: Sequence[Sequence[int] | np.ndarray], maxlen: int | None = None, padding: str = "post",
        truncating: str = "post", value: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pad/truncate integer sequences to one length (Keras ``pad_sequences`` semantics).

    ``maxlen=None`` uses the longest sequence. A longer sequence loses items at its end
    (``truncating="post"``) or its start (``"pre"``); a shorter one is filled with ``value`` after
    (``padding="post"``) or before (``"pre"``) its items. Note Keras defaults to ``"pre"``; here the
    default is ``"post"`` so that ``lengths`` marks the valid prefix, as packed RNN inputs expect.

    Returns ``(padded int64 (N, maxlen), lengths int64 (N,))`` with ``lengths[i] = min(len(s_i), maxlen)``.
    """
    if padding not in ("post", "pre"):
        raise ValueError(f"padding must be 'post' or 'pre', got {padding!r}")
    if truncating not in ("post", "pre"):
        raise ValueError(f"truncating must be 'post' or 'pre', got {truncating!r}")
    if isinstance(sequences, str) or (isinstance(sequences, np.ndarray) and sequences.ndim < 2
                                      and sequences.dtype != object):
        raise TypeError("sequences must be a sequence of integer sequences (e.g. a list of arrays)")
    arrays = [_as_id_array(s, name=f"sequences[{i}]") for i, s in enumerate(sequences)]
    if maxlen is None:
        maxlen = max((len(a) for a in arrays), default=0)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"maxlen must be None or an int >= 0, got {maxlen!r}")
    maxlen = int(maxlen)
    out = np.full((len(arrays), maxlen), value, dtype=np.int64)
    lengths = np.zeros(len(arrays), dtype=np.int64)
    for i, seq in enumerate(arrays):
        kept = (seq[:maxlen] if truncating == "post" else seq[len(seq) - maxlen:]) if len(seq) > maxlen else seq
        n = len(kept)
        lengths[i] = n
        if n == 0:
            continue
        if padding == "post":
            out[i, :n] = kept
        else:
            out[i, maxlen - n:] = kept
    return out, lengths


def pad_batch(sequences: Sequence[Any], value: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """Post-pad variable-length sequences to the longest one.

    Each item is an array of shape ``(L_i,)`` (token ids) or ``(L_i, F)`` (feature vectors, same ``F``).
    Returns ``(padded (N, L_max) or (N, L_max, F), lengths int64 (N,))``; the padded dtype is the
    common dtype of the inputs, positions past ``lengths[i]`` hold ``value``.
    """
    if isinstance(sequences, (str, bytes)):
        raise TypeError("sequences must be a sequence of arrays, not a string")
    arrays = [np.asarray(s) for s in sequences]
    if not arrays:
        raise ValueError("pad_batch needs at least one sequence, got an empty list")
    ndims = {a.ndim for a in arrays}
    if len(ndims) != 1 or ndims.pop() not in (1, 2):
        raise ValueError(f"sequences must all be 1-D (L,) or all 2-D (L, F); got shapes {[a.shape for a in arrays]}")
    features = {a.shape[1:] for a in arrays}
    if len(features) != 1:
        raise ValueError(f"all sequences need the same feature size, got shapes {[a.shape for a in arrays]}")
    dtype = np.result_type(*arrays)
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise TypeError(f"sequences must be numeric, got dtype {dtype}")
    lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
    out = np.full((len(arrays), int(lengths.max()), *features.pop()), value, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out, lengths


# ----------------------------------------------------------------------------------------------
# Language-model batches (truncated BPTT)
# ----------------------------------------------------------------------------------------------


def num_lm_batches(n_tokens: int, batch_size: int, seq_len: int, drop_last: bool = False) -> int:
    """Number of chunks :func:`lm_batches` yields for a corpus of ``n_tokens`` ids.

    Each of the ``batch_size`` streams holds ``S = n_tokens // batch_size`` ids, of which ``S - 1``
    have a next-token target; that gives ``ceil((S-1)/seq_len)`` chunks (``floor`` with ``drop_last``).
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    seq_len = _check_positive_int("seq_len", seq_len)
    usable = n_tokens // batch_size - 1
    if usable < seq_len:
        raise ValueError(
            f"corpus too short: {n_tokens} tokens give streams of {n_tokens // batch_size} ids at batch_size="
            f"{batch_size}, need at least seq_len+1 = {seq_len + 1}")
    return usable // seq_len if drop_last else math.ceil(usable / seq_len)


def lm_batches(ids: Sequence[int] | np.ndarray, batch_size: int, seq_len: int,
               drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x, y)`` chunks for truncated backpropagation through time.

    The corpus is cut into ``batch_size`` contiguous streams of ``S = len(ids) // batch_size`` ids
    (the remainder at the end is dropped): ``stream[b] = ids[b*S:(b+1)*S]``. Chunk ``k`` is

        x[b, t] = stream[b][k*seq_len + t],   y[b, t] = stream[b][k*seq_len + t + 1]

    so both are **batch-major** ``(batch_size, seq_len)`` (use ``x.T`` for time-major RNN input),
    ``y`` is ``x`` shifted by one, and row ``b`` of chunk ``k+1`` continues row ``b`` of chunk ``k``:
    the hidden state may be carried over (detached) between chunks. The last chunk is shorter when
    ``S - 1`` is not a multiple of ``seq_len``, unless ``drop_last=True`` drops it.
    Arguments are checked when called, not on the first ``next``.
    """
    array = _as_id_array(ids)
    total = num_lm_batches(len(array), batch_size, seq_len, drop_last)
    stream_len = len(array) // batch_size
    streams = array[: stream_len * batch_size].reshape(batch_size, stream_len)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for k in range(total):
            start = k * seq_len
            stop = min(start + seq_len, stream_len - 1)
            yield streams[:, start:stop].copy(), streams[:, start + 1: stop + 1].copy()

    return chunks()


# ----------------------------------------------------------------------------------------------
# Shuffled mini-batches
# ----------------------------------------------------------------------------------------------


def batches(*arrays: Any, batch_size: int, shuffle: bool = True,
            seed: int | np.random.Generator | None = None,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples ``(a[idx], b[idx], ...)`` of aligned mini-batches along the first axis.

    With ``shuffle`` the order is a permutation drawn from ``np.random.default_rng(seed)`` (never
    NumPy's global state): the same int ``seed`` gives the same batches; pass one Generator across
    epochs to get a fresh order each epoch. The last batch may be smaller unless ``drop_last``.
    A tuple is yielded even for a single array. Arguments are checked when called.
    """
    batch_size = _check_positive_int("batch_size", batch_size)
    if not arrays:
        raise ValueError("batches needs at least one array")
    arrays = tuple(np.asarray(a) for a in arrays)
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"arrays[{i}] must have a first axis, got a scalar")
    n = len(arrays[0])
    lengths = [len(a) for a in arrays]
    if any(length != n for length in lengths):
        raise ValueError(f"all arrays must have the same first-axis length, got {lengths}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n

    def generate() -> Iterator[tuple[np.ndarray, ...]]:
        for start in range(0, stop, batch_size):
            idx = order[start: start + batch_size]
            yield tuple(a[idx] for a in arrays)

    return generate()
