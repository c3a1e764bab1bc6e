"""A lease is either held or the work stops (issue #15 row 2): fenced writes, a heartbeat that reconnects,
an attempt that stops itself before its lease can expire, registrations that happen once per run, and
files stored exactly as validated (row 1)."""

import hashlib
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from webapp.jobs import services as job_services
from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.jobs.services import LeaseNotHeld, attempt_hold, job_claim, job_submit
from webapp.registry.models import Checkpoint, CheckpointStatus
from workers.runner import Heartbeat, JobContext, LeaseLost, LogTail, execute_job

pytestmark = pytest.mark.django_db(transaction=True)

TASK = SimpleNamespace(request=SimpleNamespace(id="task-1", hostname="w1@test"), soft_time_limit=None)


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


def take_over(job_id: int):
    """What the reaper and a redelivered message do to a job whose lease expired."""
    Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    return job_claim(job_id, task_id="task-2", hostname="w2@test", pid=2)


def test_a_write_of_an_attempt_that_was_taken_over_never_lands():
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")
    seen = {}

    def handler(ctx):
        seen["successor"] = take_over(ctx.job.pk)  # this attempt went on working while another took over
        with ctx.fenced():
            Checkpoint.objects.create(name="written by a stale attempt")

    execute_job(TASK, job.pk, handler)

    job.refresh_from_db()
    first, second = job.attempts.all()
    assert not Checkpoint.objects.filter(name="written by a stale attempt").exists()
    assert first.outcome == AttemptOutcome.LOST and "noticed by w2@test" in first.error_message
    assert second.pk == seen["successor"].pk and second.outcome == AttemptOutcome.RUNNING
    assert job.state == JobState.RUNNING and job.attempt_count == 2  # the successor's to finish


def test_a_fenced_write_of_the_current_attempt_lands():
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")

    def handler(ctx):
        with ctx.fenced():
            return {"checkpoint": Checkpoint.objects.create(name="written by the holder").pk}

    execute_job(TASK, job.pk, handler)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and Checkpoint.objects.filter(pk=job.result["checkpoint"]).exists()


def test_the_fence_must_be_inside_the_write_s_transaction():
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")
    attempt = job_claim(job.pk, task_id="t", hostname="w1@test", pid=1)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        attempt_hold(attempt)
    take_over(job.pk)
    from django.db import transaction

    with pytest.raises(LeaseNotHeld, match="attempt 1 of job .* no longer holds its lease .*running, attempt 2"):
        with transaction.atomic():
            attempt_hold(attempt)


def test_the_heartbeat_renews_the_lease_on_a_new_connection_after_the_database_dropped_it():
    """After a PostgreSQL restart the heartbeat kept its dead connection and never renewed the lease; the
    reaper then re-queued a job whose first attempt kept running (issue #15 row 2)."""
    if connection.vendor != "postgresql":
        pytest.skip("terminates this test's own PostgreSQL backend")
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")
    attempt = job_claim(job.pk, task_id="t", hostname="w1@test", pid=1)
    ctx = JobContext(Job.objects.get(pk=job.pk), attempt)
    heartbeat = Heartbeat(ctx, LogTail(10))  # beats on the calling thread's connection
    heartbeat.beat()
    renewed = Job.objects.get(pk=job.pk).lease_expires_at
    try:  # the database ends the connection under it (a restart, a failover)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    except OperationalError:
        pass
    heartbeat.beat()  # fails on the dead connection
    heartbeat.beat()
    connection.close()
    job.refresh_from_db()
    assert job.lease_expires_at > renewed, "the lease was not renewed after the connection dropped"
    assert not ctx.lease_lost.is_set()


def test_an_attempt_that_cannot_renew_its_lease_stops_before_the_lease_expires_and_is_requeued(
    settings, monkeypatch
):
    settings.FRONTIER_JOB_HEARTBEAT_SECONDS = 0.5
    settings.FRONTIER_JOB_LEASE_SECONDS = 3
    renewals = []
    real = job_services.job_heartbeat

    def unreachable(attempt, **kwargs):
        if threading.current_thread().name.startswith("heartbeat"):
            raise OperationalError("could not connect to server: Connection refused")
        return real(attempt, **kwargs)

    monkeypatch.setattr(job_services, "job_heartbeat", unreachable)
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")
    stopped = {}

    def handler(ctx):
        stopped["lease"] = Job.objects.get(pk=ctx.job.pk).lease_expires_at
        try:
            for _ in range(400):
                ctx.sleep(0.05)
        except LeaseLost:
            stopped["at"] = timezone.now()
            raise
        renewals.append("never stopped")

    execute_job(TASK, job.pk, handler)

    job.refresh_from_db()
    attempt = job.attempts.get()
    assert not renewals and stopped["at"] < stopped["lease"], "the attempt worked on past its lease"
    assert attempt.outcome == AttemptOutcome.LOST and attempt.failure_class == "worker_lost"
    assert "could not renew its lease" in attempt.error_message and "stopped itself" in attempt.error_message
    assert job.state == JobState.QUEUED  # another attempt takes it from here, at once


def test_a_redelivered_message_takes_over_the_moment_the_dead_attempt_s_lease_expires(settings):
    """On RabbitMQ a killed worker's message comes back while its lease still runs: it used to be dropped,
    and the job waited for lease + reaper at the back of the queue (issue #15)."""
    settings.FRONTIER_JOB_HEARTBEAT_SECONDS = 0.2
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")
    job_claim(job.pk, task_id="t", hostname="dead@test", pid=1)  # its worker was then SIGKILLed
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=1))
    redelivery = SimpleNamespace(
        request=SimpleNamespace(id="t", hostname="w2@test", delivery_info={"redelivered": True}), soft_time_limit=None
    )

    execute_job(redelivery, job.pk, lambda ctx: {"ran": True})

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.result == {"ran": True}
    assert [a.outcome for a in job.attempts.all()] == [AttemptOutcome.LOST, AttemptOutcome.SUCCEEDED]


