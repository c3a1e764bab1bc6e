"""FLOPs, measured frontiers and law-optimal allocations."""
import numpy as np
import pandas as pd
import pytest

from fitting import (FLOPS_FORMULA_VERSION, SearchSpace, fit, inference_flops, optimal_allocation, optimal_curve,
                     optimal_visual_tokens, paper_frame, pareto_frontier, pareto_frontiers, pareto_order, with_flops)


@pytest.fixture(scope="module")
def paper_fit():
    return fit(paper_frame(), leave_one_size_out=False)


def test_flops_formula_counts_parameters_not_billions():
    assert FLOPS_FORMULA_VERSION == "v1"
    assert inference_flops(7, 16) == 2 * 7e9 * 16
    assert inference_flops(0.5, 1, query_tokens=50, generated_tokens=10) == 2 * 0.5e9 * 61
    assert inference_flops(1, 1, vision_encoder_flops=3e11) == 2e9 + 3e11
    table = with_flops(paper_frame(), query_tokens=50)
    assert table["flops"].iloc[0] == 2 * 0.5e9 * 51 and set(table["flops_formula_version"]) == {"v1"}


def test_pareto_frontier_keeps_only_non_dominated_points():
    frame = pd.DataFrame({"flops": [1, 2, 2, 3, 4, 5], "error": [0.5, 0.4, 0.45, 0.42, 0.3, 0.3]})
    assert pareto_frontier(frame).index.tolist() == [0, 1, 4]


@pytest.mark.parametrize("seed", range(20))
def test_pareto_order_equals_the_definition_by_pairwise_dominance(seed):
    """Against the definition, pair by pair: a point is kept unless another is at most as costly and at most
    as bad, and cheaper, better or (the same point) earlier; ties in cost, in error and in both; NaN never kept."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    cost = rng.integers(0, 8, n).astype(float) if seed % 2 else rng.random(n)
    error = rng.integers(0, 6, n) / 5.0
    cost[rng.random(n) < 0.1], error[rng.random(n) < 0.1] = np.nan, np.nan
    expected = [
        i for i in range(n)
        if not np.isnan(cost[i] + error[i]) and not any(
            cost[j] <= cost[i] and error[j] <= error[i] and (cost[j] < cost[i] or error[j] < error[i] or j < i)
            for j in range(n) if j != i and not np.isnan(cost[j] + error[j])
        )
    ]
    kept = pareto_order(cost, error)
    assert sorted(kept.tolist()) == expected
    assert (np.diff(cost[kept]) > 0).all() and (np.diff(error[kept]) < 0).all()  # cheapest first


def test_frontiers_per_group():
    frame = pd.concat([with_flops(paper_frame(), q).assign(suite="reasoning", error=lambda f: 1 - f["avg_score"])
                       for q in (0, 50)])
    frontiers = pareto_frontiers(frame, by=("suite", "query_tokens"))
    assert set(frontiers["query_tokens"]) == {0, 50}
    for _, group in frontiers.groupby("query_tokens"):
        assert group["error"].is_monotonic_decreasing and group["flops"].is_monotonic_increasing


def test_token_optimum_closed_form(paper_fit):
    assert optimal_visual_tokens(paper_fit.law, paper_fit.params, query_tokens=0) == 1.0
    v50 = optimal_visual_tokens(paper_fit.law, paper_fit.params, query_tokens=50)
    assert 12 <= v50 <= 16
    alpha, beta = paper_fit.params["alpha"], paper_fit.params["beta"]
    assert v50 == pytest.approx(beta * 50 / (alpha - beta))
    tokens_win = dict(paper_fit.params, alpha=0.01, beta=0.02)  # α ≤ β: every FLOP goes to tokens
    assert optimal_visual_tokens(paper_fit.law, tokens_win, query_tokens=50) == 576
    with pytest.raises(ValueError, match="no budget-independent token optimum"):
        optimal_visual_tokens("additive", {"A": 1, "B": 1, "alpha": 0.1, "beta": 0.1, "D": 0})


def brute_force(law, params, budget, space):
    n, v = np.meshgrid(np.geomspace(*space.n_range_b, 3000), np.geomspace(*space.token_range, 3000))
    feasible = inference_flops(n, v, space.query_tokens) <= budget
    predicted = np.where(feasible, law.predict(params, n, v), np.inf)
    return predicted.min()


@pytest.mark.parametrize("law_name", ["multiplicative", "additive"])
@pytest.mark.parametrize("budget, query", [(3e11, 50), (1e12, 0), (1e13, 50)])
def test_allocation_beats_a_dense_search(law_name, budget, query):
    result = fit(paper_frame(), law_name, leave_one_size_out=False)
    space = SearchSpace(query_tokens=query, n_range_b=(0.5, 20))
    allocation = optimal_allocation(result.law, result.params, budget, space)
    assert allocation.flops <= budget * (1 + 1e-9)
    assert 0.5 <= allocation.n_params_b <= 20 and 1 <= allocation.visual_tokens <= 576
    assert allocation.predicted_error <= brute_force(result.law, result.params, budget, space) + 1e-12


def test_allocation_over_offered_sizes_and_tokens(paper_fit):
    space = SearchSpace(query_tokens=50, n_options_b=(0.5, 1.8, 4, 7), token_options=(1, 4, 16, 36, 64, 144, 576))
    allocation = optimal_allocation(paper_fit.law, paper_fit.params, 2e12, space)
    assert allocation.n_params_b in space.n_options_b and allocation.visual_tokens in space.token_options
    feasible = [(n, v) for n in space.n_options_b for v in space.token_options if inference_flops(n, v, 50) <= 2e12]
    best = min(feasible, key=lambda pair: paper_fit.predict(*pair))
    assert (allocation.n_params_b, allocation.visual_tokens) == best == (7, 64)
    sizes_only = optimal_allocation(paper_fit.law, paper_fit.params, 2e12, SearchSpace(query_tokens=50, n_options_b=(1.8, 7)))
    assert sizes_only.n_params_b == 7 and sizes_only.flops == pytest.approx(2e12)


def test_curve_and_infeasible_budget(paper_fit):
    space = SearchSpace(query_tokens=0)
    curve = optimal_curve(paper_fit.law, paper_fit.params, np.geomspace(1e8, 1e13, 6), space)
    assert curve["budget_flops"].min() >= space.smallest_cost()
    assert curve["predicted_error"].is_monotonic_decreasing
    assert (curve.loc[curve["n_params_b"] < 20, "visual_tokens"] == 1).all()  # Q = 0: one token until N is capped
    with pytest.raises(ValueError, match="below the cheapest configuration"):
        optimal_allocation(paper_fit.law, paper_fit.params, 1e8, space)
