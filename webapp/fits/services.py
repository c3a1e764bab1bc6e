"""Writes of the fitting service: request a refit (coalesced), record a fit."""

from django.conf import settings

from webapp.fits.models import ScalingLawFit
from webapp.jobs.models import Job
from webapp.jobs.services import job_submit

REFIT_TASK = "workers.tasks.refit_scaling_laws"


def refit_request() -> Job:
    """Queue a refit once the current transaction commits. A burst of results becomes one
    refit: while a refit is still queued, requests return it instead of queuing another."""
    return job_submit(
        task_name=REFIT_TASK, coalesce_key="refit", countdown=settings.FRONTIER_REFIT_DELAY_SECONDS
    )


def scaling_law_fit_record(**fields) -> ScalingLawFit:
    fit, _ = ScalingLawFit.objects.get_or_create(
        suite=fields.pop("suite"), scope=fields.pop("scope"), law=fields.pop("law"),
        query_tokens=fields.pop("query_tokens"), fingerprint=fields.pop("fingerprint"), defaults=fields,
    )
    return fit
