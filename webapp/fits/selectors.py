"""Reads for the fitting service: the points a fit uses, results to aggregate, the latest fits
and, where there is none, why ("cannot fit: …" as the refit stored it)."""

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Max

import fitting
from webapp.fits.models import FitStatus, RefitState, ScalingLawFit
from webapp.registry.models import (
    Benchmark,
    BenchmarkResult,
    BenchmarkSuite,
    CheckpointStatus,
    Compressor,
    SuiteScore,
    Visibility,
)

FIT_POINT_COLUMNS = [
    "checkpoint_id", "error", "checkpoint__llm__n_params", "checkpoint__visual_tokens", "checkpoint__compressor_id",
    "checkpoint__llm__n_params_counted", "checkpoint__llm__n_params_nominal",
]


def fit_points(suite: BenchmarkSuite) -> pd.DataFrame:
    """One row per checkpoint with a score on the suite: N (billions), V, error, compressor, and what N is:
    n_counted (counted from the weights) and n_nominal_b (the nominal size, NaN where unknown); a fit picks its
    N convention from these (fitting.published.n_for_convention).

    Only public checkpoints (published ones included): fits, residuals and recommendations are
    shown to everyone, so private results must not shape them. Numbers only are read per row (compressor
    names come from their own small table)."""
    scores = (
        SuiteScore.objects.filter(
            suite=suite, checkpoint__status=CheckpointStatus.READY, checkpoint__hidden=False,
            checkpoint__visibility=Visibility.PUBLIC,
        )
        .exclude(checkpoint__llm=None)
        .exclude(checkpoint__visual_tokens=None)
        .order_by("checkpoint_id")  # the fingerprint sorts by checkpoint: already sorted, that costs nothing
        .values_list(*FIT_POINT_COLUMNS)
    )
    table = np.array(list(scores), dtype=float).reshape(-1, len(FIT_POINT_COLUMNS))  # no compressor: NaN
    names = {pk: f"{method}/{version}" for pk, method, version in Compressor.objects.values_list("pk", "method", "version")}
    compressor_id = pd.array(table[:, 4], dtype="Int64")
    return pd.DataFrame(
        {
            "checkpoint": table[:, 0].astype(np.int64),
            "llm_params_b": table[:, 2] / 1e9,
            "visual_tokens": table[:, 3].astype(np.int64),
            "error": table[:, 1],
            "compressor_id": compressor_id,
            "compressor": pd.Series(compressor_id).map(names).astype(object),
            "n_counted": table[:, 5] > 0,
            "n_nominal_b": table[:, 6] / 1e9,  # no nominal size: NaN
        }
    )


RESULT_COLUMNS = ["run__checkpoint_id", "benchmark__key", "metric", "value", "stderr", "higher_is_better"]


def latest_results(suite: BenchmarkSuite, checkpoint_ids=None) -> pd.DataFrame:
    """The long results table of measured checkpoints (or of those in ``checkpoint_ids``): for each
    (checkpoint, benchmark, metric) the value of its most recent run (the newest result row). One SQL query,
    whatever the number of results: ``DISTINCT ON`` on PostgreSQL, the newest ids as a subquery elsewhere
    (never a list of ids sent back to the database)."""
    results = BenchmarkResult.objects.filter(run__suite=suite, run__checkpoint__status=CheckpointStatus.READY)
    if checkpoint_ids is not None:
        results = results.filter(run__checkpoint_id__in=checkpoint_ids)
    key = ("run__checkpoint_id", "benchmark_id", "metric")
    if connection.vendor == "postgresql":
        newest = results.order_by(*key, "-id").distinct(*key)
    else:
        ids = results.values(*key).annotate(newest=Max("id")).values("newest")
        newest = BenchmarkResult.objects.filter(id__in=ids)
    frame = pd.DataFrame.from_records(list(newest.values_list(*RESULT_COLUMNS)), columns=RESULT_COLUMNS)
    return frame.rename(columns={"run__checkpoint_id": "checkpoint", "benchmark__key": "benchmark"})


def suite_benchmarks(suite: BenchmarkSuite) -> list[Benchmark]:
    return list(suite.benchmarks.all())


def checkpoints_with_results_since(suite: BenchmarkSuite, since) -> list[int]:
    """Checkpoints with a result on the suite created at or after ``since``."""
    return list(
        BenchmarkResult.objects.filter(run__suite=suite, created_at__gte=since)
        .order_by().values_list("run__checkpoint_id", flat=True).distinct()
    )


def refit_state(suite: BenchmarkSuite) -> RefitState | None:
    return RefitState.objects.filter(suite=suite).first()


def latest_fit_rows(suite: BenchmarkSuite, *, scope: str | None = None, laws=None) -> list[ScalingLawFit]:
    """The current row per (scope, law, Q) of a suite, fitted or cannot-fit, in one query (older
    rows are history), without the bootstrap draws (tens of kB per row; the deploy answer reads
    the few it needs)."""
    newest = ScalingLawFit.objects.filter(suite=suite)
    if scope is not None:
        newest = newest.filter(scope=scope)
    if laws is not None:
        newest = newest.filter(law__in=laws)
    ids = newest.values("scope", "law", "query_tokens").annotate(newest=Max("id")).values("newest")
    fits = ScalingLawFit.objects.filter(id__in=ids).select_related("compressor").defer("parameter_draws")
    return list(fits.order_by("scope", "law", "query_tokens"))


def split_fits(rows: list[ScalingLawFit]) -> tuple[list[ScalingLawFit], list[ScalingLawFit]]:
    """(current fits, current cannot-fit records): a scope whose newest input cannot be fitted has
    no current fit, whatever older inputs gave."""
    fitted = [row for row in rows if row.status == FitStatus.FITTED]
    return fitted, [row for row in rows if row.status != FitStatus.FITTED]


def needs_points_message(suite: BenchmarkSuite, laws) -> str:
    """Why there is no fit when the refit has stored nothing for the suite yet."""
    needed = min(len(fitting.get_law(law).parameter_names) for law in laws)
    return (
        f"no fit yet for suite {suite.name}: needs at least {needed} checkpoints with scores on it, "
        f"with at least two LLM sizes and two token counts."
    )


def cannot_fit_reasons(records: list[ScalingLawFit], laws=None) -> str:
    """The stored "cannot fit: …" reasons of these records, once per scope and law: the law named
    only where the laws' reasons differ, the scope only where the scopes' reasons differ."""
    by_scope: dict[str, dict[str, str]] = {}
    for record in records:
        if laws is None or record.law in laws:
            by_scope.setdefault(record.scope, {}).setdefault(record.law, record.reason)
    texts = {}
    for scope, per_law in by_scope.items():
        distinct = set(per_law.values())
        texts[scope] = (next(iter(distinct)) if len(distinct) == 1
                        else "; ".join(f"{law} law: {reason}" for law, reason in per_law.items()))
    if len(set(texts.values())) <= 1:
        return next(iter(texts.values()), "")
    return "; ".join(f"{scope}: {text}" for scope, text in texts.items())


def no_fit_message(suite: BenchmarkSuite, laws, records: list[ScalingLawFit], scope: str | None = "all") -> str:
    """Why `scope` (None: any scope) of the suite has no fit for these laws: the reasons the refit
    stored, else that it needs more checkpoints (the refit has stored nothing yet)."""
    stored = [record for record in records if scope is None or record.scope == scope]
    reasons = cannot_fit_reasons(stored, laws)
    return f"no fit yet for suite {suite.name}: {reasons}" if reasons else needs_points_message(suite, laws)
