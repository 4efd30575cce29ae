"""The add-alpha bigram baseline against a hand count on a tiny corpus."""
import math

import numpy as np
import pytest

from tinygrad_rnn.baselines import bigram_nll


def hand_bigram_nll(train, held_out, vocab_size, alpha):
    """Independent reference: dictionaries of counts, one log per held-out pair."""
    pair_counts, prev_counts = {}, {}
    for seq in train:
        for a, b in zip(seq[:-1], seq[1:]):
            pair_counts[(a, b)] = pair_counts.get((a, b), 0) + 1
            prev_counts[a] = prev_counts.get(a, 0) + 1
    logs = []
    for seq in held_out:
        for a, b in zip(seq[:-1], seq[1:]):
            p = (pair_counts.get((a, b), 0) + alpha) / (prev_counts.get(a, 0) + alpha * vocab_size)
            logs.append(-math.log(p))
    return sum(logs) / len(logs)


TRAIN = [[0, 1, 2, 0], [0, 2, 2, 1, 0], [0, 1, 0]]
HELD_OUT = [[0, 1, 2, 2, 0], [0, 3, 0]]  # token 3 never occurs in training


def test_matches_hand_count_with_the_numbers_written_out():
    # Counts from TRAIN: after 0: 1 twice, 2 once (3 pairs); after 1: 2, 0, 0 (3 pairs);
    # after 2: 0, 2, 1 (3 pairs). With V = 4, alpha = 1 the denominators are all 3 + 4 = 7.
    expected_terms = [
        (2 + 1) / 7,  # 0 -> 1
        (1 + 1) / 7,  # 1 -> 2
        (1 + 1) / 7,  # 2 -> 2
        (1 + 1) / 7,  # 2 -> 0
        (0 + 1) / 7,  # 0 -> 3
        (0 + 1) / 4,  # 3 -> 0: token 3 never starts a training pair: (0 + 1) / (0 + 1 * 4)
    ]
    expected = -sum(math.log(p) for p in expected_terms) / len(expected_terms)
    got = bigram_nll([np.array(s) for s in TRAIN], [np.array(s) for s in HELD_OUT], 4, alpha=1.0)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.5, 1.0, 3.0])
def test_add_alpha_smoothing_matches_reference(alpha):
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 6, size=rng.integers(2, 12)) for _ in range(20)]
    held = [rng.integers(0, 6, size=rng.integers(2, 12)) for _ in range(10)]
    assert bigram_nll(train, held, 6, alpha=alpha) == pytest.approx(
        hand_bigram_nll([list(s) for s in train], [list(s) for s in held], 6, alpha), rel=1e-12)


def test_smoothing_limits():
    # A huge alpha drowns the counts: every pair gets probability 1/V.
    v = 5
    assert bigram_nll([np.array([0, 1, 1, 1, 1])], [np.array([0, 1, 2])], v, alpha=1e12) == \
        pytest.approx(math.log(v), rel=1e-9)
    # A tiny alpha on a deterministic corpus: the seen continuation costs almost nothing.
    assert bigram_nll([np.array([0, 1, 0, 1, 0])], [np.array([0, 1, 0])], v, alpha=1e-9) < 1e-6


def test_unseen_pairs_stay_finite_and_sequences_of_one_token_add_nothing():
    value = bigram_nll([np.array([0, 1])], [np.array([2, 3]), np.array([4])], 5)
    assert math.isfinite(value)
    assert value == pytest.approx(math.log(5))  # 2 never precedes anything in training


@pytest.mark.parametrize("kwargs", [dict(vocab_size=0), dict(alpha=0.0), dict(alpha=-1.0),
                                    dict(alpha=float("nan"))])
def test_bad_arguments(kwargs):
    args = dict(vocab_size=3, alpha=1.0) | kwargs
    with pytest.raises(ValueError, match="bigram_nll"):
        bigram_nll([np.array([0, 1])], [np.array([0, 1])], **args)


def test_held_out_without_pairs_is_an_error():
    with pytest.raises(ValueError, match="no pairs"):
        bigram_nll([np.array([0, 1])], [np.array([1]), np.array([], dtype=np.int64)], 3)


@pytest.mark.parametrize("bad", [np.array([0, 3]), np.array([0, -1]), np.array([-100, 1])])
@pytest.mark.parametrize("where", ["train", "held_out"])
def test_ids_outside_the_vocabulary_are_rejected(bad, where):
    good = np.array([0, 1, 2])
    train, held = ([bad], [good]) if where == "train" else ([good], [bad])
    with pytest.raises(ValueError, match="vocab"):
        bigram_nll(train, held, 3)


def test_empty_held_out_sequences_do_not_change_the_mean():
    train = [np.array(s) for s in TRAIN]
    held = [np.array(s) for s in HELD_OUT]
    empty = np.array([], dtype=np.int64)
    assert bigram_nll(train, held + [empty, empty], 4) == pytest.approx(bigram_nll(train, held, 4), rel=1e-12)


@pytest.mark.parametrize("bad", [np.array([[0, 1], [1, 0]]), np.array([0.0, 1.0])])
def test_sequences_must_be_1d_integer_ids(bad):
    with pytest.raises(ValueError, match="1-D integer"):
        bigram_nll([bad], [np.array([0, 1])], 3)
