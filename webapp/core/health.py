"""Liveness checks of the three parts Frontier needs: database, broker and workers."""

import time
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection


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
    from workers.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=settings.FRONTIER_HEALTH_TIMEOUT_SECONDS)
        return Check(True, conn.as_uri())


def check_workers() -> Check:
    from workers.celery_app import app

    timeout = settings.FRONTIER_HEALTH_TIMEOUT_SECONDS
    replies = app.control.ping(timeout=timeout)
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return Check(False, f"no worker answered a ping within {timeout:g} s")
    return Check(True, f"{len(names)} worker(s) answered", extra={"workers": names})


def system_health() -> dict:
    """Run every check; a part that depends on a failing one is reported as not checked."""
    checks = {"database": _timed(check_database), "broker": _timed(check_broker)}
    if checks["broker"].ok:
        checks["workers"] = _timed(check_workers)
    else:
        checks["workers"] = Check(False, "not checked: the broker is down")
    failing = [name for name, check in checks.items() if not check.ok]
    return {
        "status": "ok" if not failing else "fail",
        "failing": failing,
        "checks": {name: asdict(check) for name, check in checks.items()},
    }
