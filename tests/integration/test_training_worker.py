"""Compressor training through real worker processes on the real broker: a tiny run that learns and
lands on the leaderboard data, a SIGKILLed run that resumes from its last save, and a 2 x 2 x 2 sweep."""

import pytest
from django.contrib.auth import get_user_model
from frontier_processes import wait_for

from evaluation.training import latest_state
from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.registry.models import BenchmarkResult, Checkpoint, CheckpointStatus, EvaluationRun, SuiteScore
from webapp.training.models import TrainingLoss, TrainingRun
from webapp.training.services import sweep_create, training_run_start

pytestmark = pytest.mark.integration

TINY_RUN = {
    "name": "tiny avgpool V=4",
    "base": {"tiny": {"llm_hidden": 32, "llm_layers": 1}},
    "compressor": "avgpool",
    "tokens": 4,
    "stage": 2,
    "dataset": {"kind": "synthetic-shapes", "count": 64},
    "hyperparameters": {"batch_size": 4, "max_steps": 30, "learning_rate": 5e-3, "warmup_steps": 3},
    "suites": ["synthetic"],
    "eval_limit": 4,
}


@pytest.fixture
def worker_env(process_env, local_media, settings, tmp_path):
    """Workers store files in the test's media folder and keep training state under tmp_path."""
    settings.FRONTIER_TRAINING_DIR = tmp_path / "training"
    return {
        **process_env,
        "MEDIA_ROOT": str(local_media),
        "FRONTIER_TRAINING_DIR": str(settings.FRONTIER_TRAINING_DIR),
        "FRONTIER_FIT_BOOTSTRAP_RESAMPLES": "20",
    }


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice")


def job_of(run: TrainingRun) -> Job:
    return Job.objects.get(pk=run.job_id)


def wait_for_job(run: TrainingRun, timeout: float) -> Job:
    wait_for(lambda: job_of(run).is_terminal, timeout=timeout, message=f"training {run.pk} to end")
    job = job_of(run)
    assert job.state == JobState.SUCCEEDED, f"{job.error}\n{job.attempts.last().log_tail[-3000:]}"
    return job


def loss_steps(run: TrainingRun) -> list[int]:
    return list(TrainingLoss.objects.filter(run=run).order_by("step").values_list("step", flat=True))


def evaluations_done(checkpoint: Checkpoint) -> bool:
    jobs = Job.objects.filter(benchmark_job__run__checkpoint=checkpoint)
    return jobs.exists() and all(job.is_terminal for job in jobs)


def test_a_tiny_run_learns_registers_one_checkpoint_and_is_evaluated(start_worker, worker_env, alice, client_for,
                                                                     local_media, settings):
    start_worker("w1", queues="gpu-train,cpu,gpu-eval", env=worker_env)

    response = client_for(alice).post("/api/v1/trainings/", TINY_RUN, format="json")
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    job = wait_for_job(run, timeout=300)

    losses = list(TrainingLoss.objects.filter(run=run).order_by("step").values_list("loss", flat=True))
    assert loss_steps(run) == list(range(1, 31)) and job.result["steps"] == 30
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
    assert job.result["resumed_from_step"] == 0 and job.progress_done == job.progress_total == 30
    checkpoint = Checkpoint.objects.get(training_run=run)
    assert Checkpoint.objects.filter(training_run__isnull=False).count() == 1
    assert checkpoint.status == CheckpointStatus.READY and checkpoint.owner == alice
    assert (checkpoint.compressor.method, checkpoint.visual_tokens, checkpoint.name) == ("avgpool", 4, run.name)
    assert checkpoint.validation_report["checkpoint_sha256"] == checkpoint.sha256
    stored = {path.name for path in (local_media / "checkpoints" / str(checkpoint.pk) / "files").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "training_config.json"} <= stored
    assert not (settings.FRONTIER_TRAINING_DIR / str(run.pk)).exists()

    evaluation = EvaluationRun.objects.get(checkpoint=checkpoint)
    assert evaluation.suite.name == "synthetic" and evaluation.limit == 4
    wait_for(lambda: evaluations_done(checkpoint), timeout=240, message="the evaluations of the trained checkpoint")
    results = BenchmarkResult.objects.filter(run=evaluation, metric="exact_match")
    assert {result.benchmark.key for result in results} == {"shapes", "glyphs"} and all(r.n == 4 for r in results)
    wait_for(lambda: SuiteScore.objects.filter(checkpoint=checkpoint, suite__name="synthetic").exists(),
             timeout=120, message="the refit to score the trained checkpoint")

    detail = client_for(alice).get(f"/api/v1/trainings/{run.pk}/").json()
    assert detail["state"] == "succeeded" and detail["checkpoint"]["status"] == "ready"
    assert detail["checkpoint"]["url"].endswith(f"/api/v1/checkpoints/{checkpoint.pk}/")
    assert detail["losses"]["steps"] == list(range(1, 31)) and detail["eta_seconds"] is None


