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
    assert 0.0650 <= fit.params["alpha"] <= 0.0700 and fit.method["n_convention"] == "counted"  # counted N
    low, high = fit.intervals["V*(Q=50)"]
    assert 11 <= low <= fit.decisions["V*(Q=50)"] <= high <= 18
    statuses = {(f["suite"], f["scope"], f["law"]): f["status"] for f in refit.result["fits"]}
    assert statuses[("reasoning", "all", "multiplicative")] == "fitted"
    assert Job.objects.filter(task_name=REFIT_TASK).count() == 1


def test_checkpoints_that_all_score_zero_end_the_refit_as_cannot_fit_not_a_failure(start_worker):
    """The `make run` demo case: every checkpoint at 0 %, two compressors at the same (N, V)."""
    from webapp.leaderboard.services import benchmark_results_record
    from webapp.registry.models import (
        Benchmark,
        BenchmarkSuite,
        Checkpoint,
        CheckpointStatus,
        Compressor,
        EvaluationRun,
        LanguageModel,
    )

    start_worker("w1", queues="cpu")
    suite = BenchmarkSuite.objects.get(name="synthetic")
    for method in ("avgpool", "quecc"):
        compressor = Compressor.objects.create(method=method, version="1")
        for n_params in (1_000_000, 4_000_000, 16_000_000):
            llm, _ = LanguageModel.objects.get_or_create(name=f"tiny-{n_params}", n_params=n_params,
                                                         defaults={"family": "tiny"})
            for tokens in (1, 4, 16, 64):
                checkpoint = Checkpoint.objects.create(
                    name=f"{method}-{n_params}-{tokens}", llm=llm, compressor=compressor, visual_tokens=tokens,
                    status=CheckpointStatus.READY, visibility="public")
                run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite)
                for benchmark in Benchmark.objects.filter(suite=suite):
                    benchmark_results_record(run=run, benchmark=benchmark, raw={}, stamp={},
                                             metrics=[{"metric": "exact_match", "value": 0.0, "n": 48}])

    def refits_done():
        jobs = Job.objects.filter(task_name=REFIT_TASK)
        return jobs.exists() and all(job.is_terminal for job in jobs)

    wait_for(refits_done, timeout=120, message="the refit jobs to end")
    refits = list(Job.objects.filter(task_name=REFIT_TASK).order_by("id"))
    assert all(job.state == JobState.SUCCEEDED for job in refits), [(job.failure_class, job.error) for job in refits]
    rows = ScalingLawFit.objects.filter(suite=suite, scope="all", law="multiplicative")
    assert {row.status for row in rows} == {"cannot_fit"}
    assert rows.latest("id").n_points == 24 and "same error (1.000: every one scored 0 %)" in rows.latest("id").reason
    outcomes = {(f["suite"], f["scope"], f["law"]): f for f in refits[-1].result["fits"]}
    assert outcomes[("synthetic", "all", "multiplicative")]["status"] in ("cannot_fit", "unchanged")
