"""Bootstrap intervals: the paper's known intervals, determinism, exactness of the fast solver,
and the predicted error's interval from stored parameter draws."""
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import least_squares

from fitting import bootstrap, fit, get_law, paper_frame, predicted_error_interval, resample
from fitting.points import points_from_frame
from fitting.uncertainty import _resample_weights


@pytest.fixture(scope="module")
def paper_bootstrap():
    return bootstrap(paper_frame(), n_resamples=1000, seed=0, budgets=(1e12,))


def test_point_bootstrap_reproduces_the_known_intervals(paper_bootstrap):
    low, high = paper_bootstrap.intervals["alpha"]
    assert low == pytest.approx(0.0685, abs=1e-3) and high == pytest.approx(0.0734, abs=1e-3)
    low, high = paper_bootstrap.intervals["beta"]
    assert low == pytest.approx(0.0138, abs=1e-3) and high == pytest.approx(0.0168, abs=1e-3)
    assert paper_bootstrap.n_valid == 1000


def test_intervals_cover_the_derived_decisions(paper_bootstrap):
    intervals, estimate = paper_bootstrap.intervals, paper_bootstrap.estimate
    assert intervals["V*(Q=0)"] == (1.0, 1.0)
    assert 11.5 <= intervals["V*(Q=50)"][0] < estimate["V*(Q=50)"] < intervals["V*(Q=50)"][1] <= 16.5
    assert intervals["alpha/beta"][0] < estimate["alpha/beta"] < intervals["alpha/beta"][1]
    low, high = intervals["N*(C=1e+12,Q=50)"]
    assert low < estimate["N*(C=1e+12,Q=50)"] < high
    assert set(paper_bootstrap.to_dict()["intervals"]) == set(paper_bootstrap.draws.columns)


def test_thousand_resamples_take_under_two_seconds(paper_bootstrap):
    assert paper_bootstrap.seconds < 2.0


def test_seeded_and_size_resampling():
    same = [bootstrap(paper_frame(), n_resamples=200, seed=3, unit="sizes").intervals for _ in range(2)]
    assert same[0] == same[1]
    other = bootstrap(paper_frame(), n_resamples=200, seed=4, unit="sizes")
    assert other.intervals != same[0]
    assert other.n_valid < 200  # resamples holding a single LLM size are dropped


def test_vectorised_refits_match_least_squares_per_resample():
    frame = paper_frame()
    points = points_from_frame(frame)
    result = bootstrap(frame, n_resamples=8, seed=1)
    weights = _resample_weights(np.random.default_rng(1), points.n_params_b, 8, "points")
    full = fit(frame, leave_one_size_out=False)
    for weight, (_, draw) in zip(weights, result.draws.iterrows(), strict=True):
        def residuals(x, weight=weight):
            return np.sqrt(weight) * (x[0] / (points.n_params_b ** x[1] * points.visual_tokens ** x[2]) + x[3] - points.error)
        upper = points.error[weight > 0].min()
        reference = least_squares(residuals, [full.params[k] for k in ("A", "alpha", "beta", "D")],
                                  bounds=([0, 0, 0, 0], [np.inf, np.inf, np.inf, upper]), xtol=1e-14, ftol=1e-14)
        ours = residuals(draw[["A", "alpha", "beta", "D"]].to_numpy(float))
        assert ours @ ours <= 2 * reference.cost * (1 + 1e-7)
        assert draw["alpha"] == pytest.approx(reference.x[1], abs=1e-4)


# --- The predicted error's interval from parameter draws ---------------------------------------------


def parameter_draws(result) -> np.ndarray:
    return result.draws[list(result.law.parameter_names)].to_numpy()


