"""Reads of jobs for pages and the API."""

from django.db.models import QuerySet
from django.utils import timezone

from webapp.jobs.models import Job, JobState


def jobs_visible_to(user) -> QuerySet[Job]:
    """Staff see every job; other users the jobs they submitted."""
    jobs = Job.objects.select_related("created_by")
    return jobs if user.is_staff else jobs.filter(created_by=user)


def job_detail(job_id: int, user) -> Job | None:
    return jobs_visible_to(user).prefetch_related("attempts", "transitions").filter(pk=job_id).first()


def job_eta_seconds(job: Job) -> float | None:
    """Seconds until a running job should end at the rate of its current attempt; None when there is
    no rate yet (not running, or no progress reported)."""
    if job.state != JobState.RUNNING or job.started_at is None or not job.progress_total or not job.progress_done:
        return None
    elapsed = (timezone.now() - job.started_at).total_seconds()
    remaining = max(0, job.progress_total - job.progress_done)
    return max(0.0, elapsed / job.progress_done * remaining)
