"""What should I deploy? The lowest predicted error within a FLOPs or latency budget, and the runners-up."""

from dataclasses import dataclass

import numpy as np

import fitting
from fitting.fit import json_safe
from webapp.fits.models import ScalingLawFit
from webapp.fits.selectors import cannot_fit_reasons, latest_fit_rows, no_fit_message, split_fits
from webapp.leaderboard.selectors.fits import fit_at, fit_method, scope_matches
from webapp.leaderboard.selectors.rows import (
    Cost,
    LeaderboardError,
    NoFitYet,
    RowFilter,
    filtered_points,
    points_frame,
    suite_with_benchmark_keys,
    visible_scores,
)
from webapp.registry.models import BenchmarkSuite

RUNNERS_UP = 5


@dataclass(frozen=True)
class DeployQuery:
    suite: str
    cost: Cost
    law: str
    budget_flops: float | None = None
    budget_latency_ms: float | None = None
    n_options_b: tuple[float, ...] = ()
    token_options: tuple[int, ...] = ()
    compressors: tuple[str, ...] = ()


def _config(fit: ScalingLawFit, n_b: float, tokens: float, predicted: float, cost: Cost, method=False) -> dict:
    """One configuration; its FLOPs count `method`'s extra (by default the fit's compressor's)."""
    method = fit_method(fit) if method is False else method
    return {
        "n_params_b": float(n_b), "visual_tokens": float(tokens),
        "compressor": fit.compressor.method if fit.compressor else None,
        "compressor_version": fit.compressor.version if fit.compressor else None,
        "fit_scope": fit.scope, "fit_id": fit.pk, "predicted_error": float(predicted),
        "flops": float(cost.flops(n_b, tokens, methods=method)),
    }


def _with_error_intervals(configs: list[dict], law: str) -> None:
    """Give each configuration the 95 % bootstrap interval of its predicted error, from its fit's
    stored parameter draws (read in one query, only for the configurations answered), or a note
    saying why there is none."""
    stored = ScalingLawFit.objects.filter(pk__in={config["fit_id"] for config in configs})
    draws = {pk: np.asarray(rows, dtype=float) for pk, rows in stored.values_list("pk", "parameter_draws")}
    for config in configs:
        interval = fitting.predicted_error_interval(law, draws[config["fit_id"]], config["n_params_b"],
                                                    config["visual_tokens"])
        config["error_interval"] = list(interval) if interval else None
        config["interval_note"] = None if interval else (
            f"fit #{config['fit_id']} has no stored bootstrap draws (fits stored before draws were kept have "
            "none): refit to get an interval of the predicted error"
        )


def deploy_recommendation(user, query: DeployQuery) -> dict:
    """The (N, V, compressor) with the lowest predicted error within a FLOPs budget (the law-optimal
    allocation over the allowed sizes and token counts, per compressor fit) or within a latency
    budget (among measured configurations), and the runners-up."""
    suite, _ = suite_with_benchmark_keys(query.suite)
    fits, cannot = split_fits(latest_fit_rows(suite, laws=[query.law]))
    by_scope: dict[str, list[ScalingLawFit]] = {}
    for fit in fits:
        by_scope.setdefault(fit.scope, []).append(fit)
    chosen = {scope: fit_at(rows, query.cost.query_tokens) for scope, rows in by_scope.items()}
    per_compressor = {
        scope: fit for scope, fit in chosen.items() if scope != "all" and scope_matches(scope, query.compressors)
    }
    if not chosen:
        raise NoFitYet(no_fit_message(suite, [query.law], cannot))
    if query.compressors and not per_compressor:
        fitted = ", ".join(sorted(scope for scope in chosen if scope != "all")) or "none"
        asked = [record for record in cannot if record.scope != "all" and scope_matches(record.scope, query.compressors)]
        why = (cannot_fit_reasons(asked) if asked else
               f"it needs at least {len(fitting.get_law(query.law).parameter_names)} checkpoints with scores")
        raise NoFitYet(
            f"no fit yet for compressor {', '.join(query.compressors)} on suite {suite.name}: {why}; "
            f"compressors with a fit: {fitted}."
        )
    candidates = per_compressor or {"all": chosen["all"]}
    if query.budget_latency_ms is not None:
        return _deploy_by_latency(user, suite, query, candidates, chosen.get("all"))
    return _deploy_by_flops(user, suite, query, candidates)


