"""Measured Pareto frontiers and law-optimal (N, V) allocations under a FLOPs budget."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fitting.flops import PARAMETERS_PER_BILLION, inference_flops
from fitting.laws import Law, get_law


def pareto_order(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Positions of the points not dominated in (cost, error), cheapest first: no other point is at most as
    costly and strictly better (of equal points, the first). One sort by cost, then linear passes: per group
    of equal cost its lowest error (the group's first such point), kept when below every cheaper group's.
    Rows with NaN are never kept."""
    cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
    known = np.flatnonzero(~(np.isnan(cost) | np.isnan(error)))
    if not len(known):
        return known
    order = known[np.argsort(cost[known], kind="stable")]
    sorted_cost, sorted_error = cost[order], error[order]
    new_group = np.concatenate(([True], sorted_cost[1:] != sorted_cost[:-1]))
    group = np.cumsum(new_group) - 1
    group_min = np.minimum.reduceat(sorted_error, np.flatnonzero(new_group))
    best = np.flatnonzero(sorted_error == group_min[group])  # in cost order, so each group's first comes first
    first = best[np.concatenate(([True], group[best][1:] != group[best][:-1]))]
    cheaper_best = np.concatenate(([np.inf], np.minimum.accumulate(group_min)[:-1]))
    return order[first[group_min[group[first]] < cheaper_best[group[first]]]]


def pareto_frontier(frame: pd.DataFrame, cost: str = "flops", error: str = "error") -> pd.DataFrame:
    """Rows not dominated in (cost, error): no other row is at most as costly and strictly better."""
    return frame.iloc[pareto_order(frame[cost].to_numpy(float), frame[error].to_numpy(float))]


def pareto_frontiers(frame: pd.DataFrame, by=("suite", "query_tokens"), cost: str = "flops",
                     error: str = "error") -> pd.DataFrame:
    """The frontier of each group (e.g. per suite and query length), concatenated."""
    by = [column for column in by if column in frame.columns]
    if not by:
        return pareto_frontier(frame, cost, error)
    return pd.concat([pareto_frontier(group, cost, error) for _, group in frame.groupby(by, sort=True)])


@dataclass(frozen=True)
class SearchSpace:
    """Where to look for the optimum.  N in billions; options restrict N or V to given values."""

    query_tokens: float = 0.0
    generated_tokens: float = 0.0
    n_range_b: tuple[float, float] = (0.5, 20.0)
    token_range: tuple[float, float] = (1.0, 576.0)
    n_options_b: tuple[float, ...] | None = None
    token_options: tuple[float, ...] | None = None
    vision_encoder_flops: float = 0.0

    @property
    def overhead_tokens(self) -> float:
        return self.query_tokens + self.generated_tokens

    def smallest_cost(self) -> float:
        n = min(self.n_options_b) if self.n_options_b else self.n_range_b[0]
        v = min(self.token_options) if self.token_options else self.token_range[0]
        return float(inference_flops(n, v, self.query_tokens, self.generated_tokens, self.vision_encoder_flops))


@dataclass(frozen=True)
class Allocation:
    budget_flops: float
    n_params_b: float
    visual_tokens: float
    predicted_error: float
    flops: float


def _exponent_pair(law: Law, parameters):
    """(α, β) arrays of a single-product-term law A·N^−α·V^−β + D."""
    _, exponents, _ = law.split(parameters)
    by_variable = {variable: law.exponent_names.index(name) for name, variable in law.terms[0].powers}
    return exponents[..., by_variable["N"]], exponents[..., by_variable["V"]]


