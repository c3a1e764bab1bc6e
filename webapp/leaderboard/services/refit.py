"""The refit (a service; workers.tasks.refit_scaling_laws runs it as a job): measured suite scores from the long
results table (those of checkpoints with new results; all of them the first time, when a suite's normalisation
changed, or on request), then scaling-law fits per suite and compressor (and all together), each skipped when
its input has not changed. Each fit uses one N (FRONTIER_FIT_N_CONVENTION, fitting.published: counted from the
weights by default) and records it with the checkpoints it left out for want of that N: never a silent mix.

An input the law cannot be fitted to (fitting.FitInputError: every checkpoint with the same
error, a single LLM size, ...) is a result, not a failure: its reason is stored like a fit, under
the input's fingerprint, so pages show it and the next refit does not try the same input again."""

import hashlib
import json
import time
from datetime import timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone

import fitting
from fitting.fit import FIT_METHOD_VERSION, json_safe
from fitting.published import convention_stamp, n_for_convention
from webapp.core.versioning import data_version_bump
from webapp.fits.selectors import (
    checkpoints_with_results_since,
    fit_points,
    latest_fit_rows,
    latest_results,
    refit_state,
    suite_benchmarks,
)
from webapp.fits.services import refit_state_record, scaling_law_cannot_fit_record, scaling_law_fit_record
from webapp.leaderboard.scoring import measured_suite_scores
from webapp.leaderboard.services.scores import measured_suite_scores_replace
from webapp.registry.models import BenchmarkSuite

BOOTSTRAP_SEED = 0
# A fit stores one residual per checkpoint up to this many, else one per (N, V) configuration (mean, count).
RESIDUAL_ROWS_MAX = 2000
# Bump when measured_suite_scores changes what it computes: the next refit rescores every checkpoint.
SCORES_METHOD_VERSION = 2  # 2: scores carry their results' identities (task hash, dataset revision)
# Results created this long before the last refit started are rescored again: a transaction that inserted
# them may have committed after that refit read the table.
INCREMENTAL_MARGIN = timedelta(minutes=10)
# Far finer than the draws' spread, and keeps 1000 draws of a 4-parameter law near 45 kB of JSON.
DRAW_SIGNIFICANT_DIGITS = 8


