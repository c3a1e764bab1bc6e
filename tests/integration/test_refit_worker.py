"""Results landing trigger one refit on the cpu queue, run by a real worker process."""

import io

import pytest
from django.core.management import call_command
from frontier_processes import wait_for

from webapp.fits.models import ScalingLawFit
from webapp.fits.services import REFIT_TASK
from webapp.jobs.models import Job, JobState

pytestmark = pytest.mark.integration


def test_loading_published_results_refits_through_the_worker(start_worker):
    start_worker("w1", queues="cpu")

    call_command("load_published", stdout=io.StringIO())

    refit = Job.objects.get(task_name=REFIT_TASK)
    wait_for(lambda: Job.objects.get(pk=refit.pk).is_terminal, timeout=90, message="the refit job to end")
    refit.refresh_from_db()
    assert refit.state == JobState.SUCCEEDED, refit.error
    fit = ScalingLawFit.objects.get(suite__name="reasoning", scope="all", law="multiplicative", query_tokens=50)
    assert 0.0685 <= fit.params["alpha"] <= 0.0734
    low, high = fit.intervals["V*(Q=50)"]
    assert 11 <= low <= fit.decisions["V*(Q=50)"] <= high <= 17
    statuses = {(f["suite"], f["scope"], f["law"]): f["status"] for f in refit.result["fits"]}
    assert statuses[("reasoning", "all", "multiplicative")] == "fitted"
    assert Job.objects.filter(task_name=REFIT_TASK).count() == 1
