"""A tiny checkpoint evaluated on the synthetic suite by a real worker on the gpu-eval queue:
results, raw harness JSON and stamp stored; suite score computed; refit ran."""

import pytest
from django.core.files.storage import default_storage
from frontier_processes import wait_for

from webapp.fits.services import REFIT_TASK
from webapp.jobs.models import Job, JobState
from webapp.registry.models import (
    BenchmarkResult,
    BenchmarkSuite,
    Checkpoint,
    CheckpointStatus,
    Compressor,
    HarnessOutput,
    LanguageModel,
    SuiteScore,
)
from webapp.registry.services import run_start

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_checkpoint(local_media):
    from evaluation.tiny import make_tiny_checkpoint

    media = local_media
    make_tiny_checkpoint(media / "checkpoints" / "tiny-avgpool-4", compressor="avgpool", tokens=4, seed=0)
    llm = LanguageModel.objects.create(family="tiny-qwen2", name="tiny-qwen2", n_params=123_456)
    return Checkpoint.objects.create(
        name="tiny avgpool V=4", llm=llm, compressor=Compressor.objects.create(method="avgpool"),
        visual_tokens=4, status=CheckpointStatus.READY, files_prefix="checkpoints/tiny-avgpool-4",
    ), media


def test_a_checkpoint_is_evaluated_on_the_synthetic_suite_end_to_end(start_worker, process_env, tiny_checkpoint):
    checkpoint, media = tiny_checkpoint
    assert default_storage.exists("checkpoints/tiny-avgpool-4/config.json")
    start_worker("gpu", queues="gpu-eval,cpu", env={**process_env, "MEDIA_ROOT": str(media)})

    run = run_start(checkpoint=checkpoint, suite=BenchmarkSuite.objects.get(name="synthetic"), limit=8)

    jobs = [link.job for link in run.benchmark_jobs.all()]
    assert len(jobs) == 2
    wait_for(lambda: all(Job.objects.get(pk=j.pk).is_terminal for j in jobs), timeout=300, message="both benchmarks")
    for job in jobs:
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, f"{job.error}\n{job.attempts.last().log_tail[-2000:]}"
        assert job.progress_done == job.progress_total == 8
    results = {(r.benchmark.key, r.metric): r for r in BenchmarkResult.objects.filter(run=run)}
    assert {("shapes", "exact_match"), ("glyphs", "exact_match")} <= set(results)
    assert all(0.0 <= r.value <= 1.0 and r.n == 8 for r in results.values())
    output = HarnessOutput.objects.get(run=run, benchmark__key="shapes")
    assert "shapes" in output.raw["results"]
    stamp = output.stamp
    assert stamp["visual_tokens"] == 4 and stamp["flops_formula_version"] == "v2"
    assert stamp["device"] == "cpu" and stamp["dtype"] == "float32" and stamp["lmms_eval_version"]
    assert stamp["latency"]["median_time_to_first_token_s"] > 0
    # Latency is measured once per (checkpoint, device, dtype): the second benchmark reuses the first's.
    first, second = HarnessOutput.objects.filter(run=run).order_by("pk")
    assert "reused_from" not in first.stamp["latency"] and len(first.stamp["latency"]["samples"]) == 3
    assert second.stamp["latency"] == {**first.stamp["latency"], "reused_from": first.pk}

    refit = Job.objects.filter(task_name=REFIT_TASK).order_by("-id").first()
    wait_for(lambda: Job.objects.get(pk=refit.pk).is_terminal, timeout=120, message="the refit")
    score = SuiteScore.objects.get(checkpoint=checkpoint, suite__name="synthetic")
    shapes, glyphs = results[("shapes", "exact_match")].value, results[("glyphs", "exact_match")].value
    assert score.error == pytest.approx(1 - (shapes + glyphs) / 2)


def test_a_checkpoint_broken_after_it_was_accepted_fails_as_load_error_with_a_log_tail(
    start_worker, process_env, tiny_checkpoint, client_for
):
    from django.contrib.auth import get_user_model

    checkpoint, media = tiny_checkpoint
    checkpoint.owner = get_user_model().objects.create_user("bob")
    checkpoint.save(update_fields=["owner"])
    default_storage.delete("checkpoints/tiny-avgpool-4/config.json")
    start_worker("gpu", queues="gpu-eval", env={**process_env, "MEDIA_ROOT": str(media)})

    run = run_start(checkpoint=checkpoint, suite=BenchmarkSuite.objects.get(name="synthetic"), limit=4)

    jobs = [link.job for link in run.benchmark_jobs.all()]
    wait_for(lambda: all(Job.objects.get(pk=j.pk).is_terminal for j in jobs), timeout=120, message="both benchmarks")
    for job in jobs:
        job.refresh_from_db()
        assert (job.state, job.failure_class, job.attempt_count) == (JobState.FAILED, "load_error", 1)
        assert job.error.startswith("CheckpointLoadError: cannot load checkpoint")
        assert "failed (load_error)" in job.attempts.get().log_tail
    detail = client_for(checkpoint.owner).get(f"/api/v1/evaluations/{run.pk}/").json()
    for row in detail["benchmarks"]:
        assert row["state"] == "failed" and row["failure_class"] == "load_error"
        [attempt] = row["attempts"]
        assert attempt["failure_class"] == "load_error" and "CheckpointLoadError" in attempt["log_tail"]
    assert not BenchmarkResult.objects.filter(run=run).exists()
