"""Faults on real processes (issue #15): a worker SIGKILLed while it stores a checkpoint's files, the database
ending every worker connection mid-job and mid-training, a disk that fills during validation. Each scenario
asserts what a user must be able to rely on: every result exactly once, nothing left in a running or
validating state, and a reason on every failure."""

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from frontier_processes import wait_for

from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.jobs.services import job_submit
from webapp.registry.models import BenchmarkResult, Checkpoint, CheckpointStatus, EvaluationRun

pytestmark = pytest.mark.integration


def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("ends PostgreSQL backends (pg_terminate_backend)")


def terminate_worker_connections() -> int:
    """End every other connection to this test's database, as a PostgreSQL restart or failover does."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice")


def register_by_path(client, path: Path) -> int:
    response = client.post("/api/v1/checkpoints/", {"name": "by path", "reference": {"path": str(path)}, "suites": []},
                           format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def decided(checkpoint_id: int) -> bool:
    return Checkpoint.objects.get(pk=checkpoint_id).status in (CheckpointStatus.READY, CheckpointStatus.REJECTED)


def test_a_worker_killed_while_storing_the_weights_leaves_no_truncated_checkpoint(
    start_worker, process_env, local_media, shared_root, alice, client_for
):
    """Row 1: the retry saved beside the half-written model.safetensors and the checkpoint became ready with
    the truncated weights. Now the next attempt clears what the dead one wrote and verifies every stored file
    against the validation report before the checkpoint is ready."""
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(shared_root / "big", llm_hidden=512, llm_layers=16)
    weights = folder / "model.safetensors"
    env = {**process_env, "MEDIA_ROOT": str(local_media), "FRONTIER_REFERENCE_ROOTS": str(shared_root),
           "HF_HUB_OFFLINE": "1"}
    first = start_worker("cpu1", queues="cpu", env=env)
    checkpoint_id = register_by_path(client_for(alice), folder)

    stored = local_media / "checkpoints" / str(checkpoint_id) / "files" / "model.safetensors"
    deadline, size = time.monotonic() + 120, 0
    while time.monotonic() < deadline:  # SIGKILL the worker while the weights are half written
        try:
            size = stored.stat().st_size
        except FileNotFoundError:
            size = 0
        if 0 < size < weights.stat().st_size:
            first.kill()
            break
        assert not decided(checkpoint_id), "validation ended before the copy could be interrupted"
        time.sleep(0.0005)
    assert 0 < stored.stat().st_size < weights.stat().st_size, "the kill did not land mid-copy"

    start_worker("cpu2", queues="cpu", env=env, beat=True)
    wait_for(lambda: decided(checkpoint_id), timeout=120, message="the validation to be taken over and decide")

    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    assert checkpoint.status == CheckpointStatus.READY, checkpoint.rejection_reason
    names = sorted(path.name for path in stored.parent.iterdir())
    assert names == sorted(path.name for path in folder.iterdir()), names  # nothing saved beside a leftover
    assert sha256(stored) == sha256(weights) == checkpoint.validation_report["file_sha256"]["model.safetensors"]
    job = Job.objects.get(task_name="workers.tasks.validate_checkpoint")
    assert [a.outcome for a in job.attempts.all()] == [AttemptOutcome.LOST, AttemptOutcome.SUCCEEDED]


def test_database_connections_ended_mid_job_do_not_run_it_twice(start_worker, process_env):
    """Row 2: after a PostgreSQL restart the heartbeat kept its dead connection; the reaper re-queued the job
    while its first attempt went on, and the work ran twice."""
    postgres_only()
    # A 6 s lease: a heartbeat that never reconnects loses it mid-job (and the job runs twice), one that does
    # renews well within the lease less two beats, however slow the machine.
    env = {**process_env, "FRONTIER_JOB_LEASE_SECONDS": "6"}
    start_worker("w1", env=env)
    start_worker("w2", env=env, beat=True)  # one runs the job; the other's reaper takes over a lease left to expire
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", params={"seconds": 14})
    wait_for(lambda: Job.objects.filter(pk=job.pk, state=JobState.RUNNING, progress_done__gte=1).exists(),
             timeout=60, message="the job to run")

    ended = 0
    for _ in range(4):  # four blips, each longer than a heartbeat
        ended += terminate_worker_connections()
        time.sleep(1.0)
    assert ended >= 1  # the blips reached the worker's connections

    wait_for(lambda: Job.objects.get(pk=job.pk).is_terminal, timeout=90, message="the job to end")
    job.refresh_from_db()
    attempts = list(job.attempts.all())
    assert job.state == JobState.SUCCEEDED, job.error
    assert [a.outcome for a in attempts] == [AttemptOutcome.SUCCEEDED], [a.error_message for a in attempts]


TINY_RUN = {
    "name": "tiny avgpool V=4 under database blips",
    "base": {"tiny": {"llm_hidden": 32, "llm_layers": 1}},
    "compressor": "avgpool",
    "tokens": 4,
    "stage": 2,
    "dataset": {"kind": "synthetic-shapes", "count": 64},
    "hyperparameters": {"batch_size": 4, "max_steps": 2500, "learning_rate": 5e-3, "warmup_steps": 3, "save_every": 250},
    "suites": ["synthetic"],
    "eval_limit": 4,
}


def test_two_trainers_and_database_blips_register_one_checkpoint_and_record_each_result_once(
    start_worker, process_env, local_media, settings, tmp_path, alice, client_for
):
    """Row 2: with two trainers and a PostgreSQL restart, both trained one run in one folder, both registered
    its checkpoint, and it ended with 3 result rows per benchmark."""
    from webapp.training.models import TrainingRun

    postgres_only()
    settings.FRONTIER_TRAINING_DIR = tmp_path / "training"
    env = {**process_env, "MEDIA_ROOT": str(local_media), "FRONTIER_TRAINING_DIR": str(settings.FRONTIER_TRAINING_DIR),
           "FRONTIER_FIT_BOOTSTRAP_RESAMPLES": "20"}
    start_worker("t1", queues="gpu-train,gpu-eval,cpu", env=env, beat=True)
    start_worker("t2", queues="gpu-train,gpu-eval,cpu", env=env)
    response = client_for(alice).post("/api/v1/trainings/", TINY_RUN, format="json")
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    wait_for(lambda: Job.objects.get(pk=run.job_id).progress_done >= 2 or Job.objects.get(pk=run.job_id).is_terminal,
             timeout=120, message="the training to run")

    blips = 0
    while not Job.objects.get(pk=run.job_id).is_terminal and blips < 8:
        terminate_worker_connections()
        blips += 1
        time.sleep(0.5)

    wait_for(lambda: Job.objects.get(pk=run.job_id).is_terminal, timeout=300, message="the training to end")
    job = Job.objects.get(pk=run.job_id)
    assert job.state == JobState.SUCCEEDED, job.error
    assert blips >= 3, "the training ended before the database blips"
    checkpoints = list(Checkpoint.objects.filter(training_run=run))
    assert len(checkpoints) == 1 and checkpoints[0].status == CheckpointStatus.READY
    def evaluations():
        return list(Job.objects.filter(benchmark_job__run__checkpoint=checkpoints[0]))

    wait_for(lambda: evaluations() and all(j.is_terminal for j in evaluations()), timeout=180,
             message="its evaluations to end")
    assert EvaluationRun.objects.filter(checkpoint=checkpoints[0]).count() == 1
    assert all(j.state == JobState.SUCCEEDED for j in evaluations()), [(j.state, j.error) for j in evaluations()]
    results = BenchmarkResult.objects.filter(run__checkpoint=checkpoints[0])
    keys = list(results.values_list("benchmark_id", "metric"))
    assert keys and len(keys) == len(set(keys))
    assert not Job.objects.filter(failure_class="internal_error").exists()


@pytest.fixture
def small_media(tmp_path):
    """A 256 KiB tmpfs for the checkpoint storage (needs root; skipped otherwise)."""
    mount = tmp_path / "small-media"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=262144", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_disk_that_fills_during_validation_is_retried_and_ends_rejected_with_the_reason(
    start_worker, process_env, small_media, shared_root, alice, client_for
):
    """Row 4: the job failed as internal_error with no retry and the checkpoint stayed `validating`."""
    from evaluation.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(shared_root / "tiny", compressor="avgpool", tokens=4)
    assert sum(p.stat().st_size for p in folder.iterdir()) > 262144
    env = {**process_env, "MEDIA_ROOT": str(small_media), "FRONTIER_REFERENCE_ROOTS": str(shared_root),
           "HF_HUB_OFFLINE": "1", "FRONTIER_JOB_MAX_PLATFORM_FAILURES": "2"}
    start_worker("cpu", queues="cpu", env=env, beat=True)
    checkpoint_id = register_by_path(client_for(alice), folder)

    wait_for(lambda: decided(checkpoint_id), timeout=120, message="validation to decide")
    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    job = Job.objects.get(task_name="workers.tasks.validate_checkpoint")
    assert checkpoint.status == CheckpointStatus.REJECTED
    assert "No space left on device" in checkpoint.rejection_reason and "Upload it again" in checkpoint.rejection_reason
    assert job.state == JobState.FAILED and job.failure_class == "storage_error"
    assert [a.failure_class for a in job.attempts.all()] == ["storage_error", "storage_error"]
    assert not any(path.is_file() for path in small_media.rglob("*")), "half-stored files were left behind"
    assert os.statvfs(small_media).f_bfree > 0


def test_the_cli_says_the_server_is_out_of_space_at_once_and_nothing_half_written_stays(
    start_web, small_media, tmp_path, alice
):
    """Row 5: chunked uploads gave up after ~31 s with "the server answered 500"."""
    import sys

    from evaluation.tiny import make_tiny_checkpoint
    from webapp.accounts.services import api_token_create

    folder = make_tiny_checkpoint(tmp_path / "tiny", compressor="avgpool", tokens=4)
    _, token = api_token_create(user=alice)
    url = start_web({"MEDIA_ROOT": str(small_media / "media"), "FRONTIER_VAR_DIR": str(small_media)})
    env = {**os.environ, "FRONTIER_URL": url, "FRONTIER_TOKEN": token}

    done = subprocess.run([sys.executable, "-m", "webapp.client", "submit", str(folder), "--name", "too big"],
                          env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1, done.stderr
    assert "error: the server is out of disk space (507): The server is out of disk space" in done.stderr
    assert "Run the same command again once its operators have freed space" in done.stderr
    assert "tries in a row" not in done.stderr, done.stderr  # no retries against a full disk
    assert not Checkpoint.objects.exists()
    parts = list((small_media / "uploads").glob("*.part"))
    assert all(path.stat().st_size < 262144 for path in parts)
