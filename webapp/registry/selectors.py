"""Reads of the registry, always through what a user may see."""

from django.db.models import Q, QuerySet

from webapp.registry.models import BenchmarkResult, Checkpoint, EvaluationRun, Visibility


def checkpoints_visible_to(user) -> QuerySet[Checkpoint]:
    """Own checkpoints and public, not hidden ones; staff see everything."""
    checkpoints = Checkpoint.objects.select_related("owner", "llm", "compressor")
    if user.is_staff:
        return checkpoints
    return checkpoints.filter(Q(owner=user) | Q(visibility=Visibility.PUBLIC, hidden=False))


def runs_visible_to(user) -> QuerySet[EvaluationRun]:
    runs = EvaluationRun.objects.select_related("checkpoint", "suite", "created_by")
    if user.is_staff:
        return runs
    return runs.filter(Q(checkpoint__owner=user) | Q(checkpoint__visibility=Visibility.PUBLIC, checkpoint__hidden=False))


def results_visible_to(user) -> QuerySet[BenchmarkResult]:
    return BenchmarkResult.objects.select_related("benchmark__suite", "run__checkpoint").filter(
        run__in=runs_visible_to(user)
    )


def run_status(run: EvaluationRun) -> dict:
    """A run's state from its benchmark jobs: counts per state, progress and an overall word."""
    jobs = [link.job for link in run.benchmark_jobs.all()]
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    if not jobs:
        overall = "empty"
    elif counts.get("running") or (counts.get("queued") and len(counts) > 1):
        overall = "running"
    elif counts.get("queued"):
        overall = "queued"
    elif counts.get("succeeded") == len(jobs):
        overall = "succeeded"
    elif counts.get("cancelled") == len(jobs):
        overall = "cancelled"
    else:
        overall = "failed" if not counts.get("succeeded") else "partial"
    done = sum(job.progress_done for job in jobs)
    total = sum(job.progress_total or 0 for job in jobs)
    return {"state": overall, "jobs": counts, "progress_done": done, "progress_total": total}
