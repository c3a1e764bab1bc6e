"""Picking the fit for a Q and a compressor scope, and the decisions a fit answers at a cost."""

import fitting
from webapp.fits.models import ScalingLawFit
from webapp.leaderboard.selectors.rows import Cost


def fit_at(fits: list[ScalingLawFit], query_tokens: float) -> ScalingLawFit:
    """The fit row stored for this Q, else any (parameters do not depend on Q; decisions do)."""
    return next((fit for fit in fits if fit.query_tokens == query_tokens), fits[0])


def fit_decisions(fit: ScalingLawFit, cost: Cost) -> dict:
    """V*(Q) and its interval: stored for the Q values the refit fitted, else recomputed from the
    parameters (no interval then)."""
    label = f"V*(Q={cost.query_tokens:g})"
    if fit.query_tokens == cost.query_tokens and cost.generated_tokens == 0:
        return {"v_star": fit.decisions.get(label), "v_star_interval": fit.intervals.get(label),
                "stored": True, "decisions": fit.decisions}
    law = fitting.get_law(fit.law)
    v_star = None
    if law.single_product_term:
        v_star = fitting.optimal_visual_tokens(law, fit.params, cost.query_tokens, cost.generated_tokens)
    return {"v_star": v_star, "v_star_interval": None, "stored": False, "decisions": {label: v_star}}


def scope_matches(scope: str, wanted: tuple[str, ...]) -> bool:
    return not wanted or any(scope == name or scope.split("/")[0] == name for name in wanted)
