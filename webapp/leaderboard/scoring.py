"""Measured suite scores from a long results table: one function for the refit (all
checkpoints of a suite) and for the immediate refresh when a result is recorded (one checkpoint),
so both write exactly the same numbers."""

import numpy as np
import pandas as pd

import fitting
from webapp.registry.models import Benchmark

SCORE_COLUMNS = ["checkpoint", "error", "stderr", "n_benchmarks", "benchmark_scores"]


def measured_suite_scores(
    results: pd.DataFrame, benchmarks: list[Benchmark], suite_name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per complete checkpoint: the suite's average normalised error, its propagated stderr and
    each benchmark's normalised score ({key: score}); plus the incomplete checkpoints and why.

    `results`: checkpoint, benchmark (key), metric, value, stderr, higher_is_better — the newest
    value per (checkpoint, benchmark, metric). Raises fitting.AggregationError on bad values."""
    specs = {
        b.key: fitting.BenchmarkNormalisation(b.key, tuple(b.metrics), b.full_scale, b.higher_is_better)
        for b in benchmarks
    }
    if results.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS), pd.DataFrame()
    aggregated = fitting.aggregate(results, benchmarks=specs, suites={suite_name: [b.key for b in benchmarks]})
    full_scale = results["benchmark"].map(lambda key: specs[key].full_scale)
    stderr = (
        results.assign(var=(results["stderr"].fillna(0.0).astype(float) / full_scale) ** 2)
        .groupby(["checkpoint", "benchmark"])["var"].sum()
        .groupby("checkpoint").sum()
    )
    per_benchmark: dict = {}
    for checkpoint, key, score in aggregated.benchmarks[["checkpoint", "benchmark", "score"]].itertuples(index=False):
        per_benchmark.setdefault(checkpoint, {})[key] = float(score)
    scores = aggregated.suites.assign(
        stderr=lambda f: np.sqrt(f["checkpoint"].map(stderr).fillna(0.0)) / f["n_benchmarks"],
        benchmark_scores=lambda f: [per_benchmark.get(checkpoint, {}) for checkpoint in f["checkpoint"]],
    )
    return scores[SCORE_COLUMNS], aggregated.exclusions
