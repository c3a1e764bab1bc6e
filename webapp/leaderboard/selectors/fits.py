"""Picking the fit for a Q and a compressor scope, and the decisions a fit answers at a cost."""

from django.conf import settings

import fitting
from fitting.published import N_CONVENTIONS
from webapp.fits.models import ScalingLawFit
from webapp.leaderboard.selectors.rows import Cost


def fit_at(fits: list[ScalingLawFit], query_tokens: float) -> ScalingLawFit:
    """The fit row stored for this Q, else any (parameters do not depend on Q; decisions do)."""
    return next((fit for fit in fits if fit.query_tokens == query_tokens), fits[0])


def fit_n_convention(fit: ScalingLawFit) -> dict:
    """Which N a fit used (fitting.published) and the checkpoints it left out for want of that N. A row fitted
    before fits recorded it says so (null); the convention is part of the fingerprint, so the next refit redoes it."""
    method = fit.method or {}
    convention = method.get("n_convention")
    return {"n_convention": convention, "n_meaning": N_CONVENTIONS.get(convention),
            "n_left_out": method.get("n_left_out", 0 if convention else None),
            "n_left_out_checkpoints": method.get("n_left_out_checkpoints", [])}


def n_convention_now() -> dict:
    """The N convention the refit fits under (FRONTIER_FIT_N_CONVENTION), with its meaning."""
    convention = settings.FRONTIER_FIT_N_CONVENTION
    return {"name": convention, "meaning": N_CONVENTIONS[convention]}


def fit_method(fit: ScalingLawFit) -> str | None:
    """The compressor method a fit is of (None: the fit of all compressors together)."""
    return None if fit.scope == "all" else fit.scope.split("/")[0]


def fit_decisions(fit: ScalingLawFit, cost: Cost) -> dict:
    """V*(Q) and its interval: stored for the Q values the refit fitted (under the default FLOPs formula), else
    recomputed from the parameters (no interval then). Under v2 a QueCC fit's V*(Q) counts its query pass: the
    LLM reads the query twice, so V* is v1's at 2·Q."""
    label = f"V*(Q={cost.query_tokens:g})"
    query_tokens = cost.query_tokens_for(fit_method(fit))
    if fit.query_tokens == query_tokens == cost.query_tokens and cost.generated_tokens == 0:
        return {"v_star": fit.decisions.get(label), "v_star_interval": fit.intervals.get(label),
                "stored": True, "decisions": fit.decisions}
    law = fitting.get_law(fit.law)
    v_star = None
    if law.single_product_term:
        v_star = fitting.optimal_visual_tokens(law, fit.params, query_tokens, cost.generated_tokens)
    return {"v_star": v_star, "v_star_interval": None, "stored": False, "decisions": {label: v_star}}


def scope_matches(scope: str, wanted: tuple[str, ...]) -> bool:
    return not wanted or any(scope == name or scope.split("/")[0] == name for name in wanted)
