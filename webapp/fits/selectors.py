"""Reads for the fitting service: the points a fit uses, results to aggregate, latest fits."""

import pandas as pd
from django.db.models import Max

from webapp.fits.models import ScalingLawFit
from webapp.registry.models import Benchmark, BenchmarkResult, BenchmarkSuite, CheckpointStatus, SuiteScore, Visibility


def fit_points(suite: BenchmarkSuite) -> pd.DataFrame:
    """One row per checkpoint with a score on the suite: N (billions), V, error, compressor.

    Only public checkpoints (published ones included): fits, residuals and recommendations are
    shown to everyone, so private results must not shape them."""
    scores = (
        SuiteScore.objects.filter(
            suite=suite, checkpoint__status=CheckpointStatus.READY, checkpoint__hidden=False,
            checkpoint__visibility=Visibility.PUBLIC,
        )
        .exclude(checkpoint__llm=None)
        .exclude(checkpoint__visual_tokens=None)
        .values(
            "checkpoint_id", "error", "checkpoint__llm__n_params", "checkpoint__visual_tokens",
            "checkpoint__compressor_id", "checkpoint__compressor__method", "checkpoint__compressor__version",
        )
    )
    frame = pd.DataFrame.from_records(
        list(scores),
        columns=[
            "checkpoint_id", "error", "checkpoint__llm__n_params", "checkpoint__visual_tokens",
            "checkpoint__compressor_id", "checkpoint__compressor__method", "checkpoint__compressor__version",
        ],
    )
    return pd.DataFrame(
        {
            "checkpoint": frame["checkpoint_id"],
            "llm_params_b": frame["checkpoint__llm__n_params"] / 1e9,
            "visual_tokens": frame["checkpoint__visual_tokens"],
            "error": frame["error"],
            "compressor_id": frame["checkpoint__compressor_id"],
            "compressor": frame["checkpoint__compressor__method"] + "/" + frame["checkpoint__compressor__version"],
        }
    )


def latest_results(suite: BenchmarkSuite) -> pd.DataFrame:
    """The long results table of measured checkpoints: for each (checkpoint, benchmark, metric)
    the value of its most recent run."""
    newest = (
        BenchmarkResult.objects.filter(run__suite=suite, run__checkpoint__status=CheckpointStatus.READY)
        .values("run__checkpoint_id", "benchmark_id", "metric")
        .annotate(newest=Max("id"))
        .values_list("newest", flat=True)
    )
    rows = BenchmarkResult.objects.filter(id__in=list(newest)).values(
        "run__checkpoint_id", "benchmark__key", "metric", "value", "stderr", "higher_is_better"
    )
    frame = pd.DataFrame.from_records(
        list(rows), columns=["run__checkpoint_id", "benchmark__key", "metric", "value", "stderr", "higher_is_better"]
    )
    return frame.rename(columns={"run__checkpoint_id": "checkpoint", "benchmark__key": "benchmark"})


def suite_benchmarks(suite: BenchmarkSuite) -> list[Benchmark]:
    return list(suite.benchmarks.all())


def latest_fit(suite: BenchmarkSuite, scope: str, law: str, query_tokens: float) -> ScalingLawFit | None:
    return (
        ScalingLawFit.objects.filter(suite=suite, scope=scope, law=law, query_tokens=query_tokens)
        .order_by("-created_at", "-id")
        .first()
    )