def token_optimum(law: Law, parameters, overhead_tokens: float, token_range=(1.0, 576.0)):
    """Budget-independent optimal V for A·N^−α·V^−β + D with N free: V* = β(Q+G)/(α−β).

    Along 2N(Q+V+G) = C the error is ∝ (Q+V+G)^α·V^−β.  If α > β it falls then rises, with
    its minimum at V*; if α ≤ β it keeps falling, so every extra FLOP should go to tokens
    (V* = the largest V).  The result is clipped to token_range.
    """
    alpha, beta = _exponent_pair(law, np.asarray(parameters, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = beta * overhead_tokens / (alpha - beta)
    return np.clip(np.where(alpha > beta, interior, np.inf), *token_range)


def optimal_visual_tokens(law: str | Law, params: dict, query_tokens=0.0, generated_tokens=0.0,
                          token_range=(1.0, 576.0)) -> float:
    law = get_law(law)
    if not law.single_product_term:
        raise ValueError(f"the {law.name} law has no budget-independent token optimum; use optimal_allocation")
    return float(token_optimum(law, law.vector(params), query_tokens + generated_tokens, token_range))


def _golden_section(objective, low, high, iterations=60):
    """Vectorised golden-section minimisation of objective(x) (arrays) on [low, high]."""
    ratio = (np.sqrt(5) - 1) / 2
    a, b = low.copy(), high.copy()
    for _ in range(iterations):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        left = objective(c) < objective(d)
        a, b = np.where(left, a, c), np.where(left, d, b)
    return (a + b) / 2


def allocate(law: Law, parameters, budget_flops: float, space: SearchSpace):
    """Optimal (N_b, V, error) per parameter row (R, n_parameters) for one budget."""
    parameters = np.atleast_2d(np.asarray(parameters, dtype=float))
    n_rows = len(parameters)
    if budget_flops < space.smallest_cost():
        raise ValueError(f"budget {budget_flops:.3g} FLOPs is below the cheapest configuration "
                         f"({space.smallest_cost():.3g} FLOPs)")
    # Budget in "billions of parameters × tokens": N_b · (Q + V + G) ≤ capacity.
    capacity = (budget_flops - space.vision_encoder_flops) / (2 * PARAMETERS_PER_BILLION)
    overhead = space.overhead_tokens
    (n_low, n_high), (v_low, v_high) = space.n_range_b, space.token_range
    if space.n_options_b is not None or space.token_options is not None:
        if space.n_options_b is not None and space.token_options is not None:
            n_grid, v_grid = np.meshgrid(space.n_options_b, space.token_options)
            n_candidates, v_candidates = n_grid.ravel(), v_grid.ravel()
            feasible = n_candidates * (overhead + v_candidates) <= capacity * (1 + 1e-12)
        elif space.n_options_b is not None:
            n_candidates = np.asarray(space.n_options_b, dtype=float)
            v_candidates = np.minimum(v_high, capacity / n_candidates - overhead)
            feasible = v_candidates >= v_low
        else:
            v_candidates = np.asarray(space.token_options, dtype=float)
            n_candidates = np.minimum(n_high, capacity / (overhead + v_candidates))
            feasible = n_candidates >= n_low
        n_candidates, v_candidates = n_candidates[feasible], v_candidates[feasible]
        errors = law.predict(parameters, n_candidates, v_candidates)
        best = np.argmin(errors, axis=1)
        return n_candidates[best], v_candidates[best], errors[np.arange(n_rows), best]
    # Continuous: the budget binds (error falls in N and V), so N = capacity / (Q + V + G) capped
    # at n_high; V must keep N ≥ n_low, and V below v_floor would leave N capped anyway.
    v_floor = np.full(n_rows, np.clip(capacity / n_high - overhead, v_low, v_high))
    v_ceiling = np.full(n_rows, np.clip(capacity / n_low - overhead, v_low, v_high))

    def n_for(v):
        return np.minimum(n_high, capacity / (overhead + v))

    if law.single_product_term:
        v = np.clip(token_optimum(law, parameters, overhead, space.token_range), v_floor, v_ceiling)
    else:
        log_grid = np.linspace(np.log(v_floor), np.log(v_ceiling), 65, axis=1)
        grid_errors = law.predict_each(parameters, n_for(np.exp(log_grid)), np.exp(log_grid))
        best = np.argmin(grid_errors, axis=1)
        rows = np.arange(n_rows)
        low = log_grid[rows, np.maximum(best - 1, 0)]
        high = log_grid[rows, np.minimum(best + 1, log_grid.shape[1] - 1)]
        v = np.exp(_golden_section(lambda x: law.predict_each(parameters, n_for(np.exp(x))[:, None],
                                                              np.exp(x)[:, None])[:, 0], low, high))
    n = n_for(v)
    return n, v, law.predict_each(parameters, n[:, None], v[:, None])[:, 0]


def optimal_allocation(law: str | Law, params: dict, budget_flops: float, space: SearchSpace = SearchSpace()) -> Allocation:
    """(N, V) minimising the law's predicted error subject to FLOPs ≤ budget."""
    law = get_law(law)
    n, v, predicted = allocate(law, law.vector(params), budget_flops, space)
    flops = inference_flops(n[0], v[0], space.query_tokens, space.generated_tokens, space.vision_encoder_flops)
    return Allocation(float(budget_flops), float(n[0]), float(v[0]), float(predicted[0]), float(flops))


def optimal_curve(law: str | Law, params: dict, budgets, space: SearchSpace = SearchSpace()) -> pd.DataFrame:
    """Law-optimal allocation for each feasible budget (budgets below the cheapest configuration are skipped)."""
    budgets = [b for b in np.asarray(budgets, dtype=float) if b >= space.smallest_cost()]
    return pd.DataFrame([asdict(optimal_allocation(law, params, b, space)) for b in budgets],
                        columns=[f for f in Allocation.__dataclass_fields__])
