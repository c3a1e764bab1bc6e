"""Writes of the fitting service: request a refit (coalesced), record a fit or why there is none, and how far
a refit brought a suite's scores."""

from django.conf import settings
from django.utils import timezone

import fitting

from webapp.fits.models import FitStatus, RefitState, ScalingLawFit
from webapp.jobs.models import Job
from webapp.jobs.services import job_submit
from webapp.jobs.task_names import REFIT

REFIT_TASK = REFIT.name


def refit_request() -> Job:
    """Queue a refit once the current transaction commits. A burst of results becomes one
    refit: while a refit is still queued, requests return it instead of queuing another."""
    return job_submit(
        task_name=REFIT_TASK, coalesce_key="refit", countdown=settings.FRONTIER_REFIT_DELAY_SECONDS
    )


def scaling_law_fit_record(*, parameter_draws=(), **fields) -> ScalingLawFit:
    """Store a fit. When the input returns to an earlier state (e.g. a checkpoint deleted again),
    the existing row of that input becomes the latest one again instead of a duplicate.

    `parameter_draws` are the bootstrap's parameter rows in the law's parameter order; they let a
    reader compute the predicted error's interval at any configuration."""
    names = fitting.get_law(fields["law"]).parameter_names
    misshapen = [index for index, row in enumerate(parameter_draws) if len(row) != len(names)]
    if misshapen:
        raise ValueError(f"parameter draws of the {fields['law']} law need {len(names)} values per row "
                         f"({', '.join(names)}); rows {misshapen[:10]} differ")
    fields["parameter_draws"] = [list(row) for row in parameter_draws]
    fit, created = ScalingLawFit.objects.get_or_create(
        suite=fields.pop("suite"), scope=fields.pop("scope"), law=fields.pop("law"),
        query_tokens=fields.pop("query_tokens"), fingerprint=fields.pop("fingerprint"), defaults=fields,
    )
    if not created:
        fit.created_at = timezone.now()
        ScalingLawFit.objects.filter(pk=fit.pk).update(created_at=fit.created_at)
    return fit


def scaling_law_cannot_fit_record(*, reason: str, reason_code: str, **fields) -> ScalingLawFit:
    """Store that this input cannot be fitted, and why ("cannot fit: …"), like a fit: the row is the
    current state of its (suite, scope, law, Q), so pages show the reason, and its fingerprint keeps
    the refit from trying the same input again."""
    return scaling_law_fit_record(status=FitStatus.CANNOT_FIT, reason=reason, reason_code=reason_code, **fields)


def refit_state_record(suite, *, scores_key: str, started_at, full: bool) -> RefitState:
    """Remember that a refit that started at ``started_at`` brought the suite's scores up to date (all of them
    when ``full``) under ``scores_key``."""
    defaults = {"scores_key": scores_key, "last_started_at": started_at}
    if full:
        defaults["last_full_at"] = started_at
    state, created = RefitState.objects.update_or_create(
        suite=suite, defaults=defaults, create_defaults={**defaults, "last_full_at": started_at},
    )
    return state
