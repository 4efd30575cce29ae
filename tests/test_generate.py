"""Sampling: seeding, greedy decoding, top-k support, end token, max_len, the draw distribution."""
import numpy as np
import pytest

from tinygrad_rnn import manual_seed
from tinygrad_rnn.data import CharTokenizer
from tinygrad_rnn.generate import end_token, generate, sample_index
from tinygrad_rnn.models import CharLM
from tinygrad_rnn.random import get_rng_state
from tinygrad_rnn.tensor import Tensor, no_grad

LETTERS = "abcdefghij"


class LetterTokenizer:
    """'a'..'j' -> 1..10 (with_eos) or 0..9; id 0 is the end token when with_eos."""

    def __init__(self, with_eos: bool):
        self.offset = 1 if with_eos else 0
        if with_eos:
            self.eos_id = 0

    def encode(self, text):
        return np.array([LETTERS.index(ch) + self.offset for ch in text], dtype=np.int64)

    def decode(self, ids):
        return "".join(LETTERS[int(i) - self.offset] for i in ids)


class FakeModel:
    """A stand-in language model whose next-token logits are ``logits_for(last_token)``.

    Records every input so tests can see what the sampler fed it."""

    def __init__(self, vocab, logits_for):
        self.vocab, self.logits_for = vocab, logits_for
        self.training = True
        self.calls = []

    def eval(self):
        self.training = False
        return self

    def train(self, mode=True):
        self.training = mode
        return self

    def __call__(self, x, state):
        ids = np.asarray(x.data)
        self.calls.append((ids.copy(), state))
        logits = np.stack([self.logits_for(int(t)) for t in ids[0]])[None]
        return Tensor(logits.astype(np.float32)), ("state", len(self.calls))


def counter_model(vocab=6):
    """The most likely next token is (last + 1) mod vocab, by a wide margin."""
    return FakeModel(vocab, lambda t: 10.0 * np.eye(vocab)[(t + 1) % vocab])


@pytest.fixture(scope="module")
def char_lm():
    tok = CharTokenizer(specials=("<eos>",)).fit(["anna", "bob", "cecilia", "dmitri", "eve"])
    manual_seed(3)
    model = CharLM(tok.vocab_size, embed=4, hidden=8, cell="gru")
    # Larger head weights so the distributions are far from uniform and greedy is unambiguous.
    model.head.weight.data *= 8
    return model, tok


# ----- end token, max_len, prime, state ---------------------------------------------------------
def test_stops_at_the_end_token_and_feeds_state_back():
    model = counter_model()
    text = generate(model, LetterTokenizer(with_eos=True), max_len=50, temperature=0)
    assert text == "abcde"  # tokens 1..5, then 0 = end token ends the sample
    first_ids, first_state = model.calls[0]
    assert first_ids.tolist() == [[0]] and first_state is None  # starts from the end token
    # Every later call gets one token and the state the previous call returned.
    for k, (ids, state) in enumerate(model.calls[1:], start=1):
        assert ids.shape == (1, 1)
        assert state == ("state", k)
    assert len(model.calls) == 6


def test_prime_is_fed_after_the_start_token_and_not_returned():
    model = counter_model()
    text = generate(model, LetterTokenizer(with_eos=True), prime="bc", max_len=50, temperature=0)
    assert model.calls[0][0].tolist() == [[0, 2, 3]]
    assert text == "de"


@pytest.mark.parametrize("max_len", [0, 1, 3])
def test_max_len_is_respected(max_len):
    model = counter_model()
    text = generate(model, LetterTokenizer(with_eos=True), max_len=max_len, temperature=0)
    assert text == "abcde"[:max_len]


def test_max_len_with_sampling_and_no_end_token():
    model = FakeModel(10, lambda t: np.zeros(10))
    for seed in range(5):
        assert len(generate(model, LetterTokenizer(with_eos=False), prime="a", max_len=7, seed=seed)) == 7


def test_without_end_token_the_prime_starts_the_context():
    model = counter_model(10)
    text = generate(model, LetterTokenizer(with_eos=False), prime="c", max_len=4, temperature=0)
    assert model.calls[0][0].tolist() == [[2]]
    assert text == "defg"
    with pytest.raises(ValueError, match="prime"):
        generate(model, LetterTokenizer(with_eos=False), prime="", max_len=4)


