"""The compressor table: each fit scope's alpha and beta with their intervals and fit details."""

from django.conf import settings

import fitting
from evaluation.vlm_spec import METHOD_LABELS
from fitting.fit import json_safe
from webapp.fits.models import ScalingLawFit
from webapp.fits.selectors import cannot_fit_reasons, latest_fit_rows, no_fit_message, split_fits
from webapp.leaderboard.selectors.fits import fit_at, fit_decisions, fit_n_convention, n_convention_now
from webapp.leaderboard.selectors.rows import Cost, suite_with_benchmark_keys
from webapp.registry.models import ScoreSource, SuiteScore
from webapp.registry.selectors.stale import benchmarks_stale, current_identity

PAPER_SUITE = "reasoning"


def compressor_table(suite_name: str, cost: Cost) -> dict:
    """Per fit scope (all compressors, then each compressor) and law: α and β with their 95 %
    intervals and the fit's details."""
    suite, _ = suite_with_benchmark_keys(suite_name)
    grouped: dict[tuple[str, str], list[ScalingLawFit]] = {}
    fitted, cannot = split_fits(latest_fit_rows(suite))
    for fit in fitted:
        grouped.setdefault((fit.scope, fit.law), []).append(fit)
    scopes: dict[str, dict] = {}
    for (scope, law_name), fits in grouped.items():
        fit = fit_at(fits, cost.query_tokens)
        entry = scopes.setdefault(scope, {
            "scope": scope,
            "compressor": fit.compressor.method if fit.compressor else None,
            "compressor_version": fit.compressor.version if fit.compressor else None,
            "laws": [],
        })
        entry["laws"].append({
            "law": law_name, "formula": fitting.get_law(law_name).formula, "fit_id": fit.pk,
            "alpha": fit.params.get("alpha"), "alpha_interval": fit.intervals.get("alpha"),
            "beta": fit.params.get("beta"), "beta_interval": fit.intervals.get("beta"),
            "params": fit.params, "intervals": fit.intervals, **fit_decisions(fit, cost),
            "sse": fit.sse, "rmse": fit.rmse, "r2": fit.r2, "mape": fit.mape, "loso_mape": fit.loso_mape,
            "active_bounds": fit.active_bounds, "warnings": fit.warnings, "residuals": fit.residuals,
            "n_points": fit.n_points, "method": fit.method, "fitted_at": fit.created_at, **fit_n_convention(fit),
        })
    ordered = sorted(scopes.values(), key=lambda entry: (entry["scope"] != "all", entry["scope"]))
    not_fitted = {(record.scope, record.law): record for record in cannot}
    cannot_fit = [
        {"scope": scope, "law": law, "reason": record.reason, "code": record.reason_code,
         "n_points": record.n_points, "checked_at": record.created_at, **fit_n_convention(record)}
        for (scope, law), record in sorted(not_fitted.items(), key=lambda item: (item[0][0] != "all", item[0]))
    ]
    if not ordered:
        note = no_fit_message(suite, settings.FRONTIER_FIT_LAWS, cannot, scope=None)
    else:
        note = f"Not fitted: {cannot_fit_reasons(cannot)}" if cannot_fit else None
    # The paper's own table is the reasoning suite's published rows: its rounded exponents beside their refit (on
    # the paper's nominal N, as published; the suite's fits use n_convention).
    paper_check = list(fitting.paper_comparison()) if suite.name == PAPER_SUITE else None
    return json_safe({"suite": suite.name, **cost.as_dict(), "n_convention": n_convention_now(),
                      "scopes": ordered, "cannot_fit": cannot_fit, "stale": stale_in_fits(suite),
                      "note": note, "paper_check": paper_check, "flops_formulas": flops_formulas()})


def stale_in_fits(suite) -> dict:
    """Fits keep stale results (a task's files or its dataset revision changed since): how many of the suite's
    measured checkpoints have one, so a reader knows what the fits stand on until they are re-evaluated."""
    identity = current_identity()
    rows = SuiteScore.objects.filter(suite=suite, source=ScoreSource.MEASURED).values_list("benchmark_identities",
                                                                                           flat=True)
    measured, stale = 0, 0
    for identities in rows:
        measured += 1
        stale += bool(benchmarks_stale(identities, identity))
    return {"checkpoints": stale, "measured": measured, "policy": "kept in the fits; the leaderboard marks them"}


def flops_formulas() -> dict:
    """Each method's FLOPs formula under every version, and what the versions leave out."""
    rows = fitting.method_formulas(METHOD_LABELS)
    for row in rows:
        row["label"] = METHOD_LABELS[row["method"]]
    return {"versions": {version: fitting.FLOPS_FORMULAS[version] for version in fitting.FLOPS_FORMULA_VERSIONS},
            "default": fitting.DEFAULT_FLOPS_FORMULA, "methods": rows, "not_counted": fitting.COMPRESSOR_FLOPS_NOTE}
