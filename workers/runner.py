"""Runs one job inside a Celery task: claim the lease, heartbeat, capture logs, record the end.

`job_task` turns a handler `fn(ctx) -> dict | None` into a Celery task that takes a job id.
The handler reports progress with `ctx.progress(...)` and calls `ctx.check()` (or
`ctx.sleep(...)`) at safe points, where a cancel request or a lost lease stops it.

Every attempt that does not succeed gets a *failure class*: the exception's own ``failure_class``
attribute when it has one (``evaluation.errors``: load_error, out_of_memory, harness_error,
dataset_unavailable, ...), ``timeout`` when the soft time limit struck (even wrapped in another
error), ``worker_lost`` / ``cancelled`` for those outcomes, else ``internal_error``. A
``TransientJobError`` is retried with backoff and may change the job's params for the next try.
"""

import collections
import contextlib
import logging
import os
import threading
import time
import traceback

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction

from webapp.jobs import selectors, services
from webapp.jobs.models import AttemptOutcome, FailureClass, Job, JobAttempt
from workers.celery_app import app

logger = logging.getLogger("frontier.job")


class JobCancelled(Exception):
    """Raised inside a handler when its job was cancelled."""


class LeaseLost(Exception):
    """Raised inside a handler when another attempt (or the reaper) took its job over."""


class TransientJobError(Exception):
    """A failure worth another attempt (network blip, busy device); retried with backoff.

    ``failure_class`` is recorded on the attempt (and on the job if no attempt is left);
    ``params`` are merged into the job's params for the next attempt, e.g. a smaller batch size.
    """

    def __init__(self, message: str, *, failure_class: str = FailureClass.TRANSIENT, params: dict | None = None):
        super().__init__(message)
        self.failure_class = failure_class
        self.params = params or {}


class LogTail(logging.Handler):
    """Keeps the last lines logged while a job runs, for its attempt row."""

    def __init__(self, lines: int):
        super().__init__(level=logging.INFO)
        self.lines = collections.deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)

    def text(self) -> str:
        return "\n".join(self.lines)


class JobContext:
    """What a handler sees: the job's row and params, progress, cancellation, its logger."""

    def __init__(self, job: Job, attempt: JobAttempt):
        self.job = job
        self.attempt = attempt
        self.params = job.params
        self.log = logger
        self.progress_done: int | None = None
        self.progress_total: int | None = None
        self.cancel_requested = threading.Event()
        self.lease_lost = threading.Event()
        self.lease_expiring = ""  # why the attempt stopped itself before its lease could expire
        self._wake = threading.Event()

    def progress(self, done: int, total: int | None = None) -> None:
        self.progress_done = done
        if total is not None:
            self.progress_total = total

    def check(self) -> None:
        if self.lease_lost.is_set():
            raise LeaseLost(self.lease_expiring or f"job {self.job.pk} was taken over; attempt {self.attempt.number} stops")
        if self.cancel_requested.is_set():
            raise JobCancelled(f"job {self.job.pk} was cancelled")

    def sleep(self, seconds: float) -> None:
        """Wait, waking early (and raising) on cancel or lost lease."""
        self._wake.wait(seconds)
        self.check()

    def wake(self) -> None:
        self._wake.set()

    @contextlib.contextmanager
    def fenced(self):
        """A transaction in which this attempt still owns its job (``services.attempt_hold``): wrap every
        write of shared state (results, a registered checkpoint) in it, so a taken-over attempt's write
        never lands. Raises ``LeaseLost`` when the job was taken over."""
        with transaction.atomic():
            try:
                services.attempt_hold(self.attempt)
            except services.LeaseNotHeld as error:
                self.lease_lost.set()
                raise LeaseLost(str(error)) from None
            yield


