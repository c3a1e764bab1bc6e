"""Bootstrap intervals: the paper's known intervals, determinism, exactness of the fast solver."""
import numpy as np
import pytest
from scipy.optimize import least_squares

from fitting import bootstrap, fit, paper_frame
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
    for weight, (_, draw) in zip(weights, result.draws.iterrows()):
        def residuals(x):
            return np.sqrt(weight) * (x[0] / (points.n_params_b ** x[1] * points.visual_tokens ** x[2]) + x[3] - points.error)
        upper = points.error[weight > 0].min()
        reference = least_squares(residuals, [full.params[k] for k in ("A", "alpha", "beta", "D")],
                                  bounds=([0, 0, 0, 0], [np.inf, np.inf, np.inf, upper]), xtol=1e-14, ftol=1e-14)
        ours = residuals(draw[["A", "alpha", "beta", "D"]].to_numpy(float))
        assert ours @ ours <= 2 * reference.cost * (1 + 1e-7)
        assert draw["alpha"] == pytest.approx(reference.x[1], abs=1e-4)
