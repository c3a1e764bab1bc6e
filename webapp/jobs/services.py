"""Writes of the job pattern: submit, claim, heartbeat, finish, cancel, reap.

Every state change happens inside a transaction on a row locked with SELECT ... FOR UPDATE
(on SQLite the IMMEDIATE transaction mode serialises writers instead), so a redelivered
message, a second worker and the reaper can race without ever running a job twice or
recording two outcomes.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.core.errors import ServiceError
from webapp.jobs.models import AttemptOutcome, FailureClass, Job, JobAttempt, JobState, JobTransition
from webapp.jobs.signals import job_failed

logger = logging.getLogger(__name__)


class JobError(ServiceError):
    """A request about a job that cannot be honoured; the message says why."""


class LeaseNotHeld(JobError):
    """A write of an attempt that no longer owns its job (the reaper or another worker took it over)."""

    failure_class = FailureClass.WORKER_LOST


def _lease() -> timedelta:
    return timedelta(seconds=settings.FRONTIER_JOB_LEASE_SECONDS)


def _transition(job: Job, to_state: str, reason: str, now: datetime) -> None:
    JobTransition.objects.create(job=job, from_state=job.state, to_state=to_state, at=now, reason=reason)
    job.state = to_state


def known_task_names() -> set[str]:
    return set(settings.CELERY_TASK_ROUTES)


def job_submit(
    *,
    task_name: str,
    params: dict | None = None,
    created_by=None,
    max_attempts: int | None = None,
    coalesce_key: str = "",
    countdown: float | None = None,
) -> Job:
    """Create a queued job and publish its id once the surrounding transaction commits.

    With a `coalesce_key`, a job with that key that is still queued is returned instead of a
    new one (a burst of requests becomes one job); `countdown` delays its start so a burst can
    gather first.
    """
    if task_name not in known_task_names():
        raise JobError(f"Unknown task {task_name!r}; known tasks: {', '.join(sorted(known_task_names()))}.")
    now = timezone.now()
    job = Job(
        task_name=task_name,
        params=params or {},
        created_by=created_by,
        max_attempts=max_attempts or settings.FRONTIER_JOB_MAX_ATTEMPTS,
        queued_at=now,
        due_at=now + timedelta(seconds=countdown or 0),
        coalesce_key=coalesce_key,
        state=JobState.QUEUED,
    )
    with transaction.atomic():
        if coalesce_key:
            waiting = Job.objects.filter(coalesce_key=coalesce_key, state=JobState.QUEUED).first()
            if waiting is not None:
                return waiting
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:  # another request queued the same key a moment ago
            return Job.objects.get(coalesce_key=coalesce_key, state=JobState.QUEUED)
        JobTransition.objects.create(job=job, from_state="", to_state=JobState.QUEUED, at=now, reason="submitted")
        _publish_on_commit(job.pk, countdown=countdown)
    return job


def _publish_on_commit(job_id: int, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: job_publish(job_id, countdown=countdown))


def job_publish(job_id: int, countdown: float | None = None) -> bool:
    """Send the job's id to its queue. A failure is logged, not raised: the reaper re-publishes
    queued jobs whose message never reached the broker."""
    from webapp.celery_app import app

    job = Job.objects.filter(pk=job_id, state=JobState.QUEUED).only("task_name").first()
    if job is None:
        return False
    try:
        app.send_task(job.task_name, args=[job_id], countdown=countdown)
    except Exception:
        logger.exception("Could not publish job %s; the reaper will retry", job_id)
        return False
    Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(published_at=timezone.now())
    return True


def job_claim(job_id: int, *, task_id: str, hostname: str, pid: int) -> JobAttempt | None:
    """Take the job's lease and open an attempt, or return None when this delivery must not run.

    Runs when the job is queued, or running with an expired lease (its worker died: the old
    attempt is closed as lost). A terminal job, or one whose lease is still held, is left alone.
    """
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("Job %s does not exist; message dropped", job_id)
            return None
        if job.is_terminal:
            logger.info("Job %s is already %s; message dropped", job_id, job.state)
            return None
        if job.state == JobState.RUNNING:
            if job.lease_expires_at and job.lease_expires_at > now:
                logger.info(
                    "Job %s is held by attempt %s until %s; duplicate message dropped",
                    job_id, job.attempt_count, job.lease_expires_at.isoformat(),
                )
                return None
            lost_reason = _close_lost_attempt(job, now, taken_over_by=hostname)
            spent = _tries_spent(job)
            if spent:
                _finish_job(job, JobState.FAILED, now, f"{lost_reason}; {spent}", failure_class=FailureClass.WORKER_LOST)
                return None
        if job.cancel_requested_at:
            _finish_job(job, JobState.CANCELLED, now, "cancelled before it started")
            return None
        attempt = JobAttempt.objects.create(
            job=job,
            number=job.attempt_count + 1,
            task_id=task_id or "",
            worker_hostname=hostname or "",
            worker_pid=pid,
            started_at=now,
        )
        if job.state != JobState.RUNNING:
            _transition(job, JobState.RUNNING, f"attempt {attempt.number} on {hostname}", now)
        else:
            JobTransition.objects.create(
                job=job, from_state=JobState.RUNNING, to_state=JobState.RUNNING, at=now,
                reason=f"attempt {attempt.number} on {hostname} took over: {lost_reason}",
            )
        job.attempt_count = attempt.number
        job.started_at = now
        job.heartbeat_at = now
        job.lease_expires_at = now + _lease()
        job.save()
    return attempt


def _close_lost_attempt(job: Job, now: datetime, taken_over_by: str) -> str:
    """Mark the job's current attempt as lost (its worker stopped renewing the lease)."""
    attempt = job.attempts.filter(number=job.attempt_count).first()
    last_beat = job.heartbeat_at.isoformat() if job.heartbeat_at else "never"
    where = f" on {attempt.worker_hostname} (pid {attempt.worker_pid})" if attempt else ""
    reason = f"attempt {job.attempt_count}{where} stopped heartbeating: last heartbeat {last_beat}"
    if attempt and attempt.outcome == AttemptOutcome.RUNNING:
        attempt.outcome = AttemptOutcome.LOST
        attempt.finished_at = now
        attempt.error_class = "WorkerLost"
        attempt.failure_class = FailureClass.WORKER_LOST
        attempt.error_message = f"{reason}; noticed by {taken_over_by}"
        attempt.save(update_fields=["outcome", "finished_at", "error_class", "failure_class", "error_message"])
    return reason


