"""Repeated configurations are data: checkpoints with the same (N, V) (seeds, compressors or LLM
families of one size) each count once in the least squares, which is one point per configuration
at its mean error weighted by its number of checkpoints; their spread is kept; the bootstrap
resamples checkpoints, so the spread between seeds widens the intervals."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import least_squares

from fitting import bootstrap, fit, get_law, points_from_frame
from fitting.replicates import POOLING, configurations
from fitting.uncertainty import _resample_weights

TRUTH = {"A": 0.6, "alpha": 0.1, "beta": 0.02, "D": 0.1}
LAW = get_law("multiplicative")


def law(n, v):
    return TRUTH["A"] / (n ** TRUTH["alpha"] * v ** TRUTH["beta"]) + TRUTH["D"]


def hand_example() -> pd.DataFrame:
    """Six configurations; (1, 1) measured by three seeds, (4, 16) by two, the others once.

    The seeds scatter around the law so that each configuration's mean lies exactly on it:
    (1, 1): 0.71, 0.71, 0.68 (mean 0.70 = A + D); (4, 16): f ± 0.005."""
    f = law(4, 16)
    rows = [(1, 1, 0.71), (1, 1, 0.71), (1, 1, 0.68), (4, 16, f + 0.005), (4, 16, f - 0.005),
            (1, 16, law(1, 16)), (1, 64, law(1, 64)), (4, 1, law(4, 1)), (4, 64, law(4, 64))]
    return pd.DataFrame(rows, columns=["llm_params_b", "visual_tokens", "error"])


def test_the_hand_computed_example():
    frame = hand_example()
    result = fit(frame)

    # The law passes through every configuration mean, so it recovers the truth and its SSE is
    # exactly the spread between seeds: 0.01² + 0.01² + 0.02² + 0.005² + 0.005² = 6.5e-4.
    for name, value in TRUTH.items():
        assert result.params[name] == pytest.approx(value, abs=1e-6), name
    assert result.sse == pytest.approx(6.5e-4, rel=1e-6)
    assert result.rmse == pytest.approx(math.sqrt(6.5e-4 / 9), rel=1e-6)
    errors = frame["error"].to_numpy()
    assert result.r2 == pytest.approx(1 - 6.5e-4 / np.sum((errors - errors.mean()) ** 2), rel=1e-6)
    assert result.predict(1, 1) == pytest.approx(0.70, abs=1e-7)
    assert len(result.residuals) == 9  # residuals stay per checkpoint

    method = result.to_dict()["method"]
    assert method["repeats"] == POOLING
    assert (method["checkpoints"], method["configurations"], method["repeated_configurations"]) == (9, 6, 2)
    assert method["most_repeats"] == 3
    assert method["within_configuration_sse"] == pytest.approx(6.5e-4, rel=1e-9)
    # pooled SD of a checkpoint around its configuration's mean: sqrt(6.5e-4 / (9 − 6))
    assert method["within_configuration_sd"] == pytest.approx(0.0147196, abs=1e-7)


def test_configurations_keep_each_mean_count_and_spread():
    table = configurations(points_from_frame(hand_example()))
    by_configuration = {(n, v): (count, mean, sd) for n, v, count, mean, sd in zip(
        table.n_params_b, table.visual_tokens, table.count, table.mean_error, table.sd, strict=True)}
    count, mean, sd = by_configuration[(1.0, 1.0)]
    assert (count, mean) == (3, pytest.approx(0.70))
    assert sd == pytest.approx(math.sqrt((0.01**2 + 0.01**2 + 0.02**2) / 2))  # 0.017320508
    count, mean, sd = by_configuration[(4.0, 16.0)]
    assert (count, mean, sd) == (2, pytest.approx(law(4, 16)), pytest.approx(0.005 * math.sqrt(2)))
    assert np.isnan(by_configuration[(1.0, 64.0)][2])  # one checkpoint: no spread to measure
    assert table.within_sse == pytest.approx(6.5e-4)


def test_unequal_repeats_weigh_each_configuration_by_its_checkpoints():
    """Checked against scipy: weighted least squares on the configuration means, weights = counts."""
    frame = hand_example()
    frame.loc[0:2, "error"] = [0.78, 0.77, 0.79]  # (1, 1) now sits well above the law, three times over
    result = fit(frame, leave_one_size_out=False)

    table = configurations(points_from_frame(frame))

    def weighted(x):
        predicted = x[0] / (table.n_params_b ** x[1] * table.visual_tokens ** x[2]) + x[3]
        return np.sqrt(table.count) * (predicted - table.mean_error)

    reference = least_squares(weighted, list(TRUTH.values()), bounds=([0] * 4, [np.inf] * 3 + [table.mean_error.min()]),
                              xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert [result.params[name] for name in TRUTH] == pytest.approx(reference.x, rel=1e-4, abs=1e-7)

    def unweighted(x):
        return x[0] / (table.n_params_b ** x[1] * table.visual_tokens ** x[2]) + x[3] - table.mean_error

    naive = least_squares(unweighted, list(TRUTH.values()), bounds=([0] * 4, [np.inf] * 3 + [table.mean_error.min()]))
    assert abs(result.params["alpha"] - naive.x[1]) > 1e-3  # counting each configuration once would differ


def seeded_grid(spread: float, seeds: int = 3) -> pd.DataFrame:
    n, v = (axis.ravel() for axis in np.meshgrid([0.5, 1.8, 4, 7], [1, 4, 16, 64, 144]))
    n, v = np.tile(n, seeds), np.tile(v, seeds)
    noise = np.random.default_rng(0).normal(0, spread, n.size) if spread else np.zeros(n.size)
    return pd.DataFrame({"llm_params_b": n, "visual_tokens": v, "error": law(n, v) + noise})


def test_the_bootstrap_resamples_checkpoints_so_seed_spread_widens_the_intervals():
    exact = bootstrap(seeded_grid(0.0), n_resamples=200, seed=0)
    noisy = bootstrap(seeded_grid(0.01), n_resamples=200, seed=0)

    exact_width = np.subtract(*exact.intervals["alpha"][::-1])
    noisy_width = np.subtract(*noisy.intervals["alpha"][::-1])
    assert exact_width < 1e-6  # seeds that agree: every resample finds the same law
    assert noisy_width > 100 * max(exact_width, 1e-6)
    low, high = noisy.intervals["alpha"]
    assert low < TRUTH["alpha"] < high
    assert noisy.to_dict()["resampled"] == "checkpoints" and noisy.n_valid == 200


def test_pooled_bootstrap_draws_match_refits_on_the_resampled_checkpoints():
    """The vectorised bootstrap on configurations equals fitting each resample's checkpoints."""
    frame = seeded_grid(0.01, seeds=2)
    points = points_from_frame(frame)
    result = bootstrap(frame, n_resamples=5, seed=2)
    weights = _resample_weights(np.random.default_rng(2), points.n_params_b, 5, "points")
    for weight, (_, draw) in zip(weights, result.draws.iterrows(), strict=True):
        kept = np.repeat(np.arange(len(points)), weight.astype(int))
        refit = fit(points.subset(kept), leave_one_size_out=False)
        assert draw["alpha"] == pytest.approx(refit.params["alpha"], abs=2e-4)
        assert draw["beta"] == pytest.approx(refit.params["beta"], abs=2e-4)


