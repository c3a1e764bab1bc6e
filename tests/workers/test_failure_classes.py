"""Failure classes and transient retries: the real runner around handlers that raise each kind of
error, and the evaluation glue on real tiny checkpoints (in-process, embedded database)."""

import socket
from datetime import timedelta
from types import SimpleNamespace

import pytest
from botocore.config import Config
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from evaluation.errors import CheckpointLoadError, DatasetUnavailable, HarnessError
from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.jobs.services import job_claim, job_submit, jobs_reap
from webapp.registry.models import BenchmarkResult, BenchmarkSuite, Checkpoint, CheckpointStatus, HarnessOutput
from webapp.registry.services import run_start
from workers.evaluate import evaluate_benchmark_job
from workers.runner import TransientJobError, execute_job

pytestmark = pytest.mark.django_db(transaction=True)

TASK = SimpleNamespace(request=SimpleNamespace(id="task-1", hostname="w1@test"), soft_time_limit=None)


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


def run(handler, job: Job | None = None, **submit_kwargs) -> Job:
    job = job or job_submit(task_name="workers.tasks.diagnostic_sleep", **submit_kwargs)
    execute_job(TASK, job.pk, handler)
    job.refresh_from_db()
    return job


def raising(error: BaseException):
    def handler(ctx):
        raise error

    return handler


@pytest.mark.parametrize(
    "error, failure_class",
    [
        (CheckpointLoadError("cannot load checkpoint /x: config.json is missing"), "load_error"),
        (HarnessError("unknown task(s): shapez (did you mean shapes?)"), "harness_error"),
        (DatasetUnavailable("gqa", "ConnectionError: offline"), "dataset_unavailable"),
        (ValueError("a bug in a handler"), "internal_error"),
    ],
)
def test_a_permanent_error_fails_the_job_at_once_with_its_class_message_and_log_tail(error, failure_class):
    job = run(raising(error), max_attempts=3)

    attempt = job.attempts.get()
    assert job.state == JobState.FAILED and job.attempt_count == 1
    assert job.failure_class == attempt.failure_class == failure_class
    assert job.error == f"{type(error).__name__}: {error}"
    assert attempt.outcome == AttemptOutcome.FAILED and attempt.error_message == str(error)
    assert f"failed ({failure_class})" in attempt.log_tail and "Traceback" in attempt.log_tail


def test_a_soft_time_limit_is_a_timeout_even_when_a_library_wraps_it():
    def handler(ctx):
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded as error:
            raise HarnessError("lmms-eval failed: SoftTimeLimitExceeded") from error

    job = run(handler)

    assert job.state == JobState.FAILED and job.failure_class == "timeout"
    assert job.error.startswith("Timeout: exceeded its soft time limit")
    assert job.attempts.get().failure_class == "timeout"


