"""Paired comparisons of two checkpoints on the items both were scored on.

Two checkpoints scored on the same items differ by less noise than two independent samples would:
an item that is hard for one is usually hard for the other, and pairing cancels that shared part.
So every comparison here works on per-item differences: the difference of means is mean(b) - mean(a)
(positive: b scores higher), its interval is a percentile bootstrap that resamples items with
replacement, and its test is McNemar's (binary scores) or a paired t-test (other scores).

Item scores are "higher is better" (accuracy, a 0/1 correctness), as the benchmarks report them.
The same ``seed`` gives the same intervals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CHUNK_CELLS = 4_000_000
"""Resampled item indices are drawn in chunks of at most this many (resample, item) cells, so memory stays
bounded (32 MB of int64) whatever the number of items."""
TESTS = ("mcnemar", "paired t")


@dataclass(frozen=True)
class PairedDifference:
    """mean(b) - mean(a) over n paired items and its percentile bootstrap interval."""

    difference: float
    low: float
    high: float
    n: int
    confidence: float
    resamples: int
    seed: int


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on binary paired scores.  ``a_only``: items a got right and b wrong;
    ``b_only``: a wrong and b right.  ``p_value`` is the exact two-sided one; ``chi2``/``chi2_p`` the
    continuity-corrected chi-square approximation, for reference."""

    a_only: int
    b_only: int
    p_value: float
    chi2: float
    chi2_p: float

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only


@dataclass(frozen=True)
class PairedTest:
    """Which test was used (one of ``TESTS``), its statistic and two-sided p-value on n pairs;
    ``mcnemar`` holds the discordant counts when McNemar's test was used."""

    test: str
    statistic: float
    p_value: float
    n: int
    mcnemar: McNemar | None = None


@dataclass(frozen=True)
class ItemComparison:
    """Two checkpoints compared on their shared items (see ``compare_items``)."""

    n_a: int
    n_b: int
    n_shared: int
    difference: PairedDifference
    test: PairedTest
    disagreements: tuple
    loyalty: float
    binary: bool


@dataclass(frozen=True)
class SuiteComparison:
    """Per-benchmark comparisons and the suite difference: the weighted mean of the benchmark differences,
    with a bootstrap interval that resamples items within each benchmark."""

    benchmarks: dict[str, ItemComparison]
    weights: dict[str, float]
    difference: float
    low: float
    high: float
    confidence: float
    resamples: int
    seed: int


