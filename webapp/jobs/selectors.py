"""Reads of jobs for pages, the API, /healthz and workers: a job, a running job's lease, the jobs a user may see, and the queue (positions,
estimated start and finish, per-queue counts and waiting times)."""

import collections
import datetime
import heapq
import math
import statistics
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Min, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from webapp.jobs.models import Job, JobState
from webapp.jobs.task_names import LABELS


def jobs_visible_to(user) -> QuerySet[Job]:
    """Staff see every job; other users the jobs they submitted."""
    jobs = Job.objects.select_related("created_by")
    return jobs if user.is_staff else jobs.filter(created_by=user)


def job_detail(job_id: int, user) -> Job | None:
    return jobs_visible_to(user).prefetch_related("attempts", "transitions").filter(pk=job_id).first()


def job_eta_seconds(job: Job, now=None) -> float | None:
    """Seconds until a running job should end at the rate of its current attempt; None when there is
    no rate yet (not running, or no progress reported)."""
    if job.state != JobState.RUNNING or job.started_at is None or not job.progress_total or not job.progress_done:
        return None
    elapsed = ((now or timezone.now()) - job.started_at).total_seconds()
    remaining = max(0, job.progress_total - job.progress_done)
    return max(0.0, elapsed / job.progress_done * remaining)


@dataclass(frozen=True)
class Lease:
    attempt: int
    heartbeat_at: datetime.datetime | None
    seconds_left: float


def job_lease(job_id: int) -> Lease | None:
    """The lease of a running job (None when the job is not running)."""
    row = Job.objects.filter(pk=job_id, state=JobState.RUNNING).values(
        "attempt_count", "heartbeat_at", "lease_expires_at"
    ).first()
    if row is None or row["lease_expires_at"] is None:
        return None
    left = (row["lease_expires_at"] - timezone.now()).total_seconds()
    return Lease(attempt=row["attempt_count"], heartbeat_at=row["heartbeat_at"], seconds_left=left)


# --- The queue: every queued or running job, its position and estimated times ---------------------

DURATION_HISTORY = 20  # finished jobs of a kind whose median duration estimates the next one's
ETA_METHOD = (
    "Position 1 starts next in its queue. Start and finish are estimated by handing the jobs of a worker pool "
    "to its slots as they free up, the pool's queues taking turns (as the worker does) and each queue in the "
    "order its jobs became due; the pool has as many slots as it runs jobs now (at least one), each job takes "
    f"the median duration of the last {DURATION_HISTORY} succeeded jobs of its kind, and a running job what "
    "its progress rate says is left (else that median less the time it has run). Unknown when a kind has no "
    "finished job yet."
)


def job_kind(task_name: str) -> str:
    return LABELS.get(task_name) or task_name.rsplit(".", 1)[-1].replace("_", " ")


def job_queue_name(task_name: str) -> str:
    return (settings.CELERY_TASK_ROUTES.get(task_name) or {}).get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def worker_pool_of(queue: str) -> str:
    return next((pool for pool, queues in settings.FRONTIER_WORKER_POOLS.items() if queue in queues), queue)


def _due(job: Job):
    return job.due_at or job.queued_at or job.created_at


def typical_durations(task_names) -> dict[str, float | None]:
    """Median seconds of the newest DURATION_HISTORY succeeded jobs of each kind (None: none finished yet);
    one query per kind, on the (task_name, state, finished_at) index."""
    typical = {}
    for task_name in sorted(set(task_names)):
        rows = (
            Job.objects.filter(task_name=task_name, state=JobState.SUCCEEDED, finished_at__isnull=False,
                               started_at__isnull=False)
            .order_by("-finished_at").values_list("started_at", "finished_at")[:DURATION_HISTORY]
        )
        durations = [(finished - started).total_seconds() for started, finished in rows]
        typical[task_name] = statistics.median(durations) if durations else None
    return typical


@dataclass
class QueueEntry:
    job: Job
    kind: str
    queue: str
    pool: str
    position: int | None = None  # 1 = starts next in its queue; None while running
    waited_seconds: float | None = None  # queued: since it became due
    starts_in_seconds: float | None = None  # queued only; None = unknown
    finishes_in_seconds: float | None = None  # None = unknown


@dataclass
class QueueSummary:
    name: str
    pool: str
    queued: int = 0
    running: int = 0
    oldest_queued_seconds: float | None = None
    slots_assumed: int = 1


def _remaining(job: Job, typical: float | None, now) -> float:
    by_rate = job_eta_seconds(job, now)
    if by_rate is not None:
        return by_rate
    if typical is None or job.started_at is None:
        return math.inf
    return max(0.0, typical - (now - job.started_at).total_seconds())


def _pool_queues(pool: str, entries: list[QueueEntry]) -> list[str]:
    """The pool's queues in the worker's -Q order, then any other queue its jobs name."""
    named = list(settings.FRONTIER_WORKER_POOLS.get(pool, ()))
    return named + sorted({entry.queue for entry in entries} - set(named))