def _tries_spent(job: Job) -> str:
    """Why the job may not try again ('' when it may). Failures of the platform (a worker lost, the
    database or storage unavailable: ``FailureClass.PLATFORM_RETRY``) have their own cap,
    FRONTIER_JOB_MAX_PLATFORM_FAILURES, and do not use up the job's ``max_attempts``."""
    classes = list(job.attempts.exclude(outcome=AttemptOutcome.RUNNING).values_list("failure_class", flat=True))
    platform = sum(1 for failure_class in classes if failure_class in FailureClass.PLATFORM_RETRY)
    own = len(classes) - platform
    if own >= job.max_attempts:
        return f"gave up after {own} failed attempts (max_attempts {job.max_attempts})"
    if platform >= settings.FRONTIER_JOB_MAX_PLATFORM_FAILURES:
        return (f"gave up after {platform} failures of the platform (worker lost, database or storage "
                f"unavailable); the operators should look at the workers")
    return ""


def _finish_job(job: Job, state: str, now: datetime, reason: str, result=None, failure_class: str = "") -> None:
    _transition(job, state, reason, now)
    job.finished_at = now
    job.lease_expires_at = None
    job.failure_class = failure_class if state == JobState.FAILED else ""
    if state == JobState.SUCCEEDED:
        job.result = result
        job.error = ""
    else:
        job.error = reason
    job.save()
    if state == JobState.FAILED:
        job_failed.send(sender=Job, job=job)


def attempt_hold(attempt: JobAttempt) -> None:
    """Fencing for a job's writes: run inside the transaction of the write it guards, it locks the job's
    row and raises ``LeaseNotHeld`` unless ``attempt`` is still the job's current attempt (its number is the
    fencing token). The reaper and other workers lock that row before they take a job over, so until the
    transaction ends nobody can: a write of a stale attempt (one that was taken over while it went on
    working) never lands."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("attempt_hold must run inside the transaction of the write it guards")
    job = Job.objects.select_for_update().filter(pk=attempt.job_id).values("state", "attempt_count").first()
    if job is None or job["state"] != JobState.RUNNING or job["attempt_count"] != attempt.number:
        now = f"{job['state']}, attempt {job['attempt_count']}" if job else "deleted"
        raise LeaseNotHeld(
            f"attempt {attempt.number} of job {attempt.job_id} no longer holds its lease (the job is {now}); "
            f"its write was not made"
        )


@dataclass(frozen=True)
class HeartbeatReply:
    lease_held: bool
    cancel_requested: bool


def job_heartbeat(
    attempt: JobAttempt, *, progress_done: int | None = None, progress_total: int | None = None,
    log_tail: str | None = None,
) -> HeartbeatReply:
    """Renew the attempt's lease and report progress; tells the worker whether to go on."""
    now = timezone.now()
    fields = {"heartbeat_at": now, "lease_expires_at": now + _lease()}
    if progress_done is not None:
        fields["progress_done"] = progress_done
    if progress_total is not None:
        fields["progress_total"] = progress_total
    held = Job.objects.filter(
        pk=attempt.job_id, state=JobState.RUNNING, attempt_count=attempt.number
    ).update(**fields)
    if log_tail is not None:
        JobAttempt.objects.filter(pk=attempt.pk).update(log_tail=log_tail)
    cancel = Job.objects.filter(pk=attempt.job_id, cancel_requested_at__isnull=False).exists()
    return HeartbeatReply(lease_held=bool(held), cancel_requested=cancel)