def test_a_killed_worker_s_run_resumes_from_its_last_save(start_worker, worker_env, alice, settings):
    first = start_worker("w1", queues="gpu-train,cpu,gpu-eval", env=worker_env)
    spec = {
        **TINY_RUN, "name": "resumed", "suites": [],
        "hyperparameters": {**TINY_RUN["hyperparameters"], "max_steps": 40, "save_every": 5},
    }
    run = training_run_start(alice, spec)
    state_dir = settings.FRONTIER_TRAINING_DIR / str(run.pk)
    wait_for(lambda: latest_state(state_dir) is not None, timeout=180, message="the first saved state")

    first.kill()  # SIGKILL the worker and its pool child mid-training
    saved_step = int(latest_state(state_dir).name.removeprefix("step-"))
    assert 0 < saved_step < 40 and job_of(run).state == JobState.RUNNING
    start_worker("w2", queues="gpu-train,cpu,gpu-eval", beat=True, env=worker_env)  # beat runs the reaper
    job = wait_for_job(run, timeout=240)

    attempts = list(job.attempts.all())
    assert [attempt.outcome for attempt in attempts] == [AttemptOutcome.LOST, AttemptOutcome.SUCCEEDED]
    resumed = job.result["resumed_from_step"]
    assert resumed >= saved_step and resumed % 5 == 0 and resumed < 40, (resumed, saved_step)
    assert f"resuming from saved state step-{resumed:06d}" in attempts[1].log_tail
    assert job.result["steps"] == 40 and loss_steps(run) == list(range(1, 41))
    run.refresh_from_db()
    assert run.resumed_from_step == resumed and run.steps_done == run.steps_total == 40
    assert Checkpoint.objects.filter(training_run=run).count() == 1
    assert Checkpoint.objects.get(training_run=run).status == CheckpointStatus.READY


def test_a_two_by_two_by_two_sweep_reaches_the_leaderboard_data(start_worker, worker_env, alice, client_for):
    start_worker("w1", queues="gpu-train,cpu,gpu-eval", env=worker_env)
    sweep = sweep_create(alice, {
        "name": "tiny grid",
        "bases": [{"tiny": {"llm_hidden": 16, "llm_layers": 1}}, {"tiny": {"llm_hidden": 32, "llm_layers": 1}}],
        "compressors": ["avgpool", "quecc"],
        "tokens": [1, 4],
        "stage": 1,
        "dataset": {"kind": "synthetic-shapes", "count": 8},
        "hyperparameters": {"batch_size": 2, "max_steps": 2},
        "suites": ["synthetic"],
        "eval_limit": 2,
    })
    runs = list(sweep.runs.order_by("pk"))
    assert len(runs) == 8

    for run in runs:
        wait_for_job(run, timeout=300)
    checkpoints = [Checkpoint.objects.get(training_run=run) for run in runs]
    wait_for(lambda: all(evaluations_done(checkpoint) for checkpoint in checkpoints), timeout=300,
             message="the evaluations of all eight checkpoints")
    for checkpoint in checkpoints:
        keys = set(BenchmarkResult.objects.filter(run__checkpoint=checkpoint).values_list("benchmark__key", flat=True))
        assert keys == {"shapes", "glyphs"}, checkpoint
    assert {(c.llm.hidden_size, c.compressor.method, c.visual_tokens) for c in checkpoints} == {
        (h, m, v) for h in (16, 32) for m in ("avgpool", "quecc") for v in (1, 4)
    }
    wait_for(lambda: SuiteScore.objects.filter(checkpoint__in=checkpoints, suite__name="synthetic").count() == 8,
             timeout=180, message="suite scores of all eight checkpoints")

    points = client_for(alice).get(f"/api/v1/sweeps/{sweep.pk}/").json()["points"]
    assert len(points) == 8
    assert all(p["state"] == "succeeded" and p["checkpoint"]["status"] == "ready" for p in points)
    assert all(set(p["suite_errors"]) == {"synthetic"} for p in points)


def test_cancel_stops_a_running_training_within_seconds(start_worker, worker_env, alice, client_for, settings):
    start_worker("w1", queues="gpu-train,cpu,gpu-eval", env=worker_env)
    spec = {**TINY_RUN, "name": "cancelled", "suites": [],
            "hyperparameters": {**TINY_RUN["hyperparameters"], "max_steps": 2000, "save_every": 1000}}
    run = training_run_start(alice, spec)
    wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, steps_done__gte=2, eta_at__isnull=False).exists(),
             timeout=180, message="training to progress")
    live = client_for(alice).get(f"/api/v1/trainings/{run.pk}/").json()
    assert live["state"] == "running" and live["steps_total"] == 2000 and 0 < live["progress"] < 1
    assert live["eta_seconds"] > 0 and live["losses"]["steps"] == list(range(1, live["losses"]["last_step"] + 1))

    response = client_for(alice).post(f"/api/v1/trainings/{run.pk}/cancel/")
    assert response.status_code == 202, response.json()
    wait_for(lambda: job_of(run).is_terminal, timeout=15, message="the training to stop")

    job = job_of(run)
    assert job.state == JobState.CANCELLED and job.attempts.get().outcome == AttemptOutcome.CANCELLED
    state = latest_state(settings.FRONTIER_TRAINING_DIR / str(run.pk))  # saved before stopping: resumable
    assert state is not None and 2 <= int(state.name.removeprefix("step-")) < 2000
    assert not Checkpoint.objects.filter(training_run=run).exists()
