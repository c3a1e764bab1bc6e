"""The runner's bookkeeping around a handler, run in-process (no broker involved)."""

import logging
from types import SimpleNamespace

import pytest

from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.jobs.services import job_submit
from workers.runner import TransientJobError, execute_job, retry_countdown

pytestmark = pytest.mark.django_db(transaction=True)

TASK = SimpleNamespace(request=SimpleNamespace(id="task-1", hostname="w1@test"), soft_time_limit=None)


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


def run(handler, **submit_kwargs) -> Job:
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", **submit_kwargs)
    execute_job(TASK, job.pk, handler)
    job.refresh_from_db()
    return job


def test_success_stores_the_result_progress_and_log_tail():
    def handler(ctx):
        ctx.progress(5, 5)
        logging.getLogger("frontier.test").info("working on %s", ctx.params["x"])
        return {"answer": 42}

    job = run(handler, params={"x": "it"})
    attempt = job.attempts.get()
    assert job.state == JobState.SUCCEEDED and job.result == {"answer": 42}
    assert (job.progress_done, job.progress_total) == (5, 5)
    assert attempt.outcome == AttemptOutcome.SUCCEEDED and attempt.task_id == "task-1"
    assert "working on it" in attempt.log_tail


def test_an_exception_fails_the_job_with_its_class_message_and_traceback():
    def handler(ctx):
        raise ValueError("config.json has no 'vision_config'")

    job = run(handler)
    attempt = job.attempts.get()
    assert job.state == JobState.FAILED
    assert job.error == "ValueError: config.json has no 'vision_config'"
    assert attempt.error_class == "ValueError"
    assert "Traceback" in attempt.log_tail


def test_a_transient_error_requeues_with_backoff_until_attempts_run_out():
    def handler(ctx):
        raise TransientJobError("device busy")

    job = run(handler, max_attempts=2)
    assert job.state == JobState.QUEUED
    assert "retrying in 10 s" in job.transitions.last().reason
    execute_job(TASK, job.pk, handler)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.attempt_count == 2


def test_backoff_doubles_and_is_capped():
    assert [retry_countdown(n) for n in (1, 2, 3)] == [10, 20, 40]
    assert retry_countdown(30) == 600