def test_a_transient_error_retries_with_new_params_and_keeps_its_class_when_attempts_run_out():
    def handler(ctx):
        batch_size = ctx.params.get("batch_size", 8)
        raise TransientJobError(
            "ran out of memory", failure_class="out_of_memory", params={"batch_size": batch_size // 2}
        )

    job = run(handler, params={"limit": 5}, max_attempts=2)
    assert job.state == JobState.QUEUED and job.failure_class == ""
    assert job.params == {"limit": 5, "batch_size": 4}
    assert job.attempts.get().failure_class == "out_of_memory"

    job = run(handler, job=job)

    assert job.state == JobState.FAILED and job.failure_class == "out_of_memory"
    assert job.params == {"limit": 5, "batch_size": 4}  # a failed job keeps the params of its last attempt
    assert [a.failure_class for a in job.attempts.all()] == ["out_of_memory", "out_of_memory"]


def test_a_job_whose_worker_died_on_its_last_platform_retry_fails_as_worker_lost(settings):
    settings.FRONTIER_JOB_MAX_PLATFORM_FAILURES = 1
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", max_attempts=1)
    job_claim(job.pk, task_id="t", hostname="w1@test", pid=1)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert jobs_reap().ended == [job.pk]

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.failure_class == "worker_lost"
    assert job.attempts.get().failure_class == "worker_lost"


# --- the evaluation glue (workers.evaluate) on real tiny checkpoints ---------------------------


@pytest.fixture
def synthetic_run(local_media):
    """An evaluation run of a ready tiny checkpoint on the synthetic suite; returns (run, media folder)."""
    from evaluation.tiny import make_tiny_checkpoint

    make_tiny_checkpoint(local_media / "checkpoints" / "tiny", compressor="avgpool", tokens=4, seed=0)
    checkpoint = Checkpoint.objects.create(
        name="tiny", status=CheckpointStatus.READY, files_prefix="checkpoints/tiny", visual_tokens=4
    )
    return run_start(checkpoint=checkpoint, suite=BenchmarkSuite.objects.get(name="synthetic"), limit=6)


def benchmark_job(run, key: str) -> Job:
    return run.benchmark_jobs.get(benchmark__key=key).job


def test_a_checkpoint_folder_without_its_config_fails_as_load_error(synthetic_run, local_media):
    (local_media / "checkpoints" / "tiny" / "config.json").unlink()

    job = run(evaluate_benchmark_job, job=benchmark_job(synthetic_run, "shapes"))

    assert job.state == JobState.FAILED and job.failure_class == "load_error" and job.attempt_count == 1
    assert job.error.startswith("CheckpointLoadError: cannot load checkpoint")
    assert "CheckpointLoadError" in job.attempts.get().log_tail


def test_a_device_out_of_memory_is_retried_with_half_the_batch_size(synthetic_run, monkeypatch):
    """The device is simulated: it holds at most 4 sequences; everything else is the real harness."""
    import torch

    from evaluation.harness import FrontierLMM

    real_generate = FrontierLMM._generate

    def generate_on_a_small_device(self, batch):
        if len(batch) > 4:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(batch)} GiB")
        return real_generate(self, batch)

    monkeypatch.setattr(FrontierLMM, "_generate", generate_on_a_small_device)
    job = benchmark_job(synthetic_run, "shapes")
    Job.objects.filter(pk=job.pk).update(params={**job.params, "batch_size": 8})

    job = run(evaluate_benchmark_job, job=job)
    assert job.state == JobState.QUEUED and (job.params["batch_size"], job.params["batch_size_first"]) == (4, 8)
    first = job.attempts.get()
    assert (first.outcome, first.failure_class) == (AttemptOutcome.RETRY, "out_of_memory")
    assert "retrying with batch size 4" in first.error_message

    job = run(evaluate_benchmark_job, job=job)

    assert job.state == JobState.SUCCEEDED, job.error
    assert BenchmarkResult.objects.filter(run=synthetic_run, benchmark__key="shapes").count() == 1
    stamp = HarnessOutput.objects.get(run=synthetic_run, benchmark__key="shapes").stamp
    assert stamp["batch_size"] == 4  # the batch size actually used, and that it changed (#19)
    assert stamp["batch_size_changed"] == {"from": 8, "to": 4, "reason": "out_of_memory"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_object_storage_is_a_transient_storage_error(synthetic_run, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "frontier", "endpoint_url": f"http://127.0.0.1:{closed_port()}",
                "access_key": "key", "secret_key": "secret", "region_name": "us-east-1",
                "client_config": Config(retries={"total_max_attempts": 1}, connect_timeout=2),
            },
        },
    }

    job = run(evaluate_benchmark_job, job=benchmark_job(synthetic_run, "glyphs"))

    attempt = job.attempts.get()
    assert job.state == JobState.QUEUED  # retried with backoff
    assert (attempt.outcome, attempt.failure_class) == (AttemptOutcome.RETRY, "storage_error")
    assert "could not fetch the files of checkpoint" in attempt.error_message
    assert "retrying in 10 s" in job.transitions.last().reason


