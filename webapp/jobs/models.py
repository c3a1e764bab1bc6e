"""The job pattern every background task uses.

A `Job` row is the truth about a piece of background work; the Celery message only carries
its id. A running job holds a *lease* (`lease_expires_at`) that its worker renews with every
heartbeat; whoever finds the lease expired (a redelivered message or the reaper) may take the
job over. Each try is one `JobAttempt`; each state change is one `JobTransition` with its time
and reason.
"""

from django.conf import settings
from django.db import models


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class Job(models.Model):
    task_name = models.CharField(max_length=200, help_text="Celery task that runs this job.")
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When a queued job may start: queued_at plus its countdown (a retry's backoff, a refit's gathering delay).",
    )
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When its message last reached the broker."
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="Start of the current attempt.")
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    attempt_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)

    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the job failed or was cancelled.")
    failure_class = models.CharField(
        max_length=32, blank=True, help_text="Kind of failure of a failed job, e.g. load_error, out_of_memory, timeout."
    )
    coalesce_key = models.CharField(
        max_length=200, blank=True,
        help_text="Jobs with the same key coalesce: while one is queued, submitting another returns it.",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["coalesce_key"],
                condition=models.Q(state="queued") & ~models.Q(coalesce_key=""),
                name="one_queued_job_per_coalesce_key",
            )
        ]
        indexes = [
            models.Index(fields=["state", "lease_expires_at"], name="job_state_lease_idx"),
            models.Index(fields=["state", "published_at"], name="job_state_published_idx"),
            # The queue's ETAs read the newest finished jobs of each kind.
            models.Index(fields=["task_name", "state", "finished_at"], name="job_kind_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.task_name} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def progress_fraction(self) -> float | None:
        if not self.progress_total:
            return None
        return min(1.0, self.progress_done / self.progress_total)


class JobTransition(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, choices=JobState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=JobState.choices)
    at = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state} at {self.at:%Y-%m-%d %H:%M:%S}"


class FailureClass:
    """Failure classes the job machinery assigns itself. Errors raised by handlers bring their own
    (an exception's ``failure_class`` attribute, e.g. ``load_error`` or ``out_of_memory`` from
    ``evaluation.errors``); any other exception is an ``internal_error``."""

    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    CANCELLED = "cancelled"
    TRANSIENT = "transient"
    INTERNAL_ERROR = "internal_error"
    # Raised by handlers (evaluation.errors, workers.transient), named here for the rules that read them.
    OUT_OF_MEMORY = "out_of_memory"
    DATASET_UNAVAILABLE = "dataset_unavailable"
    JUDGE_UNAVAILABLE = "judge_unavailable"
    ENVIRONMENT_ERROR = "environment_error"
    STORAGE_ERROR = "storage_error"
    DATABASE_UNAVAILABLE = "database_unavailable"
    # Not the submitter's doing: a run that failed only for these does not count against their quota.
    PLATFORM = frozenset({WORKER_LOST, TIMEOUT, TRANSIENT, OUT_OF_MEMORY, DATASET_UNAVAILABLE, JUDGE_UNAVAILABLE,
                          ENVIRONMENT_ERROR, STORAGE_ERROR, DATABASE_UNAVAILABLE})
    # The platform failing while it ran the job: retried up to FRONTIER_JOB_MAX_PLATFORM_FAILURES times without
    # using up the job's max_attempts (a chaos of worker kills must not fail a user's evaluation).
    PLATFORM_RETRY = frozenset({WORKER_LOST, DATABASE_UNAVAILABLE, STORAGE_ERROR})


class AttemptOutcome(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry", "failed, will retry"
    CANCELLED = "cancelled"
    LOST = "lost", "worker lost"


class JobAttempt(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    task_id = models.CharField(max_length=255, blank=True)
    worker_hostname = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.RUNNING)
    error_class = models.CharField(max_length=200, blank=True)
    failure_class = models.CharField(
        max_length=32, blank=True, help_text="Kind of failure of an attempt that did not succeed (see workers.runner)."
    )
    error_message = models.TextField(blank=True)
    log_tail = models.TextField(blank=True)

    class Meta:
        ordering = ["job_id", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="unique_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of job {self.job_id} ({self.outcome})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