class Heartbeat(threading.Thread):
    """Renews the lease every FRONTIER_JOB_HEARTBEAT_SECONDS while the handler runs.

    A failed renewal (the database restarting, a dropped connection) closes this thread's connection so the
    next beat opens a new one. When no renewal has succeeded for so long that the lease could expire within
    two beats, the attempt stops itself (``lease_lost``): another attempt may take the job over once the
    lease expires, and two attempts must never work on one job at once.
    """

    def __init__(self, ctx: JobContext, log_tail: LogTail):
        super().__init__(name=f"heartbeat-job-{ctx.job.pk}", daemon=True)
        self.ctx = ctx
        self.log_tail = log_tail
        self.stopped = threading.Event()
        self.renewed_at = time.monotonic()  # the claim took the lease just before the thread started

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.FRONTIER_JOB_HEARTBEAT_SECONDS):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        started = time.monotonic()
        try:
            reply = services.job_heartbeat(
                self.ctx.attempt,
                progress_done=self.ctx.progress_done,
                progress_total=self.ctx.progress_total,
                log_tail=self.log_tail.text(),
            )
        except Exception:
            logger.exception("Heartbeat of job %s failed; will try again on a new connection", self.ctx.job.pk)
            connection.close()
            self.stop_if_lease_may_expire()
            return
        self.renewed_at = started
        if not reply.lease_held:
            self.ctx.lease_lost.set()
            self.ctx.wake()
        if reply.cancel_requested:
            self.ctx.cancel_requested.set()
            self.ctx.wake()

    def stop_if_lease_may_expire(self) -> None:
        """Stop the attempt when the lease would expire within two heartbeats: one until this thread looks
        again, one for the handler to reach its next ``ctx.check()``."""
        unrenewed = time.monotonic() - self.renewed_at
        if unrenewed + 2 * settings.FRONTIER_JOB_HEARTBEAT_SECONDS >= settings.FRONTIER_JOB_LEASE_SECONDS:
            self.ctx.lease_expiring = (
                f"attempt {self.ctx.attempt.number} of job {self.ctx.job.pk} could not renew its lease for "
                f"{unrenewed:.1f} s (lease {settings.FRONTIER_JOB_LEASE_SECONDS:g} s) and stopped itself, so that "
                f"another attempt can take the job over"
            )
            self.ctx.lease_lost.set()
            self.ctx.wake()


def retry_countdown(attempt_number: int) -> float:
    """Exponential backoff between tries: 10 s, 20 s, 40 s, ... capped at 10 minutes."""
    return min(600.0, 10.0 * 2 ** (attempt_number - 1))


def _hit_time_limit(error: BaseException) -> bool:
    """Whether the soft time limit caused ``error`` (libraries may wrap it in their own exception)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SoftTimeLimitExceeded):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def failure_class_of(error: BaseException) -> str:
    if _hit_time_limit(error):
        return FailureClass.TIMEOUT
    return getattr(error, "failure_class", None) or FailureClass.INTERNAL_ERROR


def _claim(task, job_id: int) -> JobAttempt | None:
    """Claim the job for this delivery. A message the broker *redelivers* (its worker died) while the dead
    attempt's lease still runs is not dropped: this worker watches the lease and takes the job over the
    moment it expires, keeping the job's place, unless the holder proves alive by renewing it."""
    request = task.request

    def claim():
        return services.job_claim(job_id, task_id=request.id or "", hostname=request.hostname or "", pid=os.getpid())

    attempt = _with_database_retries(claim, what=f"claim job {job_id}")
    if attempt is not None or not (getattr(request, "delivery_info", None) or {}).get("redelivered"):
        return attempt
    held = selectors.job_lease(job_id)
    while held is not None:
        time.sleep(max(0.05, min(settings.FRONTIER_JOB_HEARTBEAT_SECONDS, held.seconds_left + 0.05)))
        now = selectors.job_lease(job_id)
        if now is None or (now.attempt, now.heartbeat_at) != (held.attempt, held.heartbeat_at):  # ended, or alive
            return None
        if now.seconds_left <= 0:
            logger.info("Job %s: the redelivered message takes over the expired lease", job_id)
            return claim()
        held = now
    return None


