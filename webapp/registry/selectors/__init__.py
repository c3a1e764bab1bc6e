"""Reads of the registry, always through what a user may see; ``stale`` (webapp.registry.selectors.stale): which
newest results were computed with task files or a dataset revision that changed since; ``reuse``: which earlier
result of a checkpoint can stand in for evaluating a benchmark shared by several suites."""

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet

from webapp.core.storage import storage_files
from webapp.jobs.models import JobState
from webapp.registry.models import BenchmarkResult, Checkpoint, CheckpointStatus, EvaluationRun, Visibility
from webapp.registry.selectors.reuse import reusable_output, reused_origin  # noqa: F401 (the workers' entry point)

FILES_CACHE_SECONDS = 3600


def visible_to_owner(user, via: str = "", *, visibility: str = "visibility", hidden: str | None = "hidden") -> Q:
    """The one visibility rule: what `user` owns, and what is public and not hidden by staff.

    An anonymous visitor sees only the public part. `via` is the path to the row that carries the
    owner (e.g. "checkpoint__"); `visibility` and `hidden` name its fields (`hidden=None` for rows
    staff cannot hide, such as training runs; a sweep keeps its visibility in its grid). Staff
    seeing everything is for the caller to add: the leaderboards do not."""
    public = Q(**{f"{via}{visibility}": Visibility.PUBLIC})
    if hidden:
        public &= Q(**{f"{via}{hidden}": False})
    if user is not None and not user.is_authenticated:
        return public
    return Q(**{f"{via}owner": user}) | public


def checkpoints_visible_to(user) -> QuerySet[Checkpoint]:
    """Own checkpoints and public, not hidden ones (anonymous visitors: those only); staff see everything."""
    checkpoints = Checkpoint.objects.select_related("owner", "llm", "compressor")
    return checkpoints if user.is_staff else checkpoints.filter(visible_to_owner(user))


def can_manage(user, checkpoint: Checkpoint) -> bool:
    """Whether `user` may cancel, rerun or delete what belongs to the checkpoint: its owner, or staff."""
    return user.is_authenticated and (user.is_staff or checkpoint.owner_id == user.pk)


def checkpoint_files(checkpoint: Checkpoint) -> list[dict]:
    """The stored files of a checkpoint (name relative to its folder, size in bytes), by name; none
    for a published entry, a rejected checkpoint or one not validated yet (its archive is not its files)."""
    prefix = checkpoint.files_prefix.rstrip("/")
    if checkpoint.status != CheckpointStatus.READY or not prefix:
        return []

    def listing():
        return [
            {"name": name[len(prefix) + 1:], "size": default_storage.size(name)}
            for name in sorted(storage_files(prefix))
        ]

    # A ready checkpoint's files never change (new files mean a new checkpoint): list them once an hour
    # at most, not at every refresh of its page (object storage answers a request per file).
    # (Its creation time is in the key: a database recreated from scratch reuses ids.)
    key = f"checkpoint-files:{checkpoint.pk}:{checkpoint.created_at.timestamp()}:{checkpoint.sha256}:{prefix}"
    return cache.get_or_set(key, listing, FILES_CACHE_SECONDS)


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