def test_resample_weights_are_linear_in_memory():
    """10,000 checkpoints × 1,000 resamples: an R × n × n comparison would need 100 GB."""
    weights = _resample_weights(np.random.default_rng(0), np.ones(10_000), 1_000, "points")
    assert weights.shape == (1_000, 10_000) and (weights.sum(axis=1) == 10_000).all()
    assert weights.mean() == 1.0 and 0.9 < weights.var() < 1.1  # counts of n draws from n: variance ≈ 1


def test_many_seeds_of_few_configurations_fit_as_fast_as_the_configurations():
    frame = seeded_grid(0.01, seeds=500)  # 10,000 checkpoints at 20 configurations
    result = fit(frame)
    draws = bootstrap(frame, n_resamples=200, seed=0, full_fit=result)
    assert result.to_dict()["method"]["configurations"] == 20 and len(result.points) == 10_000
    assert draws.n_valid == 200 and draws.intervals["alpha"][0] < TRUTH["alpha"] < draws.intervals["alpha"][1]


def test_large_configurations_resample_through_the_normal_limit_with_the_exact_bootstrap_s_intervals():
    """Past EXACT_UP_TO checkpoints a configuration's resampled mean comes from its normal limit, so 100,000
    checkpoints cost what 30,000 do (issue #16); the intervals must be those of the exact bootstrap (drawing
    every checkpoint), within the Monte-Carlo error of 2,000 resamples."""
    frame = seeded_grid(0.02, seeds=300)  # 6,000 checkpoints, 20 configurations of 300
    exact = bootstrap(frame, n_resamples=2000, seed=1, exact_up_to=10**9)
    limit = bootstrap(frame, n_resamples=2000, seed=2, exact_up_to=50)
    assert exact.scheme == "checkpoints drawn with replacement" and "at most 50 checkpoints" in limit.scheme
    assert limit.to_dict()["scheme"] == limit.scheme and limit.n_valid == 2000
    for name in ("A", "alpha", "beta"):
        (low, high), (other_low, other_high) = exact.intervals[name], limit.intervals[name]
        width = high - low
        assert abs(other_low - low) < 0.1 * width and abs(other_high - high) < 0.1 * width, (name, exact.intervals,
                                                                                           limit.intervals)