def test_use_end_token_false_feeds_the_prime_alone_and_never_draws_the_end_token():
    model = counter_model()  # ids 0..5; id 0 is the end token
    text = generate(model, LetterTokenizer(with_eos=True), prime="c", max_len=8, temperature=0,
                    use_end_token=False)
    assert model.calls[0][0].tolist() == [[3]]  # no start token before the prime
    # After 5 the favourite is the end token 0: masked, so the argmax of the rest (id 1) follows.
    assert text == "deabcdea" and len(model.calls) == 9
    for seed in range(3):
        sampled = generate(FakeModel(6, lambda t: np.zeros(6)), LetterTokenizer(with_eos=True), prime="a",
                           max_len=50, seed=seed, use_end_token=False)
        assert len(sampled) == 50  # never stopped early, never an (undecodable) end token
    model.calls.clear()
    model.calls.clear()
    with pytest.raises(ValueError, match="prime"):
        generate(model, LetterTokenizer(with_eos=True), max_len=4, use_end_token=False)
    with pytest.raises(TypeError, match="use_end_token"):
        generate(model, LetterTokenizer(with_eos=True), prime="a", use_end_token="no")
    assert model.calls == []


def test_end_token():
    assert end_token(LetterTokenizer(with_eos=True)) == 0
    assert end_token(LetterTokenizer(with_eos=False)) is None
    assert end_token(CharTokenizer().fit("ab")) is None  # eos_id raises ValueError there
    assert end_token(CharTokenizer(specials=("<pad>", "<eos>")).fit("ab")) == 1


def test_model_mode_is_restored():
    model = counter_model()
    generate(model, LetterTokenizer(with_eos=True), max_len=3)
    assert model.training is True
    model.eval()
    generate(model, LetterTokenizer(with_eos=True), max_len=3)
    assert model.training is False


# ----- seeding ----------------------------------------------------------------------------------
def test_seeded_generation_is_deterministic_and_leaves_the_library_rng_alone(char_lm):
    model, tok = char_lm
    before = get_rng_state()
    a = [generate(model, tok, max_len=20, temperature=1.5, seed=s) for s in range(6)]
    b = [generate(model, tok, max_len=20, temperature=1.5, seed=s) for s in range(6)]
    assert a == b
    assert len(set(a)) > 1  # different seeds give different samples
    assert get_rng_state() == before


def test_unseeded_generation_draws_from_the_library_rng(char_lm):
    model, tok = char_lm
    manual_seed(11)
    a = [generate(model, tok, max_len=20, temperature=1.5) for _ in range(4)]
    manual_seed(11)
    b = [generate(model, tok, max_len=20, temperature=1.5) for _ in range(4)]
    assert a == b and len(set(a)) > 1


# ----- greedy and top-k -------------------------------------------------------------------------
def greedy_by_hand(model, tok, prime, max_len):
    """Argmax decoding that re-runs the whole sequence every step (no state carried)."""
    ids = [tok.eos_id] + list(tok.encode(prime))
    out = []
    with no_grad():
        for _ in range(max_len):
            logits, _ = model(Tensor(np.array([ids])), None)
            token = int(np.argmax(logits.data[0, -1]))
            if token == tok.eos_id:
                break
            out.append(token)
            ids.append(token)
    return tok.decode(out)


@pytest.mark.parametrize("prime", ["", "a", "ce"])
def test_temperature_zero_is_greedy(char_lm, prime):
    model, tok = char_lm
    expected = greedy_by_hand(model, tok, prime, 12)
    for seed in (0, 1, None):
        assert generate(model, tok, prime=prime, max_len=12, temperature=0, seed=seed) == expected
    # top_k=1 at any positive temperature is greedy too.
    for temperature in (0.5, 1.0, 3.0):
        assert generate(model, tok, prime=prime, max_len=12, temperature=temperature, top_k=1,
                        seed=5) == expected


def test_sampling_differs_from_greedy_sometimes(char_lm):
    # Guards the greedy test: at temperature 1 the samples are not all the greedy string.
    model, tok = char_lm
    greedy = greedy_by_hand(model, tok, "", 12)
    samples = {generate(model, tok, max_len=12, temperature=1.0, seed=s) for s in range(10)}
    assert samples - {greedy}


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_restricts_the_support(k):
    logits = np.array([0.3, 2.0, -1.0, 1.5, 0.9, 1.9, -0.2, 0.0, 1.0, 0.5])
    allowed = set(np.argsort(logits)[-k:].tolist())
    model = FakeModel(10, lambda t: logits)
    text = generate(model, LetterTokenizer(with_eos=False), prime="a", max_len=400,
                    temperature=5.0, top_k=k, seed=0)
    seen = {LETTERS.index(ch) for ch in text}
    assert seen <= allowed
    assert seen == allowed  # 400 draws at a high temperature reach every allowed token