def measured_scores(suite: BenchmarkSuite, checkpoint_ids=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Suite averages (with a propagated stderr and each benchmark's normalised score) and
    exclusions for the measured checkpoints (or those in ``checkpoint_ids``)."""
    return measured_suite_scores(latest_results(suite, checkpoint_ids), suite_benchmarks(suite), suite.name)


def scores_key(suite: BenchmarkSuite) -> str:
    """What a suite's measured scores depend on besides the results: its benchmarks and their normalisation."""
    specs = sorted((b.key, b.metrics, b.full_scale, b.higher_is_better) for b in suite_benchmarks(suite))
    return hashlib.sha256(json.dumps([SCORES_METHOD_VERSION, specs]).encode()).hexdigest()


def suite_scores_update(suite: BenchmarkSuite, started, full: bool) -> tuple[str, pd.DataFrame]:
    """Bring the suite's measured scores up to date: every checkpoint's on the first refit, when the suite's
    normalisation changed, or with ``full``; else only those of checkpoints with results created since the
    last refit started (less INCREMENTAL_MARGIN; a result's own recording already refreshed its score, so
    this pass re-derives those and reports what cannot be scored). Returns (what was done, exclusions)."""
    key, state = scores_key(suite), refit_state(suite)
    if full or state is None or state.scores_key != key:
        scores, exclusions = measured_scores(suite)
        measured_suite_scores_replace(suite, scores.to_dict("records"))
        refit_state_record(suite, scores_key=key, started_at=started, full=True)
        return "all checkpoints rescored", exclusions
    touched = checkpoints_with_results_since(suite, state.last_started_at - INCREMENTAL_MARGIN)
    scores, exclusions = measured_scores(suite, touched) if touched else (pd.DataFrame(), pd.DataFrame())
    if touched:
        measured_suite_scores_replace(suite, scores.to_dict("records"), only=touched)
    refit_state_record(suite, scores_key=key, started_at=started, full=False)
    return f"{len(touched)} checkpoint(s) with new results rescored", exclusions


def fingerprint(points: pd.DataFrame, law: str, left_out=()) -> str:
    """Identifies a fit's input: the points (checkpoint, N, V, error, in checkpoint order; hashed as arrays,
    which costs milliseconds at 100,000 points), the law, how intervals are computed, the N convention and the
    checkpoints it left out (the fit row names them, so a change of them is a new input)."""
    order = np.argsort(points["checkpoint"].to_numpy(np.int64), kind="stable")
    columns = [points["checkpoint"].to_numpy(np.int64)[order],
               np.round(points["llm_params_b"].to_numpy(float)[order], 12),
               points["visual_tokens"].to_numpy(np.int64)[order],
               np.round(points["error"].to_numpy(float)[order], 12),
               np.sort(np.asarray(left_out, dtype=np.int64))]
    payload = {
        "law": law,
        "points": len(points),
        "bootstrap": [settings.FRONTIER_FIT_BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED],
        "query_tokens": settings.FRONTIER_FIT_QUERY_TOKENS,
        # Stored decisions (V*(Q)) are under the default formula; reads under another recompute them.
        "flops_formula": fitting.DEFAULT_FLOPS_FORMULA,
        # Part of what a row stores: rows from before the draws were kept do not match, so they are refitted.
        "parameter_draws_digits": DRAW_SIGNIFICANT_DIGITS,
        # How repeated (N, V) are combined and degenerate input is judged (fitting.fit.FIT_METHOD_VERSION).
        "fit_method": FIT_METHOD_VERSION,
        "residual_rows_max": RESIDUAL_ROWS_MAX,
        # Which N the points carry (fitting.published): counted from the weights, or the nominal size.
        "n_convention": settings.FRONTIER_FIT_N_CONVENTION,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    for column in columns:
        digest.update(np.ascontiguousarray(column).astype(column.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def parameter_draws(result: fitting.BootstrapResult) -> list[list[float]]:
    """One row per valid resample, in the law's parameter order, rounded to keep the fit row small."""
    rows = result.draws[list(result.law.parameter_names)].to_numpy(float)
    rows = rows[np.isfinite(rows).all(axis=1)]  # JSON has no NaN
    return [[float(f"{value:.{DRAW_SIGNIFICANT_DIGITS}g}") for value in row] for row in rows.tolist()]


def scopes(points: pd.DataFrame):
    """'all' plus one scope per compressor."""
    yield "all", None, points
    for (compressor_id, name), group in points.groupby(["compressor_id", "compressor"]):
        yield name, int(compressor_id), group


def fit_scope(suite, scope, compressor_id, points, law, current: dict | None = None,
              shared: dict | None = None, left_out=()) -> dict:
    """Fit one (suite, scope, law) unless its input is unchanged; returns what happened: fitted,
    cannot_fit (with the reason, recorded like a fit) or unchanged. ``points`` carry N under the configured
    convention (``n_for_convention``), ``left_out`` the checkpoints it left out; both are recorded in the row's
    method. ``current``: the fingerprint of the current row per (scope, law, Q), as ``current_fingerprints``
    reads them (else read here). ``shared``: a dict the scope's laws share, to draw the bootstrap's resamples of
    these points once."""
    stamp = convention_stamp(settings.FRONTIER_FIT_N_CONVENTION, list(left_out))
    outcome = {"suite": suite.name, "scope": scope, "law": law, "n_points": len(points),
               "n_convention": stamp["n_convention"], "n_left_out": stamp["n_left_out"]}
    digest = fingerprint(points, law, left_out)
    queries = settings.FRONTIER_FIT_QUERY_TOKENS
    current = current if current is not None else current_fingerprints(suite)
    if all(current.get((scope, law, float(q))) == digest for q in queries):
        return {**outcome, "status": "unchanged"}
    started = time.perf_counter()
    try:
        result = fitting.fit(points, law)
        shared = {} if shared is None else shared
        if "resamples" not in shared:  # the same draws for every law of the scope: drawn once
            shared["resamples"] = fitting.resample(
                result.points, n_resamples=settings.FRONTIER_FIT_BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED,
                table=result.configurations,
            )
        draws = fitting.bootstrap(
            points, law, n_resamples=settings.FRONTIER_FIT_BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED,
            query_tokens=tuple(queries), full_fit=result, resamples=shared["resamples"],
        )
    except fitting.FitInputError as error:
        reason = str(error) + (f" ({stamp['n_left_out']} checkpoint(s) left out: N not {stamp['n_meaning']})"
                               if stamp["n_left_out"] else "")
        for q in queries:
            scaling_law_cannot_fit_record(
                suite=suite, scope=scope, law=law, query_tokens=q, fingerprint=digest, compressor_id=compressor_id,
                reason=reason, reason_code=error.code, n_points=len(points), method=stamp,
                seconds=time.perf_counter() - started,
            )
        return {**outcome, "status": "cannot_fit", "reason": reason, "code": error.code}
    summary = result.to_dict(max_points=RESIDUAL_ROWS_MAX)
    intervals = {name: list(bounds) for name, bounds in json_safe(draws.intervals).items()}
    estimates = json_safe(draws.estimate)
    draw_rows = parameter_draws(draws)
    bootstrap_stamp = json_safe({key: value for key, value in draws.to_dict().items()
                                 if key in ("unit", "resampled", "seed", "n_resamples", "n_valid", "confidence",
                                            "scheme")})
    for q in queries:
        decision_names = [name for name in estimates if name.endswith(f"(Q={q:g})")]
        scaling_law_fit_record(
            suite=suite, scope=scope, law=law, query_tokens=q, fingerprint=digest,
            compressor_id=compressor_id, params=summary["params"], intervals=intervals,
            decisions={name: estimates[name] for name in decision_names}, parameter_draws=draw_rows,
            sse=result.sse, rmse=result.rmse, r2=summary["r2"], mape=summary["mape"], loso_mape=summary["loso_mape"],
            active_bounds=result.active_bounds, warnings=result.warnings, residuals=summary["points"],
            method={**summary["method"], "bootstrap": bootstrap_stamp, **stamp},
            n_points=len(points), seconds=result.seconds + draws.seconds,
        )
    return {**outcome, "status": "fitted", "params": summary["params"], "sse": result.sse}


def current_fingerprints(suite) -> dict[tuple[str, str, float], str]:
    """The input fingerprint of the current fit row (fitted or cannot-fit) per (scope, law, Q): one query."""
    return {(row.scope, row.law, float(row.query_tokens)): row.fingerprint for row in latest_fit_rows(suite)}


def refit_all(progress=None, full: bool = False) -> dict:
    """Bring every suite's measured scores up to date (``suite_scores_update``; ``full``: all of them) and
    refit every scope whose input changed."""
    report = {"fits": [], "exclusions": [], "errors": [], "scores": {}}
    suites = list(BenchmarkSuite.objects.all())
    for index, suite in enumerate(suites):
        started = timezone.now()
        try:
            report["scores"][suite.name], exclusions = suite_scores_update(suite, started, full)
        except fitting.AggregationError as error:  # one suite's bad rows must not stop the others
            report["errors"].append({"suite": suite.name, "error": str(error)})
            continue
        report["exclusions"] += [
            {"suite": suite.name, "checkpoint": int(row["checkpoint"]), "reason": row["reason"]}
            for row in exclusions.to_dict("records")
        ]
        points = fit_points(suite)
        current = current_fingerprints(suite)
        for scope, compressor_id, group in scopes(points):
            shared = {}
            # One N per fit (never a silent mix): rows without an N of the convention are left out, and named.
            kept, left_out = n_for_convention(group, settings.FRONTIER_FIT_N_CONVENTION)
            for law in settings.FRONTIER_FIT_LAWS:
                report["fits"].append(fit_scope(suite, scope, compressor_id, kept, law, current, shared, left_out))
        if progress:
            progress(index + 1, len(suites))
    if any(fit["status"] in ("fitted", "cannot_fit") for fit in report["fits"]):
        data_version_bump()  # after the fit rows are written: a poller that sees it finds them
    return report