def test_a_full_disk_during_validation_is_retried_and_leaves_the_checkpoint_rejected_with_the_reason(
    monkeypatch, settings
):
    """ENOSPC is the platform's, not the files': retried as storage_error; when the attempts run out the
    checkpoint is rejected with the reason and what to do, not left `validating` (issue #15 row 4)."""
    import errno

    from webapp.jobs.task_names import VALIDATE
    from workers import validate

    def full_disk(checkpoint, work):
        raise OSError(errno.ENOSPC, "No space left on device", str(work))

    monkeypatch.setattr(validate, "_checkpoint_files", full_disk)
    settings.FRONTIER_JOB_MAX_PLATFORM_FAILURES = 2  # storage is the platform's: its own cap, not max_attempts
    checkpoint = Checkpoint.objects.create(name="c", status=CheckpointStatus.UPLOADED)
    job = job_submit(task_name=VALIDATE.name, params={"checkpoint_id": checkpoint.pk}, max_attempts=1)

    job = run(validate.validate_checkpoint_job, job=job)
    checkpoint.refresh_from_db()
    assert job.state == JobState.QUEUED and job.attempts.get().failure_class == "storage_error"
    assert checkpoint.status == CheckpointStatus.VALIDATING  # the next attempt starts over

    job = run(validate.validate_checkpoint_job, job=job)
    checkpoint.refresh_from_db()
    assert job.state == JobState.FAILED and job.failure_class == "storage_error"
    assert checkpoint.status == CheckpointStatus.REJECTED
    assert checkpoint.rejection_reason.startswith("Validation could not finish, for a reason on our side")
    assert "No space left on device" in checkpoint.rejection_reason and "Upload it again" in checkpoint.rejection_reason


def test_a_validation_whose_workers_kept_dying_leaves_the_checkpoint_rejected_not_validating(settings):
    from webapp.jobs.task_names import VALIDATE

    settings.FRONTIER_JOB_MAX_PLATFORM_FAILURES = 1

    checkpoint = Checkpoint.objects.create(name="c", status=CheckpointStatus.VALIDATING)
    job = job_submit(task_name=VALIDATE.name, params={"checkpoint_id": checkpoint.pk}, max_attempts=1)
    job_claim(job.pk, task_id="t", hostname="w1@test", pid=1)
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert jobs_reap().ended == [job.pk]
    checkpoint.refresh_from_db()
    assert checkpoint.status == CheckpointStatus.REJECTED and "on our side" in checkpoint.rejection_reason


def test_a_killed_validations_extraction_folder_is_removed_by_the_next_attempt_or_the_reaper(settings, tmp_path):
    """A worker SIGKILLed while extracting leaves var/tmp/validate-job-<id> behind (1.3 GB after two kills,
    issue #15 row 6): the job's next attempt starts by removing it, the reaper removes those of ended jobs."""
    from webapp.jobs.task_names import VALIDATE
    from workers.tasks import reap_jobs
    from workers.validate import validate_checkpoint_job, work_folder

    settings.VAR_DIR = tmp_path
    checkpoint = Checkpoint.objects.create(name="c", status=CheckpointStatus.UPLOADED, files_prefix="nowhere.tar.gz")
    retried = job_submit(task_name=VALIDATE.name, params={"checkpoint_id": checkpoint.pk}, max_attempts=3)
    leftover = work_folder(retried.pk) / "extracted" / "model.safetensors"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half an archive")
    run(validate_checkpoint_job, job=retried)  # the next attempt (the stored archive is missing: rejected)
    assert not work_folder(retried.pk).exists()

    ended = job_submit(task_name=VALIDATE.name, params={"checkpoint_id": checkpoint.pk})
    Job.objects.filter(pk=ended.pk).update(state=JobState.FAILED)
    queued = job_submit(task_name=VALIDATE.name, params={"checkpoint_id": checkpoint.pk})
    for job in (ended, queued):
        (work_folder(job.pk) / "extracted").mkdir(parents=True)
    (tmp_path / "tmp" / "validate-job-999999").mkdir()  # a job that no longer exists
    report = reap_jobs()
    assert sorted(report["work_folders_removed"]) == sorted([f"validate-job-{ended.pk}", "validate-job-999999"])
    assert work_folder(queued.pk).exists() and not work_folder(ended.pk).exists()
