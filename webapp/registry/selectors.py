"""Reads of the registry, always through what a user may see."""

from django.db.models import Q, QuerySet

from webapp.jobs.models import JobState
from webapp.registry.models import BenchmarkResult, Checkpoint, EvaluationRun, Visibility


def visible_to_owner(user, via: str = "") -> Q:
    """Checkpoints `user` owns, and public ones not hidden by staff (`via`: path to the checkpoint)."""
    return Q(**{f"{via}owner": user}) | Q(**{f"{via}visibility": Visibility.PUBLIC, f"{via}hidden": False})


def checkpoints_visible_to(user) -> QuerySet[Checkpoint]:
    """Own checkpoints and public, not hidden ones; staff see everything."""
    checkpoints = Checkpoint.objects.select_related("owner", "llm", "compressor")
    return checkpoints if user.is_staff else checkpoints.filter(visible_to_owner(user))


def runs_visible_to(user) -> QuerySet[EvaluationRun]:
    runs = EvaluationRun.objects.select_related("checkpoint", "suite", "created_by")
    if user.is_staff:
        return runs
    return runs.filter(visible_to_owner(user, via="checkpoint__"))


def results_visible_to(user) -> QuerySet[BenchmarkResult]:
    return BenchmarkResult.objects.select_related("benchmark__suite", "run__checkpoint").filter(
        run__in=runs_visible_to(user)
    )


def run_status(run: EvaluationRun) -> dict:
    """A run's state from its benchmark jobs: counts per state, progress and an overall word."""
    jobs = [link.job for link in run.benchmark_jobs.all()]
    states = [job.state for job in jobs]
    counts = {state: states.count(state) for state in JobState.values if state in states}  # a stable order
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
