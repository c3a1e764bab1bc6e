"""Writes of the registry: results as they land, suite scores, published scores."""

import csv
from pathlib import Path

from django.db import transaction

from webapp.fits.services import refit_request
from webapp.jobs.services import job_submit
from webapp.registry.catalog import SUITE_DESCRIPTIONS, default_catalog
from webapp.registry.models import (
    Benchmark,
    BenchmarkJob,
    BenchmarkResult,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    Compressor,
    CompressorMethod,
    EvaluationRun,
    HarnessOutput,
    LanguageModel,
    ScoreSource,
    SuiteScore,
    Visibility,
)

PAPER_CITATION = (
    "Li, Goyal, Semedo, Kolter. Inference Optimal VLMs Need Only One Visual Token but Larger Models. "
    "arXiv:2411.03312 (2024)."
)
PAPER_URL = "https://arxiv.org/abs/2411.03312"


EVALUATE_TASK = "workers.tasks.evaluate_benchmark"


class RegistryError(ValueError):
    """Input the registry cannot accept; the message says what to fix."""


@transaction.atomic
def benchmark_catalog_sync() -> None:
    """Create the default suites and benchmarks that are missing."""
    for suite_name, rows in default_catalog().items():
        suite, _ = BenchmarkSuite.objects.get_or_create(
            name=suite_name, defaults={"description": SUITE_DESCRIPTIONS.get(suite_name, "")}
        )
        for row in rows:
            Benchmark.objects.get_or_create(suite=suite, key=row["key"], defaults=row)


@transaction.atomic
def run_start(
    *, checkpoint: Checkpoint, suite: BenchmarkSuite, created_by=None, limit: int | None = None
) -> EvaluationRun:
    """Start evaluating a ready checkpoint on a suite: one job per benchmark on the gpu-eval queue.

    `limit` caps the items per benchmark (a quick look, not a leaderboard number)."""
    if checkpoint.published:
        raise RegistryError(f"{checkpoint.name} is a published result without files; it cannot be evaluated.")
    if checkpoint.status != CheckpointStatus.READY:
        raise RegistryError(f"{checkpoint.name} is {checkpoint.status}; only ready checkpoints can be evaluated.")
    benchmarks = list(suite.benchmarks.all())
    if not benchmarks:
        raise RegistryError(f"Suite {suite.name} has no benchmarks.")
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite, created_by=created_by)
    for benchmark in benchmarks:
        params = {"run_id": run.pk, "benchmark_id": benchmark.pk}
        if limit is not None:
            params["limit"] = limit
        job = job_submit(task_name=EVALUATE_TASK, params=params, created_by=created_by)
        BenchmarkJob.objects.create(run=run, benchmark=benchmark, job=job)
    return run


@transaction.atomic
def benchmark_results_record(
    *, run: EvaluationRun, benchmark: Benchmark, metrics: list[dict], raw: dict, stamp: dict
) -> list[BenchmarkResult]:
    """Store one benchmark's results idempotently: a redelivered job rewrites the same rows.

    `metrics`: [{"metric", "value", "stderr", "n", "higher_is_better"}, ...]. The refit is
    requested when the transaction commits.
    """
    if benchmark.suite_id != run.suite_id:
        raise RegistryError(f"{benchmark} is not part of suite {run.suite}.")
    stored = []
    for row in metrics:
        result, _ = BenchmarkResult.objects.update_or_create(
            run=run, benchmark=benchmark, metric=row["metric"],
            defaults={
                "value": float(row["value"]),
                "stderr": row.get("stderr"),
                "n": row.get("n"),
                "higher_is_better": row.get("higher_is_better", True),
            },
        )
        stored.append(result)
    HarnessOutput.objects.update_or_create(run=run, benchmark=benchmark, defaults={"raw": raw, "stamp": stamp})
    refit_request()
    return stored


@transaction.atomic
def published_scores_load(csv_path: Path, *, suite_name: str = "reasoning") -> int:
    """Load a table of published (N, V, score) results as public, clearly marked entries.

    Columns: llm_family, llm_params_b, compressor, visual_tokens, avg_score (the paper's
    released table). Re-loading the same table changes nothing."""
    suite = BenchmarkSuite.objects.filter(name=suite_name).first()
    if suite is None:
        known = ", ".join(BenchmarkSuite.objects.values_list("name", flat=True))
        raise RegistryError(f"Unknown suite {suite_name!r}; known suites: {known}.")
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    required = {"llm_family", "llm_params_b", "compressor", "visual_tokens", "avg_score"}
    if not rows or not required <= set(rows[0]):
        raise RegistryError(f"{csv_path} needs the columns {', '.join(sorted(required))}.")
    methods = set(CompressorMethod.values)
    for line, row in enumerate(rows, start=2):
        try:
            n_params_b, tokens, score = float(row["llm_params_b"]), int(row["visual_tokens"]), float(row["avg_score"])
        except ValueError as error:
            raise RegistryError(f"{csv_path}:{line}: {error}") from None
        if not 0.0 <= score <= 1.0:
            raise RegistryError(f"{csv_path}:{line}: avg_score {score} is outside [0, 1].")
        method = row["compressor"] if row["compressor"] in methods else CompressorMethod.OTHER
        llm, _ = LanguageModel.objects.get_or_create(
            name=f"{row['llm_family']}-{n_params_b:g}b", revision="published", n_params=round(n_params_b * 1e9),
            defaults={"family": row["llm_family"], "source": PAPER_URL},
        )
        compressor, _ = Compressor.objects.get_or_create(method=method, version="paper")
        checkpoint, _ = Checkpoint.objects.get_or_create(
            name=f"{llm.name} + {row['compressor']} V={tokens} (published)",
            published=True,
            defaults={
                "llm": llm, "compressor": compressor, "visual_tokens": tokens,
                "status": CheckpointStatus.READY, "visibility": Visibility.PUBLIC,
                "citation": PAPER_CITATION, "source_url": PAPER_URL,
            },
        )
        SuiteScore.objects.update_or_create(
            checkpoint=checkpoint, suite=suite,
            defaults={"error": 1.0 - score, "source": ScoreSource.PUBLISHED, "n_benchmarks": len(suite.benchmarks.all())},
        )
    refit_request()
    return len(rows)


@transaction.atomic
def measured_suite_scores_replace(suite: BenchmarkSuite, scores: list[dict]) -> None:
    """Set the measured suite scores to `scores` ({checkpoint, error, stderr, n_benchmarks});
    measured scores of checkpoints no longer complete are removed, published ones kept."""
    keep = []
    for row in scores:
        SuiteScore.objects.update_or_create(
            checkpoint_id=int(row["checkpoint"]), suite=suite,
            defaults={
                "error": float(row["error"]), "stderr": float(row["stderr"]),
                "n_benchmarks": int(row["n_benchmarks"]), "source": ScoreSource.MEASURED,
            },
        )
        keep.append(int(row["checkpoint"]))
    SuiteScore.objects.filter(suite=suite, source=ScoreSource.MEASURED).exclude(checkpoint_id__in=keep).delete()
