"""Ranks and frontier badges that respect noise, on intervals constructed so the answer is known by hand:
rank = 1 + the entries whose interval lies entirely on the better side; a frontier point keeps its badge
only when its interval clears every cheaper frontier point's."""
import numpy as np
import pytest

from fitting import band_ranks, frontier_beyond_noise, rank_bands


def summary(bands):
    return [(band.id, band.rank, band.worst, band.tied) for band in bands]


def test_overlapping_intervals_all_share_rank_one():
    entries = [("a", 0.30, 0.28, 0.32), ("b", 0.31, 0.29, 0.33), ("c", 0.305, 0.27, 0.34)]
    bands = rank_bands(entries)
    assert summary(bands) == [("a", 1, 3, True), ("c", 1, 3, True), ("b", 1, 3, True)]  # sorted by estimate
    assert all(band.best == band.rank for band in bands)


def test_separated_chain_ranks_one_two_three():
    entries = [("c", 0.3, 0.29, 0.31), ("a", 0.1, 0.09, 0.11), ("b", 0.2, 0.19, 0.21)]
    assert summary(rank_bands(entries)) == [("a", 1, 1, False), ("b", 2, 2, False), ("c", 3, 3, False)]


def test_mixed_case_with_a_tie_band():
    # a [0, 1] and b [0.9, 2] overlap: both rank 1.  c [1.5, 3] is beaten beyond noise by a only: rank 2.
    # d [3.5, 4] is beaten by all three: rank 4.  Worst ranks: a is surely better than c and d -> 2;
    # b surely better than d only -> 3; c surely better than d -> 3; d -> 4.
    entries = [("d", 3.7, 3.5, 4.0), ("c", 2.0, 1.5, 3.0), ("b", 1.2, 0.9, 2.0), ("a", 0.5, 0.0, 1.0)]
    assert summary(rank_bands(entries)) == [("a", 1, 2, True), ("b", 1, 3, True), ("c", 2, 3, False),
                                            ("d", 4, 4, False)]


def test_touching_intervals_are_not_separated():
    entries = [("a", 0.5, 0.0, 1.0), ("b", 1.5, 1.0, 2.0)]
    assert summary(rank_bands(entries)) == [("a", 1, 2, True), ("b", 1, 2, True)]
    apart = [("a", 0.5, 0.0, 0.999), ("b", 1.5, 1.0, 2.0)]
    assert summary(rank_bands(apart)) == [("a", 1, 1, False), ("b", 2, 2, False)]


def test_higher_is_better_mode():
    # Accuracies: a's low 0.78 is above b's high 0.72, so a beats b; c [0.65, 0.79] overlaps both.
    entries = [("b", 0.70, 0.68, 0.72), ("c", 0.71, 0.65, 0.79), ("a", 0.80, 0.78, 0.82)]
    assert summary(rank_bands(entries, lower_is_better=False)) == [("a", 1, 2, True), ("c", 1, 3, True),
                                                                   ("b", 2, 3, False)]
    touching = [("a", 0.8, 0.72, 0.82), ("b", 0.7, 0.68, 0.72)]
    assert summary(rank_bands(touching, lower_is_better=False)) == [("a", 1, 2, True), ("b", 1, 2, True)]
    # Read as errors, the same intervals put b ahead of a (so b can do no worse than 2nd).
    assert summary(rank_bands(entries)) == [("b", 1, 2, True), ("c", 1, 3, True), ("a", 2, 3, False)]


@pytest.mark.parametrize("entries, message", [
    ([("a", 0.5, 0.6, 0.4)], "above high"),
    ([("a", 0.7, 0.4, 0.6)], "outside its interval"),
    ([("a", 0.5, 0.4, 0.6), ("a", 0.5, 0.4, 0.6)], "unique"),
    ([("a", float("nan"), 0.4, 0.6)], "non-finite"),
])
def test_rank_bands_refuses_bad_intervals(entries, message):
    with pytest.raises(ValueError, match=message):
        rank_bands(entries)


def test_no_entries_no_ranks():
    assert rank_bands([]) == []


POINTS = [
    ("p1", 1e9, 0.50, 0.45, 0.55),
    ("p2", 2e9, 0.48, 0.43, 0.53),  # below p1 but its high 0.53 is not below p1's low 0.45: no badge
    ("p4", 3e9, 0.60, 0.58, 0.62),  # dominated by p1: not on the frontier
    ("p3", 4e9, 0.30, 0.28, 0.32),  # high 0.32 below both cheaper lows (0.45, 0.43): badge
    ("p5", 8e9, 0.29, 0.27, 0.44),  # high 0.44 clears p1's 0.45 but not p2's 0.43 nor p3's 0.28
]


def test_frontier_badge_is_withheld_when_a_cheaper_interval_overlaps():
    badges = frontier_beyond_noise(POINTS)
    assert badges.frontier == ("p1", "p2", "p3", "p5")
    assert badges.badged == ("p1", "p3")
    assert badges.withheld == {"p2": ("p1",), "p5": ("p2", "p3")}


def test_frontier_badge_needs_strict_separation():
    touching = [("cheap", 1.0, 0.5, 0.4, 0.6), ("dear", 2.0, 0.3, 0.2, 0.4)]
    assert frontier_beyond_noise(touching).withheld == {"dear": ("cheap",)}
    apart = [("cheap", 1.0, 0.5, 0.4, 0.6), ("dear", 2.0, 0.3, 0.2, 0.39)]
    assert frontier_beyond_noise(apart).badged == ("cheap", "dear")


def test_frontier_refuses_bad_points():
    with pytest.raises(ValueError, match="positive"):
        frontier_beyond_noise([("a", 0.0, 0.5, 0.4, 0.6)])
    with pytest.raises(ValueError, match="outside"):
        frontier_beyond_noise([("a", 1.0, 0.7, 0.4, 0.6)])


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_band_ranks_on_arrays_equal_the_pairwise_rule_on_random_intervals_with_ties_and_touching_ends(lower_is_better):
    """The O(n log n) form the leaderboard uses, against every pair compared directly."""
    rng = np.random.default_rng(7)
    centre = rng.integers(0, 20, 300) / 20  # many equal ends: touching intervals are not separated
    half = rng.integers(0, 4, 300) / 20
    low, high = centre - half, centre + half
    best, worst = band_ranks(low, high, lower_is_better=lower_is_better)
    for i in range(300):
        if lower_is_better:
            better = sum(high[j] < low[i] for j in range(300))
            worse = sum(low[j] > high[i] for j in range(300))
        else:
            better = sum(low[j] > high[i] for j in range(300))
            worse = sum(high[j] < low[i] for j in range(300))
        assert (best[i], worst[i]) == (1 + better, 300 - worse), i