def test_predicted_error_interval_contains_the_fits_prediction_on_the_papers_data(paper_bootstrap):
    full = fit(paper_frame(), leave_one_size_out=False)
    for n_params_b, visual_tokens in [(0.5, 1), (1.8, 16), (4, 4), (7, 576), (14, 64)]:
        low, high = predicted_error_interval("multiplicative", parameter_draws(paper_bootstrap), n_params_b,
                                             visual_tokens)
        predicted = float(full.predict(n_params_b, visual_tokens))
        assert low < predicted < high and high - low < 0.02 * predicted, (n_params_b, visual_tokens)


def test_predicted_error_interval_broadcasts_over_configurations(paper_bootstrap):
    draws = parameter_draws(paper_bootstrap)
    sizes, tokens = np.meshgrid([0.5, 4, 7], [1, 16, 64, 576])
    low, high = predicted_error_interval("multiplicative", draws, sizes, tokens)
    assert low.shape == high.shape == (4, 3)
    assert (low[2, 1], high[2, 1]) == pytest.approx(predicted_error_interval("multiplicative", draws, 4, 64))
    narrower = predicted_error_interval("multiplicative", draws, 4, 64, confidence=0.5)
    assert low[2, 1] < narrower[0] < narrower[1] < high[2, 1]


def synthetic_grid(sizes, tokens, seed: int) -> pd.DataFrame:
    """Errors from the paper's multiplicative fit at every (N, V) of the grid, with seeded noise."""
    truth = fit(paper_frame(), leave_one_size_out=False).params
    n_params_b, visual_tokens = (grid.ravel() for grid in np.meshgrid(sizes, tokens))
    noise = np.random.default_rng(seed).normal(0, 0.005, n_params_b.size)
    error = get_law("multiplicative").predict(truth, n_params_b, visual_tokens) + noise
    return pd.DataFrame({"llm_params_b": n_params_b, "visual_tokens": visual_tokens, "error": error})


def test_predicted_error_interval_narrows_with_more_data():
    widths = []
    for sizes, tokens in [((0.5, 2, 7), (1, 16, 576)), (np.geomspace(0.5, 7, 6), np.geomspace(1, 576, 8))]:
        result = bootstrap(synthetic_grid(sizes, tokens, seed=0), n_resamples=400, seed=0)
        low, high = predicted_error_interval("multiplicative", parameter_draws(result), 4, 16)
        widths.append(high - low)
    nine_points, forty_eight_points = widths
    assert nine_points > 2 * forty_eight_points > 0


def test_predicted_error_interval_is_none_without_draws_and_refuses_misshapen_ones():
    assert predicted_error_interval("multiplicative", [], 4, 16) is None
    with pytest.raises(ValueError, match=r"rows of 4 values \(A, alpha, beta, D\); got an array of shape \(2, 3\)"):
        predicted_error_interval("multiplicative", [[0.6, 0.07, 0.015]] * 2, 4, 16)
    with pytest.raises(ValueError, match="confidence must lie strictly between 0 and 1"):
        predicted_error_interval("multiplicative", [[0.6, 0.07, 0.015, 0.0]], 4, 16, confidence=95)


def test_resamples_drawn_once_give_each_law_the_bootstrap_it_draws_itself():
    """The refit draws one scope's resamples once for both laws: each law's intervals and draws must be those
    of its own bootstrap with the same seed, and resamples of other points are refused."""
    frame = paper_frame()
    shared = resample(frame, n_resamples=300, seed=5)
    for law in ("multiplicative", "additive"):
        alone = bootstrap(frame, law, n_resamples=300, seed=5)
        reused = bootstrap(frame, law, n_resamples=300, seed=5, resamples=shared)
        assert reused.intervals == alone.intervals and reused.n_valid == alone.n_valid
        pd.testing.assert_frame_equal(reused.draws, alone.draws)
    with pytest.raises(ValueError, match="other points, seed"):
        bootstrap(frame.iloc[:-1], n_resamples=300, seed=5, resamples=shared)
    with pytest.raises(ValueError, match="other points, seed"):
        bootstrap(frame, n_resamples=300, seed=6, resamples=shared)
