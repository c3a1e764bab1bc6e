"""Paired comparisons of two checkpoints on shared items, checked against values worked out by hand:
McNemar's exact and chi-square p-values, a paired t by its formula, the bootstrap against an exact
enumeration of all 4^4 resamples, loyalty and disagreements counted by hand."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from fitting import compare_items, compare_suite, mcnemar, paired_bootstrap, paired_test
from fitting.paired import resampled_means

# Four items whose differences b - a are 1, 2, 4 and 8: every one of the 4^4 = 256 resamples is equally likely.
SMALL_A = np.array([0.0, 1.0, 0.5, 2.0])
SMALL_B = SMALL_A + np.array([1.0, 2.0, 4.0, 8.0])


def exact_resample_means(differences) -> np.ndarray:
    """The mean of each of the n^n equally likely resamples with replacement."""
    n = len(differences)
    return np.array([np.mean([differences[i] for i in draw]) for draw in itertools.product(range(n), repeat=n)])


def exact_quantile(values: np.ndarray, probability: float) -> float:
    """The smallest value whose cumulative probability reaches ``probability``."""
    ordered = np.sort(values)
    return float(ordered[math.ceil(probability * len(ordered)) - 1])


def binary_pair(a_only: int, b_only: int, both_right: int = 5, both_wrong: int = 3):
    a = [1] * a_only + [0] * b_only + [1] * both_right + [0] * both_wrong
    b = [0] * a_only + [1] * b_only + [1] * both_right + [0] * both_wrong
    return a, b


# McNemar


def test_mcnemar_exact_p_for_discordant_counts_1_and_7():
    a, b = binary_pair(1, 7)
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only, result.discordant) == (1, 7, 8)
    # P(X <= 1) for X ~ Binomial(8, 1/2) = (C(8,0) + C(8,1)) / 2^8 = 9/256; doubled.
    assert result.p_value == pytest.approx(2 * (1 + 8) / 2**8) == 0.0703125


def test_mcnemar_chi_square_with_continuity_correction():
    a, b = binary_pair(1, 7)
    result = mcnemar(a, b)
    assert result.chi2 == pytest.approx((abs(7 - 1) - 1) ** 2 / 8) == 3.125
    assert result.chi2_p == pytest.approx(stats.chi2.sf(3.125, 1))


def test_mcnemar_is_symmetric_in_direction():
    assert mcnemar(*binary_pair(7, 1)).p_value == pytest.approx(0.0703125)
    assert (mcnemar(*binary_pair(7, 1)).a_only, mcnemar(*binary_pair(7, 1)).b_only) == (7, 1)


def test_mcnemar_without_discordant_items_gives_p_one():
    a, b = binary_pair(0, 0)
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only, result.p_value, result.chi2, result.chi2_p) == (0, 0, 1.0, 0.0, 1.0)


def test_mcnemar_caps_p_at_one_for_balanced_counts():
    # 3 and 3: 2 P(X <= 3 | n = 6) = 2 * 42/64 > 1, so p = 1.
    assert mcnemar(*binary_pair(3, 3)).p_value == 1.0
    # 2 and 5: 2 (1 + 7 + 21) / 128.
    assert mcnemar(*binary_pair(2, 5)).p_value == pytest.approx(2 * 29 / 128)


def test_mcnemar_accepts_bools_and_refuses_other_scores():
    assert mcnemar([True, False, True], [False, True, True]).discordant == 2
    with pytest.raises(ValueError, match="binary"):
        mcnemar([1, 0, 0.5], [1, 0, 1])


# Paired bootstrap


def test_bootstrap_interval_collapses_when_every_resample_gives_the_same_difference():
    a = np.array([0.0, 1.0, 0.5])
    result = paired_bootstrap(a, a + 0.25, resamples=500)
    assert (result.difference, result.low, result.high, result.n) == (0.25, 0.25, 0.25, 3)


def test_bootstrap_difference_is_mean_b_minus_mean_a():
    result = paired_bootstrap([0.2, 0.4], [0.6, 0.4], resamples=10)
    assert result.difference == pytest.approx((0.6 + 0.4) / 2 - (0.2 + 0.4) / 2)


def test_bootstrap_resamples_match_the_exact_enumeration_of_all_4_to_the_4_resamples():
    exact = exact_resample_means(SMALL_B - SMALL_A)
    resamples = 20_000
    draws = resampled_means(SMALL_B - SMALL_A, resamples, np.random.default_rng(1))
    for value in np.unique(exact):
        probability = np.mean(exact <= value + 1e-12)
        tolerance = 5 * math.sqrt(probability * (1 - probability) / resamples) + 1e-12
        assert np.mean(draws <= value + 1e-12) == pytest.approx(probability, abs=tolerance)


def test_bootstrap_interval_matches_the_exact_percentiles():
    exact = exact_resample_means(SMALL_B - SMALL_A)
    low, high = exact_quantile(exact, 0.025), exact_quantile(exact, 0.975)
    assert (low, high) == (1.5, 6.5)  # P(mean <= 1.25) = 5/256 < 2.5 % <= P(mean <= 1.5) = 11/256
    for seed in range(3):
        result = paired_bootstrap(SMALL_A, SMALL_B, seed=seed)
        assert (result.low, result.high) == pytest.approx((low, high))
        assert result.difference == pytest.approx(15 / 4)


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(7)
    a, b = rng.random(50), rng.random(50)
    first, again = paired_bootstrap(a, b, resamples=2000, seed=3), paired_bootstrap(a, b, resamples=2000, seed=3)
    assert first == again
    other = paired_bootstrap(a, b, resamples=2000, seed=4)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.difference == first.difference


def test_bootstrap_in_chunks_draws_every_resample(monkeypatch):
    """Memory stays bounded by drawing in chunks; chunking must neither drop nor repeat resamples."""
    monkeypatch.setattr("fitting.paired.CHUNK_CELLS", 10)  # 2 resamples of 4 items per chunk
    draws = resampled_means(SMALL_B - SMALL_A, 7, np.random.default_rng(0))
    assert draws.shape == (7,)
    assert len(set(draws.tolist())) > 1
    assert set(draws.tolist()) <= set(exact_resample_means(SMALL_B - SMALL_A).tolist())


@pytest.mark.parametrize("a, b, message", [
    ([1, 2, 3], [1, 2], "same items"),
    ([], [], "empty"),
    ([1.0, float("nan")], [1.0, 2.0], "NaN"),
    ([1.0, 2.0], [1.0, float("inf")], "infinite"),
])
def test_bootstrap_refuses_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b)


def test_bootstrap_refuses_bad_settings():
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([1.0], [2.0], confidence=1.5)
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap([1.0], [2.0], resamples=0)


# Paired test


def test_paired_t_matches_the_hand_computation():
    a = [0.50, 0.61, 0.42, 0.70, 0.55]
    b = [0.58, 0.60, 0.50, 0.79, 0.57]
    differences = [0.08, -0.01, 0.08, 0.09, 0.02]
    n = 5
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    result = paired_test(a, b)
    assert result.test == "paired t"
    assert result.statistic == pytest.approx(t)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), n - 1))


def test_paired_t_on_identical_vectors_gives_p_one_not_nan():
    result = paired_test([0.2, 0.5, 0.9], [0.2, 0.5, 0.9])
    assert (result.test, result.statistic, result.p_value) == ("paired t", 0.0, 1.0)


def test_paired_test_uses_mcnemar_when_both_are_binary():
    a, b = binary_pair(1, 7)
    result = paired_test(a, b)
    assert result.test == "mcnemar"
    assert result.p_value == pytest.approx(0.0703125)
    assert (result.mcnemar.a_only, result.mcnemar.b_only) == (1, 7)
    assert paired_test([1, 0, 1], [0.5, 0, 1]).test == "paired t"


# Comparing items


def test_compare_items_pairs_on_shared_ids():
    a = {"q1": 1, "q2": 0, "q3": 1, "q4": 1, "only_a": 0}
    b = {"q4": 1, "q3": 0, "q2": 1, "q1": 1, "only_b": 1, "also_b": 0}
    result = compare_items(a, b, resamples=200)
    assert (result.n_a, result.n_b, result.n_shared) == (5, 6, 4)
    assert result.difference.difference == 0.0  # 3/4 right on the shared items each
    assert result.disagreements == ("q2", "q3")
    assert result.loyalty == 0.5  # q1 and q4 agree out of four
    assert result.binary
    # One discordant item each way: 2 P(X <= 1 | n = 2) = 2 * 3/4, capped at 1.
    assert (result.test.test, result.test.p_value) == ("mcnemar", 1.0)


def test_compare_items_with_graded_scores():
    a = {1: 0.5, 2: 0.25, 3: 1.0, 4: 0.0}
    b = {1: 0.5, 2: 0.75, 3: 1.0, 5: 1.0}
    result = compare_items(a, b, resamples=200)
    assert result.n_shared == 3
    assert result.difference.difference == pytest.approx(0.5 / 3)
    assert result.disagreements == (2,)
    assert result.loyalty == pytest.approx(2 / 3)
    assert not result.binary and result.test.test == "paired t"


def test_compare_items_refuses_disjoint_items():
    with pytest.raises(ValueError, match="share no item"):
        compare_items({"a": 1}, {"b": 1})


# Suite level


def test_suite_difference_is_the_weighted_mean_and_collapses_for_constant_differences():
    per_benchmark = {
        "x": ({1: 0.0, 2: 0.5}, {1: 0.5, 2: 1.0}),  # +0.5 on every item
        "y": ({1: 1.0, 2: 0.75, 3: 0.5}, {1: 0.75, 2: 0.5, 3: 0.25, 4: 0.0}),  # -0.25 on every shared item
    }
    result = compare_suite(per_benchmark, {"x": 3, "y": 1}, resamples=300)
    expected = (3 * 0.5 + 1 * -0.25) / 4
    assert result.weights == {"x": 0.75, "y": 0.25}
    assert (result.difference, result.low, result.high) == pytest.approx((expected, expected, expected))
    assert result.benchmarks["y"].n_shared == 3
    equal = compare_suite(per_benchmark, resamples=300)
    assert equal.difference == pytest.approx((0.5 - 0.25) / 2)


def test_suite_bootstrap_resamples_within_each_benchmark():
    """A constant benchmark stays constant in every resample (stratified), so the suite interval is
    0.5 * 2 + 0.5 * the exact percentiles of the four-item benchmark; pooling items would mix them."""
    constant = ({i: 0.0 for i in range(3)}, {i: 2.0 for i in range(3)})
    small = (dict(enumerate(SMALL_A)), dict(enumerate(SMALL_B)))
    result = compare_suite({"constant": constant, "small": small}, seed=5)
    assert result.difference == pytest.approx(0.5 * 2 + 0.5 * 15 / 4)
    assert (result.low, result.high) == pytest.approx((0.5 * 2 + 0.5 * 1.5, 0.5 * 2 + 0.5 * 6.5))
    again = compare_suite({"small": small, "constant": constant}, seed=5)
    assert (again.low, again.high) == (result.low, result.high)


def test_suite_benchmarks_are_resampled_independently():
    """Two copies of the four-item benchmark: their resamples must be independent draws, so the suite
    difference is the mean of two independent resample means, whose exact percentiles (all 256 x 256 pairs)
    are 2.0 and 5.75 -- narrower than one benchmark's 1.5 and 6.5, which reusing the draws would give."""
    small = (dict(enumerate(SMALL_A)), dict(enumerate(SMALL_B)))
    exact = exact_resample_means(SMALL_B - SMALL_A)
    pairs = ((exact[:, None] + exact[None, :]) / 2).ravel()
    low, high = exact_quantile(pairs, 0.025), exact_quantile(pairs, 0.975)
    assert (low, high) == pytest.approx((2.0, 5.75))
    result = compare_suite({"x": small, "y": small}, seed=2)
    assert (result.low, result.high) == pytest.approx((low, high), abs=0.13)  # within one step of the support


def test_suite_refuses_mismatched_weights_and_names_the_benchmark_at_fault():
    pair = ({1: 1.0}, {1: 0.0})
    with pytest.raises(ValueError, match="missing"):
        compare_suite({"x": pair, "y": pair}, {"x": 1.0})
    with pytest.raises(ValueError, match="non-negative"):
        compare_suite({"x": pair}, {"x": -1.0})
    with pytest.raises(ValueError, match="'y'.*share no item"):
        compare_suite({"x": pair, "y": ({1: 1.0}, {2: 1.0})})