def _estimate_pool(pool: str, entries: list[QueueEntry], typical: dict, now) -> int:
    """Fill in the start and finish estimates of a worker pool's jobs (see ETA_METHOD): each time a slot frees
    up, the queues take turns (as kombu's consumer cycles through them), each giving its first due job; a job
    not due yet waits for its time. Returns the slots assumed."""
    running = [entry for entry in entries if entry.position is None]
    slots = max(1, len(running))
    free_at = [_remaining(entry.job, typical.get(entry.job.task_name), now) for entry in running]
    for entry, seconds in zip(running, free_at):
        entry.finishes_in_seconds = None if math.isinf(seconds) else seconds
    free_at += [0.0] * (slots - len(free_at))
    heapq.heapify(free_at)
    turns = _pool_queues(pool, entries)
    waiting = {queue: collections.deque() for queue in turns}
    for entry in sorted((e for e in entries if e.position is not None), key=lambda e: (_due(e.job), e.job.pk)):
        waiting[entry.queue].append(entry)

    def due_in(entry) -> float:
        return max(0.0, (_due(entry.job) - now).total_seconds())

    last = len(turns) - 1
    while any(waiting.values()):
        slot_free = heapq.heappop(free_at)
        order = [turns[(last + step) % len(turns)] for step in range(1, len(turns) + 1)]
        ready = [queue for queue in order if waiting[queue] and due_in(waiting[queue][0]) <= slot_free]
        queue = ready[0] if ready else min((q for q in order if waiting[q]), key=lambda q: due_in(waiting[q][0]))
        last = turns.index(queue)
        entry = waiting[queue].popleft()
        start = max(slot_free, due_in(entry))
        duration = typical.get(entry.job.task_name)
        finish = start + duration if duration is not None else math.inf
        heapq.heappush(free_at, finish)
        entry.starts_in_seconds = None if math.isinf(start) else start
        entry.finishes_in_seconds = None if math.isinf(finish) else finish
    return slots


def job_queue(now=None) -> tuple[list[QueueEntry], dict[str, QueueSummary]]:
    """Every queued and running job, whoever submitted it, with its queue, its position there and estimated
    start and finish (ETA_METHOD); and per queue (all of settings.FRONTIER_QUEUES) the counts, the age of the
    oldest queued job since it became due, and the slots assumed. Queued first (by queue and position), then
    running. A fixed number of queries."""
    now = now or timezone.now()
    jobs = list(
        Job.objects.filter(state__in=(JobState.QUEUED, JobState.RUNNING)).select_related("created_by")
        .defer("result", "error").order_by("id")
    )
    entries = []
    for job in jobs:
        queue = job_queue_name(job.task_name)
        entries.append(QueueEntry(job=job, kind=job_kind(job.task_name), queue=queue, pool=worker_pool_of(queue)))
    summaries = {name: QueueSummary(name=name, pool=worker_pool_of(name)) for name in settings.FRONTIER_QUEUES}
    positions: dict[str, int] = {}
    for entry in sorted(entries, key=lambda e: (_due(e.job), e.job.pk)):
        summary = summaries.setdefault(entry.queue, QueueSummary(name=entry.queue, pool=entry.pool))
        if entry.job.state == JobState.QUEUED:
            positions[entry.queue] = positions.get(entry.queue, 0) + 1
            entry.position = positions[entry.queue]
            entry.waited_seconds = max(0.0, (now - _due(entry.job)).total_seconds())
            summary.queued += 1
            if summary.oldest_queued_seconds is None:
                summary.oldest_queued_seconds = entry.waited_seconds
        else:
            summary.running += 1
    typical = typical_durations(job.task_name for job in jobs)
    for pool in {entry.pool for entry in entries}:
        slots = _estimate_pool(pool, [entry for entry in entries if entry.pool == pool], typical, now)
        for summary in summaries.values():
            if summary.pool == pool:
                summary.slots_assumed = slots
    entries.sort(key=lambda e: (e.position is None, e.queue, e.position or 0, e.job.pk))
    return entries, summaries


def queue_stats(now=None) -> dict[str, dict]:
    """Per queue: queued and running jobs and the seconds the oldest queued job has waited since it became
    due (None when none waits); one aggregate query, for /healthz."""
    now = now or timezone.now()
    stats = {name: {"queued": 0, "running": 0, "oldest_queued_seconds": None} for name in settings.FRONTIER_QUEUES}
    rows = (
        Job.objects.filter(state__in=(JobState.QUEUED, JobState.RUNNING)).values("task_name", "state")
        .annotate(count=Count("id"), oldest_due=Min(Coalesce("due_at", "queued_at", "created_at")))
    )
    for row in rows:
        queue = stats.setdefault(job_queue_name(row["task_name"]),
                                 {"queued": 0, "running": 0, "oldest_queued_seconds": None})
        queue[row["state"]] += row["count"]
        if row["state"] == JobState.QUEUED:
            waited = max(0.0, (now - row["oldest_due"]).total_seconds())
            queue["oldest_queued_seconds"] = max(queue["oldest_queued_seconds"] or 0.0, waited)
    return stats
