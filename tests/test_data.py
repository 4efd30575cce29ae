"""Tests for tinygrad_rnn.data: tokenizers, padding and batch iterators."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn.data import (
    CharTokenizer,
    WordTokenizer,
    batches,
    lm_batches,
    num_lm_batches,
    pad,
    pad_batch,
)

# ---------------------------------------------------------------------------------------------
# CharTokenizer
# ---------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_char_roundtrip_any_text(text):
    tok = CharTokenizer().fit(text)
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert tok.decode(ids) == text
    assert tok.vocab_size == len(set(text))


def test_char_vocab_is_sorted_and_deterministic():
    a = CharTokenizer().fit("hello world")
    b = CharTokenizer().fit(["world", " ", "hello"])
    assert a.vocab == b.vocab == sorted(set("hello world"))
    # ids follow the sorted order
    assert [a.token_to_id(c) for c in sorted(set("hello world"))] == list(range(a.vocab_size))


def test_char_specials_come_first_and_decode_rules():
    tok = CharTokenizer(specials=("<eos>", "<bos>")).fit(["ann", "bob"])
    assert tok.eos_id == 0 and tok.token_to_id("<bos>") == 1
    assert tok.vocab[2:] == ["a", "b", "n", "o"]
    ids = tok.encode("bob", add_eos=True)
    assert ids[-1] == tok.eos_id and len(ids) == 4
    assert tok.decode(ids) == "bob"  # specials skipped by default
    assert tok.decode(ids, skip_specials=False) == "bob<eos>"
    with_bos = np.concatenate([[tok.token_to_id("<bos>")], ids])
    assert tok.decode(with_bos, skip_specials=False) == "<bos>bob<eos>"


def test_char_special_string_in_text_is_plain_characters():
    tok = CharTokenizer(specials=("<eos>",)).fit("<eos>abc")
    ids = tok.encode("<eos>")
    assert len(ids) == 5 and tok.eos_id not in ids


def test_char_unknown_error_names_character():
    tok = CharTokenizer().fit("abc")
    with pytest.raises(ValueError, match=r"'z'.*position 2"):
        tok.encode("abz")


def test_char_unknown_unk_maps_to_unk_id():
    tok = CharTokenizer(specials=("<eos>",), unknown="unk").fit("abc")
    assert tok.unk_id == 1  # after the user specials
    ids = tok.encode("azb")
    assert ids.tolist() == [tok.token_to_id("a"), tok.unk_id, tok.token_to_id("b")]
    assert tok.decode(ids, skip_specials=False) == "a<unk>b"
    assert tok.decode(ids) == "ab"


def test_char_no_eos_or_unk_errors():
    tok = CharTokenizer().fit("abc")
    with pytest.raises(ValueError, match="<eos>"):
        tok.eos_id
    with pytest.raises(ValueError, match="<eos>"):
        tok.encode("a", add_eos=True)
    with pytest.raises(ValueError, match="unk"):
        tok.unk_id
    with pytest.raises(ValueError, match="'q'"):
        tok.token_to_id("q")


def test_char_to_dict_from_dict_roundtrip_through_json():
    tok = CharTokenizer(specials=("<eos>",), unknown="unk").fit("the quick brown fox")
    state = json.loads(json.dumps(tok.to_dict()))
    again = CharTokenizer.from_dict(state)
    assert again.vocab == tok.vocab
    assert again.unknown == "unk" and again.specials == ("<eos>",)
    text = "quick? fox"
    np.testing.assert_array_equal(again.encode(text), tok.encode(text))


def test_char_argument_errors():
    with pytest.raises(ValueError, match="unknown"):
        CharTokenizer(unknown="ignore")
    with pytest.raises(TypeError, match="specials"):
        CharTokenizer(specials="<eos>")
    with pytest.raises(ValueError, match="unique"):
        CharTokenizer(specials=("<a>", "<a>"))
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer(specials=("",))
    with pytest.raises(RuntimeError, match="fit"):
        CharTokenizer().encode("a")
    with pytest.raises(ValueError, match="also occur"):
        CharTokenizer(specials=(".",)).fit("a.b")
    tok = CharTokenizer().fit("ab")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, 2])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="integers"):
        tok.decode(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="str"):
        tok.encode([1])   # a list of texts is fine (encoded one by one); a list of ints is not
    with pytest.raises(TypeError, match="iterable of str"):
        CharTokenizer().fit(["a", 3])
    with pytest.raises(ValueError, match="CharTokenizer"):
        CharTokenizer.from_dict({"type": "WordTokenizer"})
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer.from_dict({"type": "CharTokenizer", "chars": ["ab"]})
    with pytest.raises(ValueError, match="duplicates"):
        CharTokenizer.from_dict({"type": "CharTokenizer", "chars": ["a", "a"]})


# ---------------------------------------------------------------------------------------------
# WordTokenizer
# ---------------------------------------------------------------------------------------------


def test_word_vocab_order_frequency_then_alphabetical():
    texts = ["b a c", "a b", "d c", "e"]
    tok = WordTokenizer().fit(texts)
    # counts: a=2, b=2, c=2, d=1, e=1 -> ties alphabetical
    assert tok.vocab == ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
    assert tok.pad_id == 0 and tok.unk_id == 1


def test_word_split_lower_and_punctuation():
    tok = WordTokenizer().fit(["Don't stop, NOW!"])
    assert tok.tokenize("Don't stop, NOW!") == ["don't", "stop", ",", "now", "!"]
    cased = WordTokenizer(lower=False)
    assert cased.tokenize("Hi hi") == ["Hi", "hi"]


def test_word_roundtrip_and_unknown():
    tok = WordTokenizer().fit(["the cat sat on the mat", "the dog"])
    ids = tok.encode("The cat ate the dog")
    assert ids.dtype == np.int64
    assert ids[2] == tok.unk_id
    assert tok.decode(ids) == "the cat <unk> the dog"
    padded, _ = pad([ids], maxlen=8)
    assert tok.decode(padded[0]) == "the cat <unk> the dog"  # pads skipped


def test_word_min_freq_and_max_vocab():
    texts = ["a a a b b c"]
    assert WordTokenizer(min_freq=2).fit(texts).vocab == ["<pad>", "<unk>", "a", "b"]
    tok = WordTokenizer(max_vocab=3).fit(texts)
    assert tok.vocab_size == 3 and tok.vocab[2] == "a"
    assert tok.encode("b").tolist() == [tok.unk_id]


def test_word_to_dict_roundtrip():
    tok = WordTokenizer(lower=False, min_freq=1).fit(["Hello there, hello"])
    again = WordTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.vocab == tok.vocab and again.lower is False
    np.testing.assert_array_equal(again.encode("Hello hello HELLO"), tok.encode("Hello hello HELLO"))


def test_word_argument_errors():
    with pytest.raises(TypeError, match="single str"):
        WordTokenizer().fit("a b c")
    with pytest.raises(ValueError, match="max_vocab"):
        WordTokenizer(max_vocab=1)
    with pytest.raises(ValueError, match="min_freq"):
        WordTokenizer(min_freq=0)
    with pytest.raises(TypeError, match="min_freq"):
        WordTokenizer(min_freq=1.5)
    with pytest.raises(RuntimeError, match="fit"):
        WordTokenizer().encode("a")
    tok = WordTokenizer().fit(["a"])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([3])
    with pytest.raises(ValueError, match="WordTokenizer"):
        WordTokenizer.from_dict({"type": "CharTokenizer"})
    with pytest.raises(ValueError, match="unique"):
        WordTokenizer.from_dict({"type": "WordTokenizer", "words": ["a", "a"]})


# ---------------------------------------------------------------------------------------------
# pad / pad_batch
# ---------------------------------------------------------------------------------------------

SEQS = [[1, 2, 3, 4, 5], [6, 7], []]


def test_pad_post_post():
    out, lengths = pad(SEQS, maxlen=3)
    assert out.dtype == np.int64 and out.shape == (3, 3)
    assert out.tolist() == [[1, 2, 3], [6, 7, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 2, 0]


def test_pad_pre_padding_pre_truncating():
    out, lengths = pad(SEQS, maxlen=3, padding="pre", truncating="pre", value=-1)
    assert out.tolist() == [[3, 4, 5], [-1, 6, 7], [-1, -1, -1]]
    assert lengths.tolist() == [3, 2, 0]


def test_pad_mixed_modes_and_default_maxlen():
    out, _ = pad(SEQS, maxlen=4, padding="pre", truncating="post")
    assert out.tolist() == [[1, 2, 3, 4], [0, 0, 6, 7], [0, 0, 0, 0]]
    out, _ = pad(SEQS, maxlen=4, padding="post", truncating="pre")
    assert out.tolist() == [[2, 3, 4, 5], [6, 7, 0, 0], [0, 0, 0, 0]]
    out, lengths = pad(SEQS)
    assert out.shape == (3, 5) and lengths.tolist() == [5, 2, 0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), max_size=8), min_size=1, max_size=6),
       st.integers(0, 10), st.sampled_from(["pre", "post"]), st.sampled_from(["pre", "post"]))
def test_pad_properties(seqs, maxlen, padding, truncating):
    out, lengths = pad(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
    assert out.shape == (len(seqs), maxlen)
    for row, length, seq in zip(out, lengths, seqs):
        assert length == min(len(seq), maxlen)
        kept = seq[:maxlen] if truncating == "post" else seq[max(len(seq) - maxlen, 0):]
        values = row[:length] if padding == "post" else row[maxlen - length:]
        fill = row[length:] if padding == "post" else row[:maxlen - length]
        assert values.tolist() == kept
        assert np.all(fill == 0)


def test_pad_errors():
    with pytest.raises(ValueError, match="padding"):
        pad(SEQS, padding="middle")
    with pytest.raises(ValueError, match="truncating"):
        pad(SEQS, truncating="both")
    with pytest.raises(ValueError, match="maxlen"):
        pad(SEQS, maxlen=-1)
    with pytest.raises(TypeError, match="integers"):
        pad([[1.5, 2.0]])
    with pytest.raises(TypeError, match="sequence of integer sequences"):
        pad(np.array([1, 2, 3]))


def test_pad_batch_ids_and_features():
    out, lengths = pad_batch([np.array([1, 2, 3]), np.array([4])], value=-7)
    assert out.tolist() == [[1, 2, 3], [4, -7, -7]] and lengths.tolist() == [3, 1]
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(4, 2)), rng.normal(size=(2, 2))]
    out, lengths = pad_batch(feats)
    assert out.shape == (2, 4, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out[0], feats[0])
    np.testing.assert_array_equal(out[1, :2], feats[1])
    assert np.all(out[1, 2:] == 0) and lengths.tolist() == [4, 2]


def test_pad_batch_errors():
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([])
    with pytest.raises(ValueError, match="feature size"):
        pad_batch([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="all be 1-D"):
        pad_batch([np.zeros(2), np.zeros((2, 1))])
    with pytest.raises(TypeError, match="numeric"):
        pad_batch([np.array(["a", "b"])])


# ---------------------------------------------------------------------------------------------
# lm_batches
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,batch_size,seq_len", [(103, 4, 5), (100, 3, 8), (50, 1, 7), (21, 2, 9)])
def test_lm_batches_streams_are_contiguous(n, batch_size, seq_len):
    corpus = np.random.default_rng(n).integers(0, 1000, size=n)
    chunks = list(lm_batches(corpus, batch_size, seq_len))
    assert len(chunks) == num_lm_batches(n, batch_size, seq_len)
    stream_len = n // batch_size
    for b in range(batch_size):
        xs = np.concatenate([x[b] for x, _ in chunks])
        ys = np.concatenate([y[b] for _, y in chunks])
        stream = corpus[b * stream_len:(b + 1) * stream_len]
        np.testing.assert_array_equal(xs, stream[:-1])  # every input position used once, in order
        np.testing.assert_array_equal(ys, stream[1:])
    for x, y in chunks:
        assert x.shape == y.shape and x.shape[0] == batch_size and 1 <= x.shape[1] <= seq_len
        assert x.dtype == np.int64
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    assert all(x.shape[1] == seq_len for x, _ in chunks[:-1])


def test_lm_batches_drop_last():
    corpus = np.arange(23)  # streams of 11 -> 10 targets per stream
    full = list(lm_batches(corpus, 2, 4))
    dropped = list(lm_batches(corpus, 2, 4, drop_last=True))
    assert [x.shape[1] for x, _ in full] == [4, 4, 2]
    assert [x.shape[1] for x, _ in dropped] == [4, 4]
    assert num_lm_batches(23, 2, 4, drop_last=True) == 2
    exact = list(lm_batches(np.arange(18), 2, 4, drop_last=True))  # 9 per stream, 8 targets
    assert [x.shape[1] for x, _ in exact] == [4, 4]


def test_lm_batches_errors_raised_eagerly():
    with pytest.raises(ValueError, match="batch_size"):
        lm_batches(np.arange(10), 0, 2)
    with pytest.raises(ValueError, match="seq_len"):
        lm_batches(np.arange(10), 2, -1)
    with pytest.raises(ValueError, match="too short"):
        lm_batches(np.arange(10), 2, 5)  # streams of 5 ids give only 4 targets
    with pytest.raises(TypeError, match="batch_size"):
        lm_batches(np.arange(10), 2.0, 2)
    with pytest.raises(TypeError, match="integers"):
        lm_batches(np.linspace(0, 1, 10), 2, 2)
    with pytest.raises(ValueError, match="1-D"):
        lm_batches(np.zeros((5, 2), dtype=int), 1, 2)


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------


def test_batches_seeded_determinism_and_coverage():
    x = np.arange(23) * 10
    y = np.arange(23)
    first = list(batches(x, y, batch_size=5, seed=3))
    second = list(batches(x, y, batch_size=5, seed=3))
    other = list(batches(x, y, batch_size=5, seed=4))
    assert [b[1].tolist() for b in first] == [b[1].tolist() for b in second]
    assert [b[1].tolist() for b in first] != [b[1].tolist() for b in other]
    assert [len(b[0]) for b in first] == [5, 5, 5, 5, 3]
    seen = np.concatenate([b[1] for b in first])
    assert sorted(seen.tolist()) == list(range(23))  # each item exactly once
    assert seen.tolist() != list(range(23))  # actually shuffled
    for bx, by in first:
        np.testing.assert_array_equal(bx, by * 10)  # arrays stay aligned


def test_batches_no_shuffle_drop_last_and_generator_seed():
    x = np.arange(10)
    plain = [b[0].tolist() for b in batches(x, batch_size=4, shuffle=False)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = [b[0].tolist() for b in batches(x, batch_size=4, shuffle=False, drop_last=True)]
    assert dropped == [[0, 1, 2, 3], [4, 5, 6, 7]]
    gen = np.random.default_rng(0)
    epoch1 = np.concatenate([b[0] for b in batches(x, batch_size=4, seed=gen)])
    epoch2 = np.concatenate([b[0] for b in batches(x, batch_size=4, seed=gen)])
    assert sorted(epoch1.tolist()) == sorted(epoch2.tolist()) == list(range(10))
    assert epoch1.tolist() != epoch2.tolist()


def test_batches_does_not_touch_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    list(batches(np.arange(10), batch_size=3, seed=None))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_batches_errors():
    with pytest.raises(ValueError, match="same first-axis length"):
        batches(np.arange(3), np.arange(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        batches(np.arange(3), batch_size=0)
    with pytest.raises(ValueError, match="at least one array"):
        batches(batch_size=2)
    with pytest.raises(ValueError, match="scalar"):
        batches(np.float64(3.0), batch_size=2)


def test_char_tokenizer_lower_and_lists_of_texts():
    from tinygrad_rnn.data import CharTokenizer, WordTokenizer
    tok = CharTokenizer(lower=True).fit(["Anna", "BOB"])
    assert tok.vocab == ["a", "b", "n", "o"]
    np.testing.assert_array_equal(tok.encode("ANNA"), tok.encode("anna"))
    again = CharTokenizer.from_dict(tok.to_dict())
    assert again.lower is True and again.encode("Bob").tolist() == tok.encode("bob").tolist()
    ids = tok.encode(["ab", "noa"])
    assert isinstance(ids, list) and [i.tolist() for i in ids] == [[0, 1], [2, 3, 0]]
    with pytest.raises(TypeError, match="lower must be a bool, got str"):
        CharTokenizer(lower="yes")
    with pytest.raises(TypeError, match="text must be a str or a list of str, got int"):
        tok.encode(3)
    words = WordTokenizer().fit(["the cat", "the dog"])
    encoded = words.encode(["the cat", "dog"])
    assert [e.tolist() for e in encoded] == [words.encode("the cat").tolist(), words.encode("dog").tolist()]
