"""A sweep's jobs meet the same retry policy as any other: a transient failure (database busy,
storage unreachable) in its training or in the evaluations the trained checkpoint gets is retried
and then succeeds; an environment error (a module the harness cannot import) fails at once with
what to do. The real runner and handlers, in-process, on a one-point tiny sweep."""

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError

from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.registry.models import BenchmarkResult, Checkpoint, CheckpointStatus
from webapp.training.services import sweep_create
from workers.evaluate import evaluate_benchmark_job
from workers.runner import execute_job
from workers.train import train_compressor_job

pytestmark = pytest.mark.django_db(transaction=True)

TASK = SimpleNamespace(request=SimpleNamespace(id="task-1", hostname="w1@test"), soft_time_limit=None)

SWEEP = {
    "name": "retries",
    "bases": [{"tiny": {"llm_hidden": 16, "llm_layers": 1}}],
    "compressors": ["avgpool"],
    "tokens": [4],
    "dataset": {"kind": "synthetic-shapes", "count": 8},
    "hyperparameters": {"batch_size": 2, "max_steps": 2},
    "suites": ["synthetic"],
    "eval_limit": 2,
}


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def sweep_training(local_media, settings, tmp_path):
    settings.FRONTIER_TRAINING_DIR = tmp_path / "training"
    owner = get_user_model().objects.create_user("alice")
    return sweep_create(owner, SWEEP).runs.get()


def run(job: Job, handler) -> Job:
    execute_job(TASK, job.pk, handler)
    job.refresh_from_db()
    return job


def failing_once(real, error):
    calls = []

    def replacement(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise error
        return real(*args, **kwargs)

    return replacement


def assert_retried(job: Job, failure_class: str, message: str):
    attempt = job.attempts.get()
    assert job.state == JobState.QUEUED and job.failure_class == ""
    assert (attempt.outcome, attempt.failure_class) == (AttemptOutcome.RETRY, failure_class)
    assert message in attempt.error_message
    assert "retrying in 10 s" in job.transitions.last().reason


def test_a_sweep_s_training_and_evaluations_are_retried_after_transient_failures(sweep_training, monkeypatch):
    import workers.evaluate
    import workers.train

    monkeypatch.setattr(workers.train, "training_attempt_resumed", failing_once(
        workers.train.training_attempt_resumed, OperationalError("database is locked")))
    job = run(sweep_training.job, train_compressor_job)
    assert_retried(job, "database_unavailable", "the database was unavailable (OperationalError: database is locked)")

    job = run(job, train_compressor_job)

    assert job.state == JobState.SUCCEEDED, job.error
    checkpoint = Checkpoint.objects.get(training_run=sweep_training)
    assert checkpoint.status == CheckpointStatus.READY
    evaluations = list(Job.objects.filter(benchmark_job__run__checkpoint=checkpoint).order_by("id"))
    assert len(evaluations) == 2 and all(e.state == JobState.QUEUED for e in evaluations)

    monkeypatch.setattr(workers.evaluate, "checkpoint_local_dir", failing_once(
        workers.evaluate.checkpoint_local_dir, ConnectionResetError(104, "Connection reset by peer")))
    first = run(evaluations[0], evaluate_benchmark_job)
    assert_retried(first, "storage_error", "could not fetch the files of checkpoint")

    first = run(first, evaluate_benchmark_job)

    assert first.state == JobState.SUCCEEDED, first.error
    assert BenchmarkResult.objects.filter(run__checkpoint=checkpoint).exists()


def test_a_module_the_harness_cannot_import_is_an_environment_error_not_retried(sweep_training, monkeypatch):
    from evaluation.lmms_setup import configure_lmms_eval

    assert run(sweep_training.job, train_compressor_job).state == JobState.SUCCEEDED
    evaluation = Job.objects.filter(benchmark_job__run__checkpoint__training_run=sweep_training).first()

    def missing_metric_dependency(**kwargs):
        import frontier_module_that_is_not_installed  # noqa: F401

    monkeypatch.setattr(configure_lmms_eval(), "simple_evaluate", missing_metric_dependency)
    job = run(evaluation, evaluate_benchmark_job)

    attempt = job.attempts.get()
    assert job.state == JobState.FAILED and job.attempt_count == 1
    assert job.failure_class == attempt.failure_class == "environment_error"
    assert job.error.startswith("EnvironmentMismatch: lmms-eval could not import the Python module "
                                "'frontier_module_that_is_not_installed'")
    assert "Run `make install` on the worker" in job.error and "YAML" not in job.error
