"""The benchmark catalog, evaluation runs (start, rerun, cancel) and the per-user quotas that gate them."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.jobs.models import FailureClass, JobState
from webapp.jobs.services import job_cancel, job_submit
from webapp.registry.catalog import SUITE_DESCRIPTIONS, default_catalog
from webapp.registry.models import (
    Benchmark,
    BenchmarkJob,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    EvaluationRun,
)
from webapp.registry.services.common import EVALUATE_TASK, QuotaExceeded, RegistryError


@transaction.atomic
def benchmark_catalog_sync() -> None:
    """Create the default suites and benchmarks that are missing. Runs after every ``migrate`` (registry's
    post_migrate), so an existing install gains the rows of benchmarks newly added or shared with a suite."""
    for suite_name, rows in default_catalog().items():
        suite, _ = BenchmarkSuite.objects.get_or_create(
            name=suite_name, defaults={"description": SUITE_DESCRIPTIONS.get(suite_name, "")}
        )
        for row in rows:
            Benchmark.objects.get_or_create(suite=suite, key=row["key"], defaults=row)


def _run_failed_for_platform_reasons(run: EvaluationRun) -> bool:
    """Every failed job of the run failed for a reason that is not the submitter's doing."""
    jobs = [link.job for link in run.benchmark_jobs.select_related("job")]
    failed = [job for job in jobs if job.state == JobState.FAILED]
    return bool(failed) and all(job.failure_class in FailureClass.PLATFORM for job in failed)


def _check_run_quota(user) -> None:
    if user is None or user.is_staff:
        return
    recent = EvaluationRun.objects.filter(created_by=user, created_at__gte=timezone.now() - timedelta(days=1))
    active = recent.filter(benchmark_jobs__job__state__in=["queued", "running"]).distinct().count()
    if active >= settings.FRONTIER_QUOTA_CONCURRENT_RUNS:
        raise QuotaExceeded(
            f"You have {active} evaluation runs in progress; the limit is {settings.FRONTIER_QUOTA_CONCURRENT_RUNS}. "
            f"Wait for one to finish or cancel one."
        )
    counted = [run for run in recent.prefetch_related("benchmark_jobs") if not _run_failed_for_platform_reasons(run)]
    if len(counted) >= settings.FRONTIER_QUOTA_RUNS_PER_DAY:
        raise QuotaExceeded(
            f"You started {len(counted)} evaluation runs in the last 24 hours; the limit is "
            f"{settings.FRONTIER_QUOTA_RUNS_PER_DAY} (runs that failed for platform reasons do not count)."
        )


@transaction.atomic
def run_start(
    *, checkpoint: Checkpoint, suite: BenchmarkSuite, created_by=None, limit: int | None = None,
    benchmarks: list[Benchmark] | None = None,
) -> EvaluationRun:
    """Start evaluating a ready checkpoint on a suite: one job per benchmark on the gpu-eval queue.

    `limit` caps the items per benchmark (a quick look, not a leaderboard number); `benchmarks`, some of the
    suite's only (re-evaluating stale results)."""
    if checkpoint.published:
        raise RegistryError(f"{checkpoint.name} is a published result without files; it cannot be evaluated.")
    if checkpoint.status != CheckpointStatus.READY:
        raise RegistryError(f"{checkpoint.name} is {checkpoint.status}; only ready checkpoints can be evaluated.")
    if benchmarks is not None and any(benchmark.suite_id != suite.pk for benchmark in benchmarks):
        raise RegistryError(f"Every benchmark of a run must be of its suite, {suite.name}.")
    benchmarks = list(suite.benchmarks.all()) if benchmarks is None else list(benchmarks)
    if not benchmarks:
        raise RegistryError(f"Suite {suite.name} has no benchmarks.")
    if limit is not None and limit <= 0:
        raise RegistryError("limit must be a positive number of items per benchmark.")
    _check_run_quota(created_by)
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite, created_by=created_by, limit=limit)
    for benchmark in benchmarks:
        BenchmarkJob.objects.create(run=run, benchmark=benchmark, job=_evaluation_job(run, benchmark, created_by))
    return run


def _evaluation_job(run: EvaluationRun, benchmark: Benchmark, created_by):
    params = {"run_id": run.pk, "benchmark_id": benchmark.pk}
    if run.limit is not None:
        params["limit"] = run.limit
    return job_submit(task_name=EVALUATE_TASK, params=params, created_by=created_by)


@transaction.atomic
def run_rerun_failed(run: EvaluationRun, *, by=None) -> list[BenchmarkJob]:
    """Queue again only the benchmarks whose job failed or was cancelled (capped per run)."""
    links = [
        link for link in run.benchmark_jobs.select_related("job", "benchmark")
        if link.job.state in ("failed", "cancelled")
    ]
    if not links:
        raise RegistryError("No benchmark of this run failed or was cancelled; nothing to rerun.")
    if run.reruns >= settings.FRONTIER_QUOTA_RERUNS_PER_RUN:
        raise QuotaExceeded(f"This run was rerun {run.reruns} times, the limit; start a new run instead.")
    for link in links:
        link.job = _evaluation_job(run, link.benchmark, by)
        link.save(update_fields=["job"])
    EvaluationRun.objects.filter(pk=run.pk).update(reruns=run.reruns + 1)
    return links


def run_cancel(run: EvaluationRun, *, by=None) -> int:
    """Cancel every benchmark of the run that has not ended; returns how many."""
    cancelled = 0
    for link in run.benchmark_jobs.select_related("job"):
        if not link.job.is_terminal:
            job_cancel(link.job, reason=f"run cancelled by {by or 'the system'}")
            cancelled += 1
    if not cancelled:
        raise RegistryError("Every benchmark of this run has already ended.")
    return cancelled