def test_a_redelivered_message_of_a_live_attempt_is_dropped_once_it_renews(settings):
    settings.FRONTIER_JOB_HEARTBEAT_SECONDS = 0.2
    job = job_submit(task_name="workers.tasks.diagnostic_sleep")
    attempt = job_claim(job.pk, task_id="t", hostname="alive@test", pid=1)
    renewer = threading.Timer(0.3, lambda: (job_services.job_heartbeat(attempt), connection.close()))
    renewer.start()
    redelivery = SimpleNamespace(
        request=SimpleNamespace(id="t", hostname="w2@test", delivery_info={"redelivered": True}), soft_time_limit=None
    )
    execute_job(redelivery, job.pk, lambda ctx: {"ran": True})
    renewer.join()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.attempt_count == 1


# --- files stored exactly as validated (row 1) -------------------------------------------------


def test_a_killed_copy_s_leftover_is_replaced_not_saved_beside(local_media, tmp_path):
    """A worker SIGKILLed while storing model.safetensors left a truncated file; the retry saved beside it
    as model_<random>.safetensors and the checkpoint became ready with the truncated weights."""
    from webapp.core.storage import checkpoint_files_store

    root = tmp_path / "validated"
    root.mkdir()
    (root / "config.json").write_text("{}")
    (root / "model.safetensors").write_bytes(b"w" * 100_000)
    digests = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in ("config.json",
                                                                                         "model.safetensors")}
    leftover = local_media / "checkpoints" / "7" / "files" / "model.safetensors"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"w" * 1000)

    checkpoint_files_store(root, "checkpoints/7/files", digests, lambda: None)

    stored = sorted(p.name for p in leftover.parent.iterdir())
    assert stored == ["config.json", "model.safetensors"]
    assert leftover.read_bytes() == b"w" * 100_000


def test_stored_files_that_differ_from_the_validated_ones_are_a_retried_storage_error(local_media, tmp_path,
                                                                                      monkeypatch):
    import errno

    from django.core.files.storage import FileSystemStorage, default_storage

    from webapp.core.storage import StoredFilesMismatch, checkpoint_files_store
    from workers.transient import retry_transient_failures

    root = tmp_path / "validated"
    root.mkdir()
    (root / "model.safetensors").write_bytes(b"w" * 5000)
    digests = {"model.safetensors": hashlib.sha256(b"w" * 5000).hexdigest()}
    real_save = FileSystemStorage.save

    def cut_short(storage, name, content, **kwargs):  # a copy that ended early without an error
        saved = real_save(storage, name, content, **kwargs)
        with open(default_storage.path(saved), "r+b") as handle:
            handle.truncate(100)
        return saved

    monkeypatch.setattr(FileSystemStorage, "save", cut_short)
    with pytest.raises(StoredFilesMismatch, match="model.safetensors differs from the validated file") as raised:
        checkpoint_files_store(root, "checkpoints/8/files", digests, lambda: None)
    assert raised.value.errno == errno.EIO

    @retry_transient_failures
    def handler(ctx):
        checkpoint_files_store(root, "checkpoints/8/files", digests, lambda: None)

    from workers.runner import TransientJobError

    with pytest.raises(TransientJobError) as retried:
        handler(None)
    assert retried.value.failure_class == "storage_error"


def test_a_trained_checkpoint_is_accepted_and_its_evaluations_started_once(tmp_path, local_media):
    """Two attempts that both reached registration 'both registered checkpoint 264' and queued its
    evaluations twice: 3 result rows per benchmark (issue #15 row 2)."""
    from django.contrib.auth import get_user_model

    from evaluation.tiny import make_tiny_checkpoint
    from evaluation.validation import validate_checkpoint_dir
    from webapp.registry.models import EvaluationRun
    from webapp.training.models import TrainingRun
    from webapp.training.services import trained_checkpoint_accept, trained_checkpoint_create

    from webapp.jobs.task_names import TRAIN

    owner = get_user_model().objects.create_user("alice")
    run = TrainingRun.objects.create(
        owner=owner, job=job_submit(task_name=TRAIN.name, created_by=owner), name="r", tiny_model={"llm_hidden": 32}, compressor="avgpool", visual_tokens=4,
        dataset={"kind": "synthetic-shapes", "count": 16}, hyperparameters={"max_steps": 5}, suites=["synthetic"],
    )
    folder = make_tiny_checkpoint(tmp_path / "trained", compressor="avgpool", tokens=4)
    report = validate_checkpoint_dir(folder).to_dict()
    config = {"model_type": "frontier_vlm"}

    first = trained_checkpoint_create(run)
    assert trained_checkpoint_create(run).pk == first.pk
    trained_checkpoint_accept(run, first, report=report, config=config, files_prefix="checkpoints/x/files")
    again = trained_checkpoint_accept(run, first, report=report, config=config, files_prefix="checkpoints/x/files")

    assert again.pk == first.pk and again.status == CheckpointStatus.READY
    assert Checkpoint.objects.filter(training_run=run).count() == 1
    assert EvaluationRun.objects.filter(checkpoint=first).count() == 1
