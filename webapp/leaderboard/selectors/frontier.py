"""The frontier chart: points, the measured Pareto frontier, and the chosen law's curves."""

import numpy as np
import pandas as pd
from django.conf import settings

import fitting
from fitting.fit import json_safe
from webapp.fits.models import ScalingLawFit
from webapp.fits.selectors import latest_fit_rows, no_fit_message, split_fits
from webapp.leaderboard.selectors.fits import fit_at, fit_decisions, fit_method, fit_n_convention, scope_matches
from webapp.leaderboard.selectors.rows import Cost, RowFilter, suite_with_benchmark_keys, visible_scores
from webapp.registry.models import BenchmarkSuite

CURVE_POINTS = 40


def frontier_chart(user, rows: RowFilter, cost: Cost) -> dict:
    """Points, the measured Pareto frontier, each law's curves per N (error vs FLOPs across V) and its
    law-optimal curve over the FLOPs range. The law is the fit of the one compressor the filter names
    (as the paper fits each compressor alone), or without a compressor filter the fit of all compressors
    together; ``fit_scope`` says which (None: the filter names several compressors, or one without a fit)."""
    suite, _ = suite_with_benchmark_keys(rows.suite)
    scores = visible_scores(user, suite, rows).exclude(checkpoint__llm=None).exclude(checkpoint__visual_tokens=None)
    values = list(scores.order_by("checkpoint_id").values(
        "checkpoint_id", "checkpoint__name", "checkpoint__llm__n_params", "checkpoint__visual_tokens",
        "checkpoint__compressor__method", "checkpoint__compressor__version", "checkpoint__published", "error",
    ))
    frame = pd.DataFrame({
        "checkpoint": [row["checkpoint_id"] for row in values],
        "llm_params_b": [row["checkpoint__llm__n_params"] / 1e9 for row in values],
        "visual_tokens": [float(row["checkpoint__visual_tokens"]) for row in values],
        "error": [row["error"] for row in values],
    })
    methods = np.array([row["checkpoint__compressor__method"] or "" for row in values], dtype=object)
    frame["flops"] = cost.flops(frame["llm_params_b"].to_numpy(float), frame["visual_tokens"].to_numpy(float),
                                methods=methods)
    frontier = fitting.pareto_frontier(frame)
    on_frontier = set(frontier["checkpoint"].tolist())
    points = [
        {
            "id": row["checkpoint_id"], "name": row["checkpoint__name"], "n_params_b": n, "visual_tokens": v,
            "compressor": row["checkpoint__compressor__method"],
            "compressor_version": row["checkpoint__compressor__version"],
            "published": row["checkpoint__published"], "flops": flops, "error": row["error"],
            "on_frontier": row["checkpoint_id"] in on_frontier,
        }
        for row, n, v, flops in zip(values, frame["llm_params_b"], frame["visual_tokens"], frame["flops"], strict=True)
    ]
    laws = list(settings.FRONTIER_FIT_LAWS)
    fitted, cannot = split_fits(latest_fit_rows(suite, laws=laws))
    scope = _frontier_fit_scope(rows.compressors, {row.scope for row in fitted + cannot})
    by_law: dict[str, list[ScalingLawFit]] = {}
    for fit in fitted:
        if fit.scope == scope:
            by_law.setdefault(fit.law, []).append(fit)
    curves = []
    for law_name in laws:
        if law_name not in by_law:
            continue
        fit = fit_at(by_law[law_name], cost.query_tokens)
        curves.append({
            "law": law_name, "formula": fitting.get_law(law_name).formula, "fit_id": fit.pk, "scope": fit.scope,
            "params": fit.params, "intervals": fit.intervals, "n_points": fit.n_points, **fit_decisions(fit, cost),
            **fit_n_convention(fit),
            **(_law_curves(fit, frame, cost) if len(frame) else {"per_n": [], "optimal": []}),
        })
    return json_safe({
        "suite": suite.name,
        **cost.as_dict(),
        "points": points,
        "frontier": [
            {"id": int(c), "flops": float(f), "error": float(e)}
            for c, f, e in frontier[["checkpoint", "flops", "error"]].itertuples(index=False)
        ],
        "fit_scope": scope,
        "laws": curves,
        "note": _frontier_note(suite, laws, curves, [row for row in cannot if row.scope == scope], scope,
                               rows.compressors),
    })


def _frontier_fit_scope(compressors: tuple[str, ...], scopes: set[str]) -> str | None:
    """"all" without a compressor filter; the one fit scope the filter names; else None."""
    if not compressors:
        return "all"
    named = [scope for scope in scopes if scope != "all" and scope_matches(scope, compressors)]
    return named[0] if len(named) == 1 else None


def _frontier_note(
    suite: BenchmarkSuite, laws, curves: list[dict], cannot: list[ScalingLawFit], scope: str | None,
    compressors: tuple[str, ...],
) -> str | None:
    """Which fit is drawn, or why a law has no curve: every law (no fit yet, and why) or the ones that
    cannot be fitted."""
    if scope is None and len(compressors) == 1:
        return (f"No law drawn: compressor {compressors[0]} has no fit on suite {suite.name} yet (a fit needs "
                "enough scored checkpoints; /compressors/ lists the fitted ones).")
    if scope is None:
        return (f"No law drawn: the filter names {', '.join(compressors)}, and a law is fitted for one compressor "
                "at a time (or for all together, without a compressor filter).")
    if not curves:
        return no_fit_message(suite, laws, cannot, scope=scope)
    missing = [law for law in laws if law not in {curve["law"] for curve in curves}]
    reasons = {record.law: record.reason for record in cannot if record.law in missing}
    return "; ".join(f"No {law} curve: {reason}" for law, reason in reasons.items()) or None


def _law_curves(fit: ScalingLawFit, frame: pd.DataFrame, cost: Cost) -> dict:
    """Within the data's N and V ranges: error vs FLOPs across V for each N, and the law-optimal
    allocation for budgets spanning the measured FLOPs."""
    law, method = fitting.get_law(fit.law), fit_method(fit)  # the all-compressors law: no method's extra
    v_low, v_high = float(frame["visual_tokens"].min()), float(frame["visual_tokens"].max())
    n_low, n_high = float(frame["llm_params_b"].min()), float(frame["llm_params_b"].max())
    tokens = np.geomspace(v_low, v_high, CURVE_POINTS) if v_high > v_low else np.array([v_low])
    per_n = []
    for n in sorted(frame["llm_params_b"].unique()):
        predicted = law.predict(fit.params, np.full_like(tokens, n), tokens)
        per_n.append({
            "n_params_b": float(n), "visual_tokens": tokens.tolist(),
            "flops": cost.flops(np.full_like(tokens, n), tokens, methods=method).tolist(), "error": predicted.tolist(),
        })
    space = fitting.SearchSpace(  # v2 QueCC: its query pass makes the LLM read 2·Q query tokens
        query_tokens=cost.query_tokens_for(method), generated_tokens=cost.generated_tokens, n_range_b=(n_low, n_high),
        token_range=(v_low, v_high), vision_encoder_flops=cost.vision_encoder_flops,
    )
    budgets = np.geomspace(frame["flops"].min(), frame["flops"].max(), CURVE_POINTS)
    optimal = fitting.optimal_curve(law, fit.params, budgets, space)
    return {"per_n": per_n, "optimal": optimal.to_dict("records")}