def _allowed_sets(user, suite: BenchmarkSuite, query: DeployQuery) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The sizes and token counts asked for; by default those of the suite's visible checkpoints."""
    n_options, token_options = query.n_options_b, tuple(float(v) for v in query.token_options)
    if not n_options or not token_options:
        frame = points_frame(filtered_points(user, suite, RowFilter(suite=suite.name)), query.cost).dropna()
        n_options = n_options or tuple(sorted(float(n) for n in frame["llm_params_b"].unique()))
        token_options = token_options or tuple(sorted(float(v) for v in frame["visual_tokens"].unique()))
    if not n_options or not token_options:
        raise LeaderboardError("Give the allowed LLM sizes (n, in billions) and token counts (v): no checkpoint "
                               "on this suite provides defaults yet.")
    return n_options, token_options


def _space(cost: Cost, fit: ScalingLawFit, n_options, token_options) -> fitting.SearchSpace:
    """Where the fit's optimum is sought; v2 QueCC: its query pass makes the LLM read 2·Q query tokens."""
    return fitting.SearchSpace(
        query_tokens=cost.query_tokens_for(fit_method(fit)), generated_tokens=cost.generated_tokens,
        n_options_b=n_options, token_options=token_options, vision_encoder_flops=cost.vision_encoder_flops,
    )


def _deploy_by_flops(user, suite, query: DeployQuery, fits: dict[str, ScalingLawFit]) -> dict:
    n_options, token_options = _allowed_sets(user, suite, query)
    cost = query.cost
    spaces = {scope: _space(cost, fit, n_options, token_options) for scope, fit in fits.items()}
    cheapest = min(space.smallest_cost() for space in spaces.values())
    if query.budget_flops < cheapest:
        raise LeaderboardError(
            f"budget_flops {query.budget_flops:.4g} is below the cheapest allowed configuration "
            f"({cheapest:.4g} FLOPs: N = {min(n_options):g} B, V = {min(token_options):g}, "
            f"Q = {cost.query_tokens:g}, FLOPs formula {cost.formula})."
        )
    best = []
    for scope, fit in fits.items():
        if query.budget_flops < spaces[scope].smallest_cost():
            continue
        allocation = fitting.optimal_allocation(fit.law, fit.params, query.budget_flops, spaces[scope])
        best.append((allocation.predicted_error, fit, allocation))
    predicted_error, fit, allocation = min(best, key=lambda item: item[0])
    recommended = _config(fit, allocation.n_params_b, allocation.visual_tokens, predicted_error, cost)
    recommended["parameter_intervals"] = {name: fit.intervals.get(name) for name in fit.params}

    # Runners-up: every other allowed configuration within budget, ranked by predicted error.
    n_grid, v_grid = (grid.ravel() for grid in np.meshgrid(n_options, token_options))
    ranked = []
    for other in fits.values():
        method = fit_method(other)
        within = cost.flops(n_grid, v_grid, methods=method) <= query.budget_flops * (1 + 1e-12)
        predicted = fitting.get_law(other.law).predict(other.params, n_grid[within], v_grid[within])
        ranked += [(float(p), other, n, v, float(cost.flops(n, v, methods=method)))
                   for p, n, v in zip(predicted, n_grid[within], v_grid[within], strict=True)]
    ranked.sort(key=lambda item: (item[0], item[4]))
    runners_up = [
        _config(other, n, v, p, cost) for p, other, n, v, _ in ranked
        if not (other is fit and n == allocation.n_params_b and v == allocation.visual_tokens)
    ][:RUNNERS_UP]
    _with_error_intervals([recommended, *runners_up], query.law)
    return json_safe({
        "suite": suite.name, **cost.as_dict(), "law": query.law, "budget_flops": query.budget_flops,
        "allowed": {"n_params_b": list(n_options), "visual_tokens": list(token_options),
                    "compressors": sorted(fits)},
        "recommended": recommended, "runners_up": runners_up,
    })


