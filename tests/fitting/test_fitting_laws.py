"""Fitting: known-parameter recovery, brute-force comparison, the paper's table, new laws."""
import itertools

import numpy as np
import pandas as pd
import pytest

from fitting import LAWS, Law, PowerTerm, fit, paper_frame
from fitting.laws import get_law


def synthetic_frame(law_name, params, noise=1e-4, seed=0):
    law = get_law(law_name)
    n, v = np.meshgrid([0.5, 1.0, 2.0, 4.0, 8.0, 16.0], [1, 4, 16, 64, 256, 576])
    error = law.predict(params, n.ravel(), v.ravel()) + np.random.default_rng(seed).normal(0, noise, n.size)
    return pd.DataFrame({"llm_params_b": n.ravel(), "visual_tokens": v.ravel(), "avg_score": 1 - error})


@pytest.mark.parametrize("law_name, truth", [
    ("multiplicative", {"A": 0.6, "alpha": 0.12, "beta": 0.04, "D": 0.15}),
    ("additive", {"A": 0.3, "B": 0.2, "alpha": 0.2, "beta": 0.1, "D": 0.1}),
])
def test_recovers_known_parameters_from_noisy_synthetic_data(law_name, truth):
    result = fit(synthetic_frame(law_name, truth), law_name)
    for name, value in truth.items():
        assert result.params[name] == pytest.approx(value, rel=0.1, abs=0.01), name
    assert result.params["alpha"] == pytest.approx(truth["alpha"], rel=0.05)
    assert result.rmse < 2e-4
    assert result.active_bounds == []


def test_equals_or_beats_brute_force_grid():
    frame = paper_frame()
    points_error = 1 - frame["avg_score"].to_numpy()
    n, v = frame["llm_params_b"].to_numpy(), frame["visual_tokens"].to_numpy()
    grid = np.array(list(itertools.product(np.linspace(0.3, 0.8, 21), np.linspace(0, 0.15, 21),
                                           np.linspace(0, 0.04, 21), np.linspace(0, 0.3, 16))))
    predicted = grid[:, :1] / (n ** grid[:, 1:2] * v ** grid[:, 2:3]) + grid[:, 3:]
    brute_force_sse = np.min(np.sum((predicted - points_error) ** 2, axis=1))
    assert fit(frame).sse <= brute_force_sse


def test_paper_table_matches_the_known_fit():
    result = fit(paper_frame())
    assert 0.0685 <= result.params["alpha"] <= 0.0734
    assert 0.0138 <= result.params["beta"] <= 0.0168
    assert result.sse <= 3.80e-4
    assert result.loso_mape_by_size[7.0] <= 0.6
    assert set(result.loso_mape_by_size) == {0.5, 1.8, 4.0, 7.0}
    assert result.active_bounds == ["D=0"]
    assert any("D is at its lower bound 0" in warning for warning in result.warnings)
    assert result.r2 > 0.99 and result.mape < 1.0


def test_additive_law_on_paper_table():
    result = fit(paper_frame(), "additive")
    assert result.params["alpha"] == pytest.approx(0.1011, abs=5e-4)
    assert result.params["beta"] == pytest.approx(0.0501, abs=5e-4)
    assert result.sse <= 3.17e-4
    assert result.loso_mape_by_size[7.0] <= 0.4


def test_fit_is_deterministic_and_result_serialises():
    first, second = fit(paper_frame()), fit(paper_frame())
    assert first.params == second.params
    payload = first.to_dict()
    assert payload["law"] == "multiplicative" and len(payload["points"]) == 28
    residuals = [row["residual"] for row in payload["points"]]
    assert sum(r * r for r in residuals) == pytest.approx(first.sse)


def test_an_exponent_on_its_bound_is_flagged():
    frame = synthetic_frame("additive", {"A": 0.2, "B": 0.2, "alpha": 0.0, "beta": 0.1, "D": 0.1}, noise=0)
    result = fit(frame, "additive")
    assert "alpha=0" in result.active_bounds or "A=0" in result.active_bounds
    assert any("lower bound 0" in warning for warning in result.warnings)


@pytest.mark.parametrize("loss", ["huber", "huber_log"])
def test_robust_losses_resist_an_outlier(loss):
    truth = {"A": 0.6, "alpha": 0.12, "beta": 0.04, "D": 0.15}
    frame = synthetic_frame("multiplicative", truth, noise=1e-5)
    frame.loc[3, "avg_score"] -= 0.05
    squared, robust = fit(frame), fit(frame, loss=loss)
    assert abs(robust.params["alpha"] - 0.12) < abs(squared.params["alpha"] - 0.12)
    assert robust.params["alpha"] == pytest.approx(0.12, rel=0.02)


def test_a_new_law_is_a_few_lines():
    size_only = Law("size_only", "A / N^alpha + D", (PowerTerm("A", (("alpha", "N"),)),))
    n, v = np.meshgrid([0.5, 1, 2, 4, 8], [1, 16, 576])
    frame = pd.DataFrame({"llm_params_b": n.ravel(), "visual_tokens": v.ravel(),
                          "error": size_only.predict({"A": 0.3, "alpha": 0.25, "D": 0.2}, n.ravel(), v.ravel())})
    result = fit(frame, size_only)
    assert result.params == pytest.approx({"A": 0.3, "alpha": 0.25, "D": 0.2}, abs=1e-6)
    assert set(LAWS) >= {"multiplicative", "additive"}
    with pytest.raises(ValueError, match="unknown law 'cubic'"):
        fit(frame, "cubic")