def test_top_k_larger_than_vocab_is_plain_sampling():
    logits = np.array([0.0, 0.1, 0.2])
    model = FakeModel(3, lambda t: logits)
    tok = LetterTokenizer(with_eos=False)
    assert generate(model, tok, prime="a", max_len=50, top_k=100, seed=4) == \
        generate(model, tok, prime="a", max_len=50, top_k=None, seed=4)


# ----- sample_index ----------------------------------------------------------------------------
def chi_square(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# 99.99th percentiles of chi-square with df degrees of freedom (scipy.stats.chi2.ppf(0.9999, df)).
CHI2_9999 = {3: 21.11, 4: 23.51, 2: 18.42}


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_index_matches_softmax_over_temperature(temperature):
    logits = np.array([1.0, 2.0, 0.5, -1.0, 0.0])
    gen = np.random.default_rng(123)
    n = 20000
    counts = np.bincount([sample_index(logits, temperature, None, gen) for _ in range(n)], minlength=5)
    z = np.exp(logits / temperature)
    probs = z / z.sum()
    assert chi_square(counts, probs) < CHI2_9999[4]
    # A wrong temperature would be caught: the same counts fit softmax(logits) badly.
    if temperature != 1.0:
        z1 = np.exp(logits)
        assert chi_square(counts, z1 / z1.sum()) > 100


def test_sample_index_top_k_renormalises_over_the_k_largest():
    logits = np.array([1.0, 2.0, 0.5, -1.0, 1.5])
    gen = np.random.default_rng(7)
    counts = np.bincount([sample_index(logits, 1.0, 3, gen) for _ in range(20000)], minlength=5)
    assert counts[2] == 0 and counts[3] == 0
    kept = np.array([0, 1, 4])
    z = np.exp(logits[kept])
    assert chi_square(counts[kept], z / z.sum()) < CHI2_9999[2]


def test_sample_index_top_k_keeps_exactly_k_with_ties_broken_by_lowest_index():
    gen = np.random.default_rng(5)
    logits = np.array([1.0, 2.0, 2.0, 2.0, 0.0])  # three-way tie at the 2nd largest
    counts = np.bincount([sample_index(logits, 1.0, 2, gen) for _ in range(4000)], minlength=5)
    assert counts[0] == counts[3] == counts[4] == 0
    assert counts[1] > 1800 and counts[2] > 1800  # the two kept are equally likely
    # top_k=1 is greedy even when every logit ties, and agrees with temperature 0 (argmax).
    flat = np.array([3.0, 3.0, 3.0])
    assert {sample_index(flat, 2.0, 1, gen) for _ in range(200)} == {0}
    assert sample_index(flat, 0, None, gen) == 0
    # A tie below the cut changes nothing; a tie spanning the cut keeps the lower indices.
    assert {sample_index(np.array([0.0, 5.0, 0.0, 0.0]), 1.0, 3, gen) for _ in range(500)} <= {0, 1, 2}


def test_sample_index_greedy_and_extreme_logits():
    gen = np.random.default_rng(0)
    assert sample_index(np.array([0.1, 3.0, -2.0]), 0, None, gen) == 1
    assert sample_index(np.array([1e4, -1e4, 0.0]), 1.0, None, gen) == 0  # no overflow
    # A temperature so small that logits / T overflows still picks the largest logit.
    assert sample_index(np.array([1.0, 3.0, 2.0]), 1e-310, None, gen) == 1


# ----- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-0.1), "temperature"), (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=float("inf")), "temperature"), (dict(temperature="1"), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_k=-2), "top_k"), (dict(top_k=1.5), "top_k"),
    (dict(max_len=-1), "max_len"), (dict(max_len=2.5), "max_len"), (dict(max_len=None), "max_len"),
])
def test_bad_arguments(kwargs, match):
    model = counter_model()
    with pytest.raises(ValueError, match=match):
        generate(model, LetterTokenizer(with_eos=True), **kwargs)
    assert model.calls == []  # checked before the model runs