def attempt_finish(
    attempt: JobAttempt,
    outcome: str,
    *,
    result: dict | None = None,
    error_class: str = "",
    error_message: str = "",
    failure_class: str = "",
    log_tail: str = "",
    retry_countdown: float | None = None,
    retry_params: dict | None = None,
    progress_done: int | None = None,
    progress_total: int | None = None,
) -> Job:
    """Close an attempt and move its job accordingly.

    If the attempt no longer holds the lease (the reaper or another worker took the job over),
    only the attempt is closed, as lost: the job's fate belongs to its new holder. A retried
    job's params are updated with `retry_params` for its next attempt.
    """
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=attempt.job_id)
        attempt.refresh_from_db()
        holds_lease = job.state == JobState.RUNNING and job.attempt_count == attempt.number
        if not holds_lease:
            outcome = AttemptOutcome.LOST
            error_class = error_class or "LeaseLost"
            error_message = error_message or f"lease lost: the job is now {job.state} (attempt {job.attempt_count})"
            failure_class = FailureClass.WORKER_LOST
        if attempt.outcome == AttemptOutcome.RUNNING:
            attempt.outcome = outcome
            attempt.finished_at = now
            attempt.error_class = error_class[:200]
            attempt.failure_class = failure_class
            attempt.error_message = error_message
            attempt.log_tail = log_tail
            attempt.save()
        if not holds_lease:
            return job
        if progress_done is not None:
            job.progress_done = progress_done
        if progress_total is not None:
            job.progress_total = progress_total
        if outcome == AttemptOutcome.SUCCEEDED:
            _finish_job(job, JobState.SUCCEEDED, now, f"attempt {attempt.number} succeeded", result=result)
        elif outcome == AttemptOutcome.CANCELLED:
            _finish_job(job, JobState.CANCELLED, now, "cancelled while running")
        elif outcome in (AttemptOutcome.RETRY, AttemptOutcome.LOST) and not (spent := _tries_spent(job)):
            # LOST while still holding the lease: the attempt stopped itself, unable to renew it in time.
            job.params = {**job.params, **(retry_params or {})}
            _requeue(job, now, f"attempt {attempt.number} failed ({error_class}: {error_message}); "
                               f"retrying in {retry_countdown or 0:.0f} s", countdown=retry_countdown)
        else:
            reason = f"{error_class}: {error_message}".strip(": ")
            if outcome in (AttemptOutcome.RETRY, AttemptOutcome.LOST):
                reason = f"{reason}; {spent}"
            _finish_job(job, JobState.FAILED, now, reason, failure_class=failure_class)
    return job


def _requeue(job: Job, now: datetime, reason: str, countdown: float | None = None) -> None:
    if job.coalesce_key:
        waiting = Job.objects.filter(coalesce_key=job.coalesce_key, state=JobState.QUEUED).exclude(pk=job.pk).first()
        if waiting is not None:
            _finish_job(job, JobState.CANCELLED, now, f"{reason}; coalesced into queued job {waiting.pk}")
            return
    _transition(job, JobState.QUEUED, reason, now)
    job.queued_at = now
    job.due_at = now + timedelta(seconds=countdown or 0)
    job.published_at = None
    job.lease_expires_at = None
    job.save()
    _publish_on_commit(job.pk, countdown=countdown)


def job_cancel(job: Job, *, reason: str = "cancelled by user") -> Job:
    """Cancel a queued job at once; ask a running one to stop (its worker checks each heartbeat)."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            raise JobError(f"Job {job.pk} is already {job.state}; nothing to cancel.")
        job.cancel_requested_at = job.cancel_requested_at or now
        if job.state == JobState.QUEUED:
            _finish_job(job, JobState.CANCELLED, now, reason)
        else:
            job.save(update_fields=["cancel_requested_at"])
    return job


@dataclass(frozen=True)
class ReapReport:
    requeued: list[int]
    ended: list[int]
    republished: list[int]


def jobs_reap() -> ReapReport:
    """Recover jobs whose worker died (expired lease) and queued jobs whose message was never
    published. Each decision is written as a transition with its reason."""
    now = timezone.now()
    requeued, ended, republished = [], [], []
    stale_ids = Job.objects.filter(state=JobState.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)
    for job_id in list(stale_ids):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.state != JobState.RUNNING or job.lease_expires_at is None or job.lease_expires_at >= now:
                continue
            reason = _close_lost_attempt(job, now, taken_over_by="the reaper")
            if job.cancel_requested_at:
                _finish_job(job, JobState.CANCELLED, now, f"{reason}; cancel had been requested")
                ended.append(job.pk)
            elif spent := _tries_spent(job):
                _finish_job(job, JobState.FAILED, now, f"{reason}; {spent}", failure_class=FailureClass.WORKER_LOST)
                ended.append(job.pk)
            else:
                _requeue(job, now, f"reaped: {reason}; re-queued")
                requeued.append(job.pk)
    grace = now - _lease()
    unpublished = Job.objects.filter(state=JobState.QUEUED, published_at__isnull=True, queued_at__lt=grace)
    for job_id in list(unpublished.values_list("pk", flat=True)):
        if job_publish(job_id):
            republished.append(job_id)
    if requeued or ended or republished:
        logger.warning("Reaper: requeued %s, ended %s, republished %s", requeued, ended, republished)
    return ReapReport(requeued=requeued, ended=ended, republished=republished)