def _deploy_by_latency(user, suite, query: DeployQuery, fits: dict[str, ScalingLawFit], pooled) -> dict:
    """Measured configurations whose latency (time to first token + (G − 1) decode steps) fits the
    budget, ranked by the law's predicted error for their compressor."""
    rows = RowFilter(suite=suite.name, visual_tokens=query.token_options)
    scores = visible_scores(user, suite, rows).exclude(latency_first_token_s=None).exclude(checkpoint__llm=None)
    measured = list(scores.values(
        "checkpoint_id", "checkpoint__name", "checkpoint__llm__n_params", "checkpoint__visual_tokens",
        "checkpoint__compressor__method", "checkpoint__compressor__version", "error",
        "latency_first_token_s", "latency_decode_per_token_s", "latency_device",
    ))
    if not measured:
        raise LeaderboardError(f"No checkpoint on suite {suite.name} has a measured latency yet; use budget_flops.")
    decode_steps = max(query.cost.generated_tokens - 1, 0)
    configurations: dict[tuple, dict] = {}
    for row in measured:
        n_b = row["checkpoint__llm__n_params"] / 1e9
        scope = f"{row['checkpoint__compressor__method']}/{row['checkpoint__compressor__version']}"
        if query.n_options_b and not any(abs(n_b - n) <= 0.05 * n for n in query.n_options_b):
            continue
        fit = fits.get(scope) or (pooled if not query.compressors else None)
        if fit is None:
            continue
        latency_ms = 1000 * (row["latency_first_token_s"] + decode_steps * (row["latency_decode_per_token_s"] or 0.0))
        key = (scope, n_b, row["checkpoint__visual_tokens"])
        if key in configurations and configurations[key]["latency_ms"] <= latency_ms:
            continue
        predicted = float(fitting.get_law(fit.law).predict(fit.params, n_b, row["checkpoint__visual_tokens"]))
        config = _config(fit, n_b, row["checkpoint__visual_tokens"], predicted, query.cost,
                         row["checkpoint__compressor__method"])
        config.update({
            "compressor": row["checkpoint__compressor__method"],
            "compressor_version": row["checkpoint__compressor__version"],
            "latency_ms": latency_ms, "latency_device": row["latency_device"], "measured_error": row["error"],
            "checkpoint": {"id": row["checkpoint_id"], "name": row["checkpoint__name"]},
        })
        configurations[key] = config
    if not configurations:
        raise LeaderboardError("No measured configuration matches the allowed sizes, token counts and compressors.")
    feasible = sorted(
        (c for c in configurations.values() if c["latency_ms"] <= query.budget_latency_ms),
        key=lambda c: (c["predicted_error"], c["latency_ms"]),
    )
    if not feasible:
        fastest = min(configurations.values(), key=lambda c: c["latency_ms"])
        raise LeaderboardError(
            f"No measured configuration meets {query.budget_latency_ms:g} ms; the fastest allowed one takes "
            f"{fastest['latency_ms']:.1f} ms ({fastest['checkpoint']['name']})."
        )
    recommended, runners_up = feasible[0], feasible[1:1 + RUNNERS_UP]
    _with_error_intervals([recommended, *runners_up], query.law)
    return json_safe({
        "suite": suite.name, **query.cost.as_dict(), "law": query.law, "budget_latency_ms": query.budget_latency_ms,
        "allowed": {"n_params_b": list(query.n_options_b), "visual_tokens": list(query.token_options),
                    "compressors": sorted(fits)},
        "recommended": recommended, "runners_up": runners_up,
    })
