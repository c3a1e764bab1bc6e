"""Jobs through a real `celery worker` process on the real broker (integration)."""

import pytest
import requests
from frontier_processes import free_port, wait_for

from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.jobs.services import job_submit

pytestmark = pytest.mark.integration


def job_state(job_id: int) -> str:
    return Job.objects.get(pk=job_id).state


def test_trivial_job_runs_through_a_real_worker(start_worker):
    start_worker("w1")
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", params={"seconds": 0.5})

    wait_for(lambda: job_state(job.pk) == JobState.SUCCEEDED, timeout=60, message="job to succeed")

    job.refresh_from_db()
    assert job.result["slept_seconds"] >= 0.5
    assert job.progress_done == job.progress_total == 2
    attempts = list(job.attempts.all())
    assert [a.outcome for a in attempts] == [AttemptOutcome.SUCCEEDED]
    assert attempts[0].worker_hostname.startswith("w1@")
    assert attempts[0].task_id and attempts[0].finished_at >= attempts[0].started_at
    assert "attempt 1 started" in attempts[0].log_tail
    assert [t.to_state for t in job.transitions.all()] == ["queued", "running", "succeeded"]
    assert job.queued_at <= job.started_at <= job.finished_at


def test_killed_worker_job_is_redelivered_and_finishes_once(start_worker):
    first = start_worker("w1")
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", params={"seconds": 6})
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, state=JobState.RUNNING, progress_done__gte=1).exists(),
        timeout=60, message="job to be running with progress",
    )

    first.kill()  # SIGKILL the worker and its pool child mid-job
    start_worker("w2", beat=True)  # beat runs the reaper
    wait_for(lambda: job_state(job.pk) == JobState.SUCCEEDED, timeout=90, message="job to succeed on w2")

    job.refresh_from_db()
    attempts = list(job.attempts.all())
    assert [a.outcome for a in attempts] == [AttemptOutcome.LOST, AttemptOutcome.SUCCEEDED]
    assert attempts[0].worker_hostname.startswith("w1@")
    assert attempts[1].worker_hostname.startswith("w2@")
    assert "stopped heartbeating" in attempts[0].error_message
    assert job.attempt_count == 2
    assert Job.objects.filter(state=JobState.SUCCEEDED).count() == 1
    reasons = " | ".join(t.reason for t in job.transitions.all())
    assert "stopped heartbeating" in reasons, reasons


def test_redelivered_message_of_a_finished_job_does_not_run_it_again(start_worker):
    from workers.celery_app import app

    start_worker("w1")
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", params={"seconds": 0.2})
    wait_for(lambda: job_state(job.pk) == JobState.SUCCEEDED, timeout=60, message="job to succeed")

    app.send_task(job.task_name, args=[job.pk])  # a duplicate delivery
    probe = job_submit(task_name="workers.tasks.diagnostic_sleep", params={"seconds": 0.1})
    wait_for(lambda: job_state(probe.pk) == JobState.SUCCEEDED, timeout=60, message="the probe job after it")

    job.refresh_from_db()
    assert job.attempts.count() == 1
    assert job.transitions.filter(to_state=JobState.SUCCEEDED).count() == 1


def test_cancel_stops_a_running_job_within_seconds(start_worker):
    from webapp.jobs.services import job_cancel

    start_worker("w1")
    job = job_submit(task_name="workers.tasks.diagnostic_sleep", params={"seconds": 60})
    wait_for(lambda: job_state(job.pk) == JobState.RUNNING, timeout=60, message="job to run")

    job_cancel(job)
    wait_for(lambda: job_state(job.pk) == JobState.CANCELLED, timeout=10, message="job to stop")
    assert job.attempts.get().outcome == AttemptOutcome.CANCELLED


def test_healthz_is_200_with_everything_up(start_worker, start_web):
    start_worker("w1")
    url = start_web()

    response = requests.get(url + "/healthz", timeout=10)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert any(name.startswith("w1@") for name in body["checks"]["workers"]["extra"]["workers"])
    for queue in ("gpu-eval", "gpu-train", "cpu"):
        assert body["checks"]["workers"]["extra"]["consumers"][queue][0].startswith("w1@")
        assert body["checks"][f"queue:{queue}"]["extra"]["queued"] == 0


def test_healthz_is_200_and_degraded_naming_a_queue_whose_oldest_job_waits_too_long(start_worker, start_web):
    from datetime import timedelta

    from django.utils import timezone

    start_worker("w1")
    url = start_web({"FRONTIER_QUEUE_STALL_SECONDS": "60"})
    # A job whose message never reached the broker (the reaper, not running here, would re-publish it).
    long_ago = timezone.now() - timedelta(minutes=10)
    Job.objects.create(task_name="workers.tasks.validate_checkpoint", state=JobState.QUEUED, queued_at=long_ago,
                       due_at=long_ago)

    response = requests.get(url + "/healthz", timeout=10)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded" and body["failing"] == ["queue:cpu"]
    assert body["checks"]["queue:cpu"]["extra"]["queued"] == 1
    assert 590 < body["checks"]["queue:cpu"]["extra"]["oldest_queued_seconds"] < 900
    assert "over 60 s" in body["checks"]["queue:cpu"]["detail"]


def test_healthz_is_200_and_degraded_naming_the_disks_when_free_space_is_low(start_worker, start_web):
    start_worker("w1")
    url = start_web({"FRONTIER_DISK_LOW_BYTES": str(10**18)})

    body = requests.get(url + "/healthz", timeout=10).json()

    assert body["status"] == "degraded" and sorted(body["failing"]) == ["disk:media", "disk:var"]
    assert body["checks"]["disk:var"]["extra"]["free_bytes"] > 0
    assert "uploads and validations will soon be refused" in body["checks"]["disk:media"]["detail"]


def test_healthz_is_503_naming_the_workers_when_no_worker_consumes_a_queue(start_worker, start_web):
    start_worker("gpu", queues="gpu-eval,gpu-train")
    url = start_web()

    response = requests.get(url + "/healthz", timeout=10)

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["workers"]
    assert "no worker consumes cpu" in body["checks"]["workers"]["detail"]


def test_healthz_is_503_naming_the_broker_when_its_port_is_closed(start_web):
    url = start_web({"CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//"})

    response = requests.get(url + "/healthz", timeout=10)

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker", "workers"]
    assert "refused" in body["checks"]["broker"]["detail"].lower()
    assert body["checks"]["database"]["ok"] is True


def test_healthz_is_503_naming_the_workers_when_none_runs(start_web):
    response = requests.get(start_web() + "/healthz", timeout=10)

    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]