def test_per_configuration_resamples_have_the_exact_bootstrap_s_counts_and_means():
    """Counts are multinomial(n, share); a small configuration's mean is drawn from its members exactly, a
    large one's from N(mean, sd/sqrt(k)): both have the exact bootstrap's first two moments."""
    from fitting.replicates import configurations
    from fitting.uncertainty import _pooled_by_configuration

    rng = np.random.default_rng(0)
    points = points_from_frame(pd.DataFrame({
        "llm_params_b": np.r_[np.full(40, 1.0), np.full(400, 2.0)], "visual_tokens": 1.0,
        "error": np.r_[rng.uniform(0.2, 0.4, 40), rng.exponential(0.05, 400) + 0.1]}))
    table = configurations(points)
    counts, means = _pooled_by_configuration(np.random.default_rng(1), table, points.error, 20_000, exact_up_to=100)
    assert (counts.sum(axis=1) == 440).all()
    share = table.count / 440
    assert counts.mean(axis=0) == pytest.approx(table.count, rel=0.01)
    assert counts.var(axis=0) == pytest.approx(440 * share * (1 - share), rel=0.05)
    for column in range(2):
        members = points.error[table.index == column]
        assert means[:, column].mean() == pytest.approx(members.mean(), abs=2e-4)
        assert means[:, column].std() == pytest.approx(members.std() / np.sqrt(len(members)), rel=0.05)


def test_residuals_are_per_checkpoint_up_to_a_limit_then_per_configuration():
    result = fit(hand_example(), leave_one_size_out=False)
    per_checkpoint = result.residual_rows()
    assert len(per_checkpoint) == 9 and result.to_dict()["points"] == per_checkpoint
    pooled = result.residual_rows(max_rows=5)
    assert len(pooled) == 6 and sum(row["checkpoints"] for row in pooled) == 9
    first = next(row for row in pooled if (row["llm_params_b"], row["visual_tokens"]) == (1, 1))
    assert first["checkpoints"] == 3 and first["error"] == pytest.approx(0.70)
    assert first["predicted"] == pytest.approx(float(result.predict(1.0, 1.0)))
    assert first["residual"] == pytest.approx(0.70 - first["predicted"])
    # the pooled residual is the mean of its checkpoints' residuals
    assert first["residual"] == pytest.approx(np.mean([r["residual"] for r in per_checkpoint
                                                       if (r["llm_params_b"], r["visual_tokens"]) == (1, 1)]))
    assert len(result.to_dict(max_points=5)["points"]) == 6


def test_grouping_by_configuration_equals_numpy_unique_on_the_pairs():
    """The hashed grouping (milliseconds at 100,000 points) gives np.unique(axis=...)'s answer exactly."""
    from fitting.points import Points, distinct_pairs

    rng = np.random.default_rng(3)
    n = rng.choice([0.46, 0.5, 1.8, 1.84, 4.0, 7.0, 1e-3], 5000)
    v = rng.choice([1.0, 4.0, 16.0, 36.0, 576.0], 5000)
    reference, inverse = np.unique(np.stack([n, v], axis=1), axis=0, return_inverse=True)
    table = configurations(Points(n, v, rng.uniform(0, 1, 5000)))
    assert np.array_equal(table.n_params_b, reference[:, 0]) and np.array_equal(table.visual_tokens, reference[:, 1])
    assert np.array_equal(table.index, np.asarray(inverse).ravel())
    assert np.array_equal(distinct_pairs(n, v), np.unique(np.stack([n, v]), axis=1))
