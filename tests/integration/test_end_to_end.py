"""The whole path through one real worker process and the broker: a tiny checkpoint uploaded through
the REST API is validated (cpu queue), becomes ready, is evaluated on the synthetic suite
(gpu-eval queue), its results and stamp land in the database, and the refit scores it."""


import pytest
from django.contrib.auth import get_user_model
from frontier_processes import archive_of, wait_for

from webapp.fits.services import REFIT_TASK
from webapp.jobs.models import Job, JobState
from webapp.registry.models import BenchmarkResult, Checkpoint, CheckpointStatus, HarnessOutput, SuiteScore

pytestmark = pytest.mark.integration

ITEMS = 8


def checkpoint_status(checkpoint_id: int) -> str:
    return Checkpoint.objects.get(pk=checkpoint_id).status


def refit_settled() -> bool:
    """A refit succeeded and none is waiting or running (results requested it as they landed)."""
    refits = Job.objects.filter(task_name=REFIT_TASK)
    return refits.filter(state=JobState.SUCCEEDED).exists() and not refits.filter(
        state__in=[JobState.QUEUED, JobState.RUNNING]
    ).exists()


def test_an_uploaded_checkpoint_is_validated_evaluated_stored_and_refitted(
    start_worker, process_env, local_media, tmp_path, client_for
):
    from evaluation.tiny import make_tiny_checkpoint
    from workers.celery_app import app

    folder = make_tiny_checkpoint(tmp_path / "tiny", compressor="quecc", tokens=4, seed=0)
    worker = start_worker(
        "e2e", queues="cpu,gpu-eval",
        env={**process_env, "MEDIA_ROOT": str(local_media), "FRONTIER_AUTO_EVAL_LIMIT": str(ITEMS)},
    )
    client = client_for(get_user_model().objects.create_user("alice"))

    response = client.post(
        "/api/v1/checkpoints/",
        {"file": archive_of(folder), "name": "tiny quecc V=4", "visibility": "public", "suites": ["synthetic"]},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    checkpoint_id = response.json()["id"]
    wait_for(
        lambda: checkpoint_status(checkpoint_id) in (CheckpointStatus.READY, CheckpointStatus.REJECTED),
        timeout=90, message="validation",
    )
    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    assert checkpoint.status == CheckpointStatus.READY, checkpoint.rejection_reason
    run = checkpoint.runs.get()  # queued by the worker when the checkpoint became ready
    assert (run.suite.name, run.limit, run.created_by.username) == ("synthetic", ITEMS, "alice")
    jobs = [link.job for link in run.benchmark_jobs.all()]
    wait_for(lambda: all(Job.objects.get(pk=job.pk).is_terminal for job in jobs), timeout=150, message="evaluation")

    detail = client.get(f"/api/v1/evaluations/{run.pk}/").json()
    assert detail["status"]["state"] == "succeeded", detail
    assert {row["benchmark"]: row["failure_class"] for row in detail["benchmarks"]} == {"shapes": "", "glyphs": ""}
    results = {row.benchmark.key: row for row in BenchmarkResult.objects.filter(run=run, metric="exact_match")}
    assert set(results) == {"shapes", "glyphs"}
    assert all(0.0 <= row.value <= 1.0 and row.n == ITEMS for row in results.values())
    stamp = HarnessOutput.objects.get(run=run, benchmark__key="shapes").stamp
    assert stamp["model_args"]["compressor"] == "quecc" and stamp["visual_tokens"] == 4
    assert stamp["llm_params"] == checkpoint.llm.n_params and stamp["model_args"]["limit"] == ITEMS
    assert stamp["synthetic_suite"]["seed"] == 0 and stamp["lmms_eval_version"] and stamp["torch_version"]

    wait_for(refit_settled, timeout=90, message="the refit")
    score = SuiteScore.objects.get(checkpoint=checkpoint, suite__name="synthetic")
    assert score.n_benchmarks == 2
    assert score.error == pytest.approx(1 - (results["shapes"].value + results["glyphs"].value) / 2)
    refit = Job.objects.filter(task_name=REFIT_TASK, state=JobState.SUCCEEDED).order_by("-id").first()
    synthetic_fits = [fit for fit in refit.result["fits"] if fit["suite"] == "synthetic"]
    assert synthetic_fits and all(fit["n_points"] == 1 for fit in synthetic_fits)  # this (public) checkpoint

    shapes_job = run.benchmark_jobs.get(benchmark__key="shapes").job
    app.send_task(shapes_job.task_name, args=[shapes_job.pk])  # a duplicate delivery
    wait_for(
        lambda: f"Job {shapes_job.pk} is already succeeded; message dropped" in worker.output(),
        timeout=30, message="the duplicate to be dropped",
    )
    assert BenchmarkResult.objects.filter(run=run).count() == len(results)
    assert shapes_job.attempts.count() == 1
