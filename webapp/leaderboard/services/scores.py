"""Writes for the leaderboard: results as they land (a checkpoint's suite score at once,
the coalesced refit recomputes every score and the fits later); every measured suite score (the refit);
and published scores (the paper's table). The one home of SuiteScore writes."""

import csv
from pathlib import Path

from django.db import transaction
from django.utils import timezone

import fitting
from fitting.published import counted_params, nominal_params
from webapp.core.errors import ServiceError
from webapp.core.versioning import data_version_bump
from webapp.fits.selectors import suite_benchmarks
from webapp.fits.services import refit_request
from webapp.leaderboard.scoring import measured_suite_scores
from webapp.leaderboard.services.samples import samples_fields_of, samples_store
from webapp.leaderboard.selectors import (
    NO_LATENCY,
    checkpoint_latest_results,
    latest_identities,
    latest_latencies,
)
from webapp.registry.models import (
    Benchmark,
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
from webapp.registry.selectors.reuse import reused_origin

PAPER_CITATION = (
    "Li, Goyal, Semedo, Kolter. Inference Optimal VLMs Need Only One Visual Token but Larger Models. "
    "arXiv:2411.03312 (2024)."
)
PAPER_URL = "https://arxiv.org/abs/2411.03312"
PUBLISHED_REVISION = "published"


class ScoresError(ServiceError):
    """Results or published scores that cannot be stored as given; the message says what to fix."""


@transaction.atomic
def checkpoint_suite_score_refresh(checkpoint_id: int, suite: BenchmarkSuite) -> SuiteScore | None:
    """Recompute one checkpoint's measured score on a suite from its newest results, with the same
    function as the refit. A checkpoint that lacks a benchmark of the suite gets no score yet; values
    the normalisation refuses are left for the refit to report. Moves the data version either way."""
    data_version_bump()
    try:
        scores, _ = measured_suite_scores(
            checkpoint_latest_results(suite, checkpoint_id), suite_benchmarks(suite), suite.name
        )
    except fitting.AggregationError:
        return None
    if scores.empty:
        return None
    row = scores.iloc[0]
    score, _ = SuiteScore.objects.update_or_create(
        checkpoint_id=checkpoint_id, suite=suite,
        defaults={
            "error": float(row["error"]), "stderr": float(row["stderr"]), "n_benchmarks": int(row["n_benchmarks"]),
            "benchmark_scores": row["benchmark_scores"], "source": ScoreSource.MEASURED,
            "benchmark_identities": latest_identities(suite, [checkpoint_id]).get(checkpoint_id, {}),
            **latest_latencies(suite, [checkpoint_id]).get(checkpoint_id, NO_LATENCY),
        },
    )
    return score


@transaction.atomic
def benchmark_results_record(
    *, run: EvaluationRun, benchmark: Benchmark, metrics: list[dict], raw: dict, stamp: dict,
    samples: list[dict] | None = None, samples_from: HarnessOutput | None = None,
) -> list[BenchmarkResult]:
    """Store one benchmark's results idempotently: a redelivered job rewrites the same rows.

    `metrics`: [{"metric", "value", "stderr", "n", "higher_is_better"}, ...]. `samples`: the per-item records
    (``evaluation.samples``), written to storage (``services.samples``), their sha256 put in the stamp; or
    `samples_from`: a harness output whose records these are (a reused result). The refit is requested when the
    transaction commits.
    """
    if benchmark.suite_id != run.suite_id:
        raise ScoresError(f"{benchmark} is not part of suite {run.suite}.")
    sample_fields = {}
    if samples is not None:
        sample_fields = samples_store(run=run, benchmark=benchmark, records=samples)
        stamp = {**stamp, "samples_sha256": sample_fields["samples_sha256"]}
    elif samples_from is not None:
        sample_fields = samples_fields_of(samples_from)
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
    HarnessOutput.objects.update_or_create(run=run, benchmark=benchmark,
                                           defaults={"raw": raw, "stamp": stamp, **sample_fields})
    # The leaderboard shows the result now; the coalesced refit follows with every score and the fits.
    checkpoint_suite_score_refresh(run.checkpoint_id, run.suite)
    refit_request()
    return stored


@transaction.atomic
def benchmark_result_reuse(
    *, run: EvaluationRun, benchmark: Benchmark, source: HarnessOutput
) -> tuple[list[BenchmarkResult], dict]:
    """Record for ``run`` the result of ``source`` (a harness output of the same checkpoint and lmms-eval task from
    another run, ``webapp.registry.selectors.reuse``) without evaluating: its metrics as this run's results, its
    stamp plus ``reused_from`` (the original evaluation, ``reused_origin``), and a raw that points there rather than
    copying the harness's JSON; then the score refresh and refit of any result (``benchmark_results_record``).
    Returns (the stored results, the origin)."""
    if (source.run.checkpoint_id, source.benchmark.lmms_eval_task) != (run.checkpoint_id, benchmark.lmms_eval_task):
        raise ScoresError(f"{source.benchmark} of run {source.run_id} is not {benchmark} of checkpoint "
                          f"{run.checkpoint_id}: it cannot be reused for run {run.pk}.")
    if source.run_id == run.pk:
        raise ScoresError(f"run {run.pk} cannot reuse its own result on {benchmark}.")
    origin = reused_origin(source)
    metrics = list(BenchmarkResult.objects.filter(run_id=source.run_id, benchmark_id=source.benchmark_id).values(
        "metric", "value", "stderr", "n", "higher_is_better"))
    stored = benchmark_results_record(run=run, benchmark=benchmark, metrics=metrics, raw={"reused_from": origin},
                                      stamp={**source.stamp, "reused_from": origin}, samples_from=source)
    return stored, origin


def published_llm(family: str, n_params_b: float) -> LanguageModel:
    """The LLM of a published row. Tables give nominal sizes (0.5 B); N is the counted size where Frontier knows
    the model (fitting.published.KNOWN_MODELS: Qwen1.5's "0.5 B" counts 463,987,712), else the nominal size,
    marked as not counted (fits on counted N leave it out). The nominal size is kept either way."""
    nominal = nominal_params(n_params_b)
    counted = counted_params(family, nominal)
    values = {"n_params": counted or nominal, "n_params_nominal": nominal, "n_params_counted": counted is not None}
    llm, created = LanguageModel.objects.get_or_create(
        name=f"{family}-{n_params_b:g}b", revision=PUBLISHED_REVISION,
        defaults={"family": family, "source": PAPER_URL, **values},
    )
    if not created and any(getattr(llm, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(llm, name, value)
        llm.save(update_fields=list(values))
    return llm


@transaction.atomic
def published_scores_load(csv_path: Path, *, suite_name: str = "reasoning") -> int:
    """Load a table of published (N, V, score) results as public, clearly marked entries.

    Columns: llm_family, llm_params_b (the nominal size, in billions), compressor, visual_tokens, avg_score (the
    paper's released table). Each row's LLM gets its counted N where the model is known (``published_llm``).
    Re-loading the same table changes nothing."""
    suite = BenchmarkSuite.objects.filter(name=suite_name).first()
    if suite is None:
        known = ", ".join(BenchmarkSuite.objects.values_list("name", flat=True))
        raise ScoresError(f"Unknown suite {suite_name!r}; known suites: {known}.")
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    required = {"llm_family", "llm_params_b", "compressor", "visual_tokens", "avg_score"}
    if not rows or not required <= set(rows[0]):
        raise ScoresError(f"{csv_path} needs the columns {', '.join(sorted(required))}.")
    methods = set(CompressorMethod.values)
    for line, row in enumerate(rows, start=2):
        try:
            n_params_b, tokens, score = float(row["llm_params_b"]), int(row["visual_tokens"]), float(row["avg_score"])
        except ValueError as error:
            raise ScoresError(f"{csv_path}:{line}: {error}") from None
        if not 0.0 <= score <= 1.0:
            raise ScoresError(f"{csv_path}:{line}: avg_score {score} is outside [0, 1].")
        method = row["compressor"] if row["compressor"] in methods else CompressorMethod.OTHER
        llm = published_llm(row["llm_family"], n_params_b)
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
            defaults={"error": 1.0 - score, "source": ScoreSource.PUBLISHED, "n_benchmarks": suite.benchmarks.count()},
        )
    data_version_bump()
    refit_request()
    return len(rows)


@transaction.atomic
def measured_suite_scores_replace(suite: BenchmarkSuite, scores: list[dict], only: list[int] | None = None) -> None:
    """Set the measured suite scores to `scores` ({checkpoint, error, stderr, n_benchmarks,
    benchmark_scores}) with each checkpoint's newest measured latency and its results' identities; measured scores of
    checkpoints no longer complete are removed, published ones kept. With `only`, just those checkpoints'
    scores are replaced (the refit's incremental pass); the others stay as they are. Only rows that changed
    are written (in bulk), and the data version moves only if one did."""
    latencies, identities = latest_latencies(suite, only), latest_identities(suite, only)
    existing_rows = SuiteScore.objects.filter(suite=suite)
    if only is not None:
        existing_rows = existing_rows.filter(checkpoint_id__in=only)
    existing = {score.checkpoint_id: score for score in existing_rows}
    now = timezone.now()
    created, changed, keep = [], [], set()
    for row in scores:
        checkpoint_id = int(row["checkpoint"])
        keep.add(checkpoint_id)
        values = {
            "error": float(row["error"]), "stderr": float(row["stderr"]), "n_benchmarks": int(row["n_benchmarks"]),
            "benchmark_scores": row.get("benchmark_scores") or {}, "source": ScoreSource.MEASURED,
            "benchmark_identities": identities.get(checkpoint_id, {}),
            **latencies.get(checkpoint_id, NO_LATENCY),
        }
        score = existing.get(checkpoint_id)
        if score is None:
            created.append(SuiteScore(checkpoint_id=checkpoint_id, suite=suite, **values))
        elif any(getattr(score, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(score, name, value)
            score.updated_at = now
            changed.append(score)
    SuiteScore.objects.bulk_create(created, batch_size=1000)
    SuiteScore.objects.bulk_update(
        changed, ["error", "stderr", "n_benchmarks", "benchmark_scores", "benchmark_identities", "source", *NO_LATENCY,
                  "updated_at"],
        batch_size=1000,
    )
    stale = [
        score.pk for checkpoint_id, score in existing.items()
        if score.source == ScoreSource.MEASURED and checkpoint_id not in keep
    ]
    SuiteScore.objects.filter(pk__in=stale).delete()
    if created or changed or stale:
        data_version_bump()