def _scores(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of per-item scores, got shape {array.shape}")
    try:
        array = array.astype(float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold numbers (per-item scores): {error}") from None
    if np.isnan(array).any():
        raise ValueError(f"{name} has NaN scores at positions {np.flatnonzero(np.isnan(array)).tolist()[:10]}; "
                         "drop or score those items first")
    if np.isinf(array).any():
        raise ValueError(f"{name} has infinite scores at positions {np.flatnonzero(np.isinf(array)).tolist()[:10]}")
    return array


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Validated float arrays of equal, non-zero length."""
    a, b = _scores(a, "a"), _scores(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same items in the same order: a has {len(a)}, b has {len(b)}")
    if not len(a):
        raise ValueError("no items to compare: a and b are empty")
    return a, b


def _check_bootstrap(resamples: int, confidence: float) -> None:
    if int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def resampled_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` resamples of ``values`` drawn with replacement (each of the n values n times,
    uniformly), in chunks of at most ``CHUNK_CELLS`` cells. Shape (resamples,)."""
    n = len(values)
    chunk = max(1, CHUNK_CELLS // n)
    means = [values[rng.integers(0, n, size=(min(chunk, resamples - first), n))].mean(axis=1)
             for first in range(0, resamples, chunk)]
    return np.concatenate(means)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def paired_bootstrap(a, b, *, resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> PairedDifference:
    """mean(b) - mean(a) for per-item scores a[i], b[i] (same items, same order) and its percentile bootstrap
    interval: items are resampled with replacement (a pair stays a pair), the interval is the (1 - confidence)/2
    and (1 + confidence)/2 quantiles of the resampled differences (linear interpolation).

    Refuses mismatched lengths, empty input and NaN or infinite scores."""
    a, b = _pair(a, b)
    _check_bootstrap(resamples, confidence)
    differences = b - a
    draws = resampled_means(differences, int(resamples), np.random.default_rng(seed))
    low, high = _interval(draws, confidence)
    return PairedDifference(float(differences.mean()), low, high, len(a), confidence, int(resamples), seed)


def mcnemar(a, b) -> McNemar:
    """McNemar's test for binary per-item scores (0/1 or bool; anything else is refused).

    Only discordant items carry information: under "a and b are equally good" each of the
    n = a_only + b_only discordant items goes either way with probability 1/2, so the exact two-sided
    p-value is min(1, 2 P(X <= min(a_only, b_only))) with X ~ Binomial(n, 1/2); no discordant items give p = 1.
    For reference, the continuity-corrected chi-square: max(0, |a_only - b_only| - 1)^2 / n on one degree of
    freedom (0 and p = 1 when n = 0; the max keeps equal counts at 0 rather than 1/n)."""
    a, b = _pair(a, b)
    for name, values in (("a", a), ("b", b)):
        if not _is_binary(values):
            odd = sorted(set(values[~np.isin(values, (0.0, 1.0))].tolist()))[:5]
            raise ValueError(f"McNemar's test needs binary scores (0/1 or bool); {name} has {odd}")
    a_only = int(((a == 1) & (b == 0)).sum())
    b_only = int(((a == 0) & (b == 1)).sum())
    discordant = a_only + b_only
    if discordant == 0:
        return McNemar(a_only, b_only, 1.0, 0.0, 1.0)
    exact = min(1.0, 2.0 * float(stats.binom.cdf(min(a_only, b_only), discordant, 0.5)))
    chi2 = max(0, abs(a_only - b_only) - 1) ** 2 / discordant
    return McNemar(a_only, b_only, exact, float(chi2), float(stats.chi2.sf(chi2, 1)))


def _paired_t(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Paired t-test on b - a (scipy.stats.ttest_rel), with the degenerate cases made explicit: identical
    vectors (all differences 0) give t = 0, p = 1; a constant non-zero difference gives t = ±inf, p = 0;
    a single pair gives NaN (no degrees of freedom)."""
    differences = b - a
    n = len(differences)
    if n < 2:
        return PairedTest("paired t", math.nan, math.nan, n)
    if np.all(differences == differences[0]):
        if differences[0] == 0:
            return PairedTest("paired t", 0.0, 1.0, n)
        return PairedTest("paired t", math.copysign(math.inf, differences[0]), 0.0, n)
    result = stats.ttest_rel(b, a)
    return PairedTest("paired t", float(result.statistic), float(result.pvalue), n)


def paired_test(a, b) -> PairedTest:
    """McNemar's exact test when both score vectors are binary (0/1 or bool), else a paired t-test on b - a
    (two-sided; identical vectors give p = 1, not NaN).  ``test`` says which one was used; the statistic is
    min(a_only, b_only) for McNemar's exact test and t for the t-test."""
    a, b = _pair(a, b)
    if _is_binary(a) and _is_binary(b):
        result = mcnemar(a, b)
        return PairedTest("mcnemar", float(min(result.a_only, result.b_only)), result.p_value, len(a), result)
    return _paired_t(a, b)


def _sorted_ids(ids) -> list:
    try:
        return sorted(ids)
    except TypeError:  # ids of mixed types: a stable order all the same
        return sorted(ids, key=lambda item: (type(item).__name__, str(item)))


def compare_items(a: dict, b: dict, *, resamples: int = 10_000, confidence: float = 0.95,
                  seed: int = 0) -> ItemComparison:
    """Compare two checkpoints given as {item id: score} on the item ids both were scored on (sorted).

    Reports how many items each has and how many are shared; the difference mean(b) - mean(a) on the shared
    items with its bootstrap interval (``paired_bootstrap``); the test (``paired_test``); the ids where they
    disagree (binary: different correctness; otherwise different scores); and ``loyalty``, the fraction of
    shared items with equal scores (EffiVLM-Bench's agreement of a compressed model with its parent).
    Refuses inputs that share no item."""
    shared = _sorted_ids(set(a) & set(b))
    if not shared:
        raise ValueError(f"the two checkpoints share no item ids (a has {len(a)} items, b has {len(b)}); "
                         "a paired comparison needs items both were scored on")
    a_scores, b_scores = _pair([a[item] for item in shared], [b[item] for item in shared])
    disagree = a_scores != b_scores
    return ItemComparison(
        n_a=len(a), n_b=len(b), n_shared=len(shared),
        difference=paired_bootstrap(a_scores, b_scores, resamples=resamples, confidence=confidence, seed=seed),
        test=paired_test(a_scores, b_scores),
        disagreements=tuple(item for item, differs in zip(shared, disagree) if differs),
        loyalty=float(1.0 - disagree.mean()),
        binary=_is_binary(a_scores) and _is_binary(b_scores),
    )


def _suite_weights(benchmarks: list, weights) -> dict:
    if weights is None:
        return {name: 1.0 / len(benchmarks) for name in benchmarks}
    missing, unknown = set(benchmarks) - set(weights), set(weights) - set(benchmarks)
    if missing or unknown:
        raise ValueError(f"weights must name exactly the benchmarks compared: missing {sorted(map(str, missing))}, "
                         f"unknown {sorted(map(str, unknown))}")
    values = np.array([weights[name] for name in benchmarks], dtype=float)
    if not np.isfinite(values).all() or (values < 0).any() or values.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {dict(weights)}")
    return {name: float(value / values.sum()) for name, value in zip(benchmarks, values)}


def compare_suite(per_benchmark: dict, weights: dict | None = None, *, resamples: int = 10_000,
                  confidence: float = 0.95, seed: int = 0) -> SuiteComparison:
    """Compare two checkpoints on a suite: ``per_benchmark`` maps a benchmark to (a_items, b_items), each a
    {item id: score} dict.  Each benchmark is compared with ``compare_items`` (same seed).  The suite
    difference is the weighted mean of the benchmark differences (``weights``: benchmark -> weight, normalised;
    equal weights by default).  Its interval is a stratified bootstrap: each resample redraws every benchmark's
    shared items with replacement within that benchmark (so each benchmark keeps its size and weight) and takes
    the weighted mean of the resampled differences.  One generator seeded with ``seed`` draws the benchmarks in
    sorted order, so the same seed gives the same interval."""
    if not per_benchmark:
        raise ValueError("no benchmarks to compare")
    _check_bootstrap(resamples, confidence)
    names = _sorted_ids(per_benchmark)
    normalised = _suite_weights(names, weights)
    rng = np.random.default_rng(seed)
    comparisons, suite_draws, difference = {}, np.zeros(int(resamples)), 0.0
    for name in names:
        a_items, b_items = per_benchmark[name]
        try:
            comparison = compare_items(a_items, b_items, resamples=resamples, confidence=confidence, seed=seed)
        except ValueError as error:
            raise ValueError(f"benchmark {name!r}: {error}") from None
        comparisons[name] = comparison
        shared = _sorted_ids(set(a_items) & set(b_items))
        differences = np.array([b_items[item] for item in shared], float) - np.array([a_items[item] for item in
                                                                                       shared], float)
        suite_draws += normalised[name] * resampled_means(differences, int(resamples), rng)
        difference += normalised[name] * comparison.difference.difference
    low, high = _interval(suite_draws, confidence)
    return SuiteComparison(comparisons, normalised, float(difference), low, high, confidence, int(resamples), seed)
