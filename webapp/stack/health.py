"""Checks of the parts Frontier needs: database, broker, workers (one consuming every queue), the
queues themselves and the free space of the disks it writes to.

The status is "fail" (HTTP 503) when the database or the broker is down, or no worker consumes some
queue; "degraded" (HTTP 200: the service works, but jobs wait or uploads may soon be refused) when a
queue's oldest queued job has waited longer than FRONTIER_QUEUE_STALL_SECONDS (or its per-queue value)
since it was due, or when the media or var disk has less than FRONTIER_DISK_LOW_BYTES free; else "ok".
"""

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from webapp.jobs.selectors import queue_stats

ESSENTIAL = ("database", "broker", "workers")


@dataclass
class Check:
    ok: bool
    detail: str
    ms: float = 0.0
    extra: dict = field(default_factory=dict)


def _timed(check) -> Check:
    started = time.monotonic()
    try:
        result = check()
    except Exception as error:
        result = Check(False, f"{type(error).__name__}: {error}")
    result.ms = round((time.monotonic() - started) * 1000, 1)
    return result


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return Check(True, connection.vendor)


def check_broker() -> Check:
    from webapp.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=settings.FRONTIER_HEALTH_TIMEOUT_SECONDS)
        return Check(True, conn.as_uri())


def check_workers() -> Check:
    """A broadcast asking every worker which queues it consumes (it answers only if alive)."""
    from webapp.celery_app import app

    timeout = settings.FRONTIER_HEALTH_TIMEOUT_SECONDS
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    names = sorted(replies)
    if not names:
        return Check(False, f"no worker answered within {timeout:g} s")
    consumers = {queue: sorted(name for name, queues in replies.items() if any(q["name"] == queue for q in queues))
                 for queue in settings.FRONTIER_QUEUES}
    extra = {"workers": names, "consumers": consumers}
    idle = [queue for queue, workers in consumers.items() if not workers]
    if idle:
        return Check(False, f"no worker consumes {', '.join(idle)} ({len(names)} worker(s) answered)", extra=extra)
    return Check(True, f"{len(names)} worker(s) answered, every queue consumed", extra=extra)


def stall_seconds(queue: str) -> float:
    return settings.FRONTIER_QUEUE_STALL_SECONDS_BY_QUEUE.get(queue, settings.FRONTIER_QUEUE_STALL_SECONDS)


def check_queues() -> dict[str, Check]:
    """One check per queue, from the job table: queued and running jobs, and how long the oldest queued one
    has waited since it was due."""
    checks = {}
    for queue, stats in queue_stats().items():
        limit = stall_seconds(queue)
        oldest = stats["oldest_queued_seconds"]
        extra = {**stats, "stall_seconds": limit}
        if oldest is None:
            detail = f"nothing queued, {stats['running']} running"
        else:
            detail = f"{stats['queued']} queued, {stats['running']} running, the oldest waiting {oldest:.0f} s"
        if oldest is not None and oldest > limit:
            checks[f"queue:{queue}"] = Check(False, f"{detail}: over {limit:g} s", extra=extra)
        else:
            checks[f"queue:{queue}"] = Check(True, detail, extra=extra)
    return checks


def check_disk(path) -> Check:
    """Free space where Frontier writes (checkpoints, upload parts, extraction folders)."""
    path = Path(path)
    while not path.exists() and path != path.parent:  # not made yet: the disk it will be on
        path = path.parent
    usage = shutil.disk_usage(path)
    low = settings.FRONTIER_DISK_LOW_BYTES
    extra = {"free_bytes": usage.free, "total_bytes": usage.total, "low_bytes": low}
    detail = f"{usage.free / 1e9:.1f} GB free of {usage.total / 1e9:.1f} GB"
    if usage.free < low:
        return Check(False, f"{detail}: under {low / 1e9:g} GB; uploads and validations will soon be refused",
                     extra=extra)
    return Check(True, detail, extra=extra)


def disk_paths() -> dict[str, str]:
    """The local folders whose disks are checked: media (when the storage is a local disk) and var."""
    paths = {"disk:var": str(settings.VAR_DIR)}
    try:
        paths["disk:media"] = default_storage.path("")
    except NotImplementedError:  # object storage: its space is the provider's to report
        pass
    return paths


def system_health() -> dict:
    """Run every check; a part that depends on a failing one is reported as not checked."""
    checks = {"database": _timed(check_database), "broker": _timed(check_broker)}
    if checks["broker"].ok:
        checks["workers"] = _timed(check_workers)
    else:
        checks["workers"] = Check(False, "not checked: the broker is down")
    if checks["database"].ok:
        started = time.monotonic()
        try:
            queues = check_queues()
        except Exception as error:
            queues = {"queues": Check(False, f"{type(error).__name__}: {error}")}
        for check in queues.values():
            check.ms = round((time.monotonic() - started) * 1000, 1)
        checks.update(queues)
    else:
        checks.update({f"queue:{queue}": Check(False, "not checked: the database is down")
                       for queue in settings.FRONTIER_QUEUES})
    for name, path in disk_paths().items():
        checks[name] = _timed(lambda path=path: check_disk(path))
    failing = [name for name, check in checks.items() if not check.ok]
    if any(name in ESSENTIAL for name in failing) or "queues" in failing:
        status = "fail"
    else:
        status = "degraded" if failing else "ok"
    return {
        "status": status,
        "failing": failing,
        "checks": {name: asdict(check) for name, check in checks.items()},
    }