def execute_job(task, job_id: int, handler) -> None:
    close_old_connections()
    attempt = _claim(task, job_id)
    if attempt is None:
        return
    job = Job.objects.get(pk=job_id)
    ctx = JobContext(job, attempt)
    log_tail = LogTail(settings.FRONTIER_JOB_LOG_TAIL_LINES)
    root = logging.getLogger()
    root.addHandler(log_tail)
    heartbeat = Heartbeat(ctx, log_tail)
    heartbeat.start()
    outcome, result, error_class, error_message, failure_class = AttemptOutcome.SUCCEEDED, None, "", "", ""
    countdown, next_params = None, None
    try:
        logger.info("Job %s attempt %s started: %s %s", job_id, attempt.number, job.task_name, job.params)
        result = handler(ctx)
        logger.info("Job %s attempt %s succeeded", job_id, attempt.number)
    except JobCancelled as error:
        outcome, error_class, error_message = AttemptOutcome.CANCELLED, "JobCancelled", str(error)
        failure_class = FailureClass.CANCELLED
    except LeaseLost as error:  # ctx.fenced() turns a refused write (services.LeaseNotHeld) into this
        outcome, error_class, error_message = AttemptOutcome.LOST, "LeaseLost", str(error)
        failure_class = FailureClass.WORKER_LOST
        logger.warning("Job %s attempt %s stopped: %s", job_id, attempt.number, error)
    except TransientJobError as error:
        outcome, error_class, error_message = AttemptOutcome.RETRY, type(error).__name__, str(error)
        failure_class, next_params = error.failure_class, error.params
        countdown = retry_countdown(attempt.number)
        logger.warning("Job %s attempt %s failed (%s), may retry: %s", job_id, attempt.number, failure_class, error)
    except Exception as error:
        failure_class = failure_class_of(error)
        if failure_class == FailureClass.TIMEOUT:
            outcome, error_class = AttemptOutcome.FAILED, "Timeout"
            limit = task.soft_time_limit or app.conf.task_soft_time_limit
            error_message = f"exceeded its soft time limit of {limit} s"
        else:
            outcome, error_class, error_message = AttemptOutcome.FAILED, type(error).__name__, str(error)
        logger.error(
            "Job %s attempt %s failed (%s):\n%s", job_id, attempt.number, failure_class, traceback.format_exc()
        )
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
        root.removeHandler(log_tail)
    _with_database_retries(
        lambda: services.attempt_finish(
            attempt, outcome, result=result, error_class=error_class, error_message=error_message,
            failure_class=failure_class, log_tail=log_tail.text(), retry_countdown=countdown,
            retry_params=next_params, progress_done=ctx.progress_done, progress_total=ctx.progress_total,
        ),
        what=f"record the end of job {job_id} attempt {attempt.number}",
    )


def _with_database_retries(write, what: str):
    """Run a bookkeeping write, retrying on a new connection while the database is away for up to a lease
    period (a restart takes seconds); after that the error propagates and the reaper recovers the job."""
    from workers.transient import database_transient  # here: workers.transient imports this module

    deadline = time.monotonic() + settings.FRONTIER_JOB_LEASE_SECONDS
    pause = 0.25
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as error:
            if not database_transient(error) or time.monotonic() + pause > deadline:
                raise
            logger.warning("Could not %s; the database is unavailable, trying again in %.2f s", what, pause,
                           exc_info=True)
            connection.close()
            time.sleep(pause)
            pause = min(2.0, pause * 2)


def job_task(*, soft_time_limit: int | None = None, time_limit: int | None = None):
    """Make a Celery task named workers.tasks.<handler name> that runs the handler as a job."""

    def decorate(handler):
        def run(task, job_id: int) -> None:
            execute_job(task, job_id, handler)

        run.__doc__ = handler.__doc__
        options = {"name": f"workers.tasks.{handler.__name__}", "bind": True}
        if soft_time_limit is not None:
            options["soft_time_limit"] = soft_time_limit
        if time_limit is not None:
            options["time_limit"] = time_limit
        return app.task(**options)(run)

    return decorate
