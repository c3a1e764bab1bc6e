"""Reads of jobs for pages and the API."""

from django.db.models import QuerySet

from webapp.jobs.models import Job


def jobs_visible_to(user) -> QuerySet[Job]:
    """Staff see every job; other users the jobs they submitted."""
    jobs = Job.objects.select_related("created_by")
    return jobs if user.is_staff else jobs.filter(created_by=user)


def job_detail(job_id: int, user) -> Job | None:
    return jobs_visible_to(user).prefetch_related("attempts", "transitions").filter(pk=job_id).first()
