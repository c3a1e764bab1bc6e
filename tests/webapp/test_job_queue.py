"""The queue (webapp.jobs.selectors.job_queue): every kind of job with its queue, position and estimated
start and finish; what a user may see of it (webapp.pages.selectors.queue_jobs), the same on /api/v1/queue/
and /queue/; per-queue waiting times for /healthz."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from webapp.stack.health import check_queues
from webapp.fits.services import REFIT_TASK
from webapp.jobs.models import Job, JobState
from webapp.jobs.selectors import job_queue, queue_stats
from webapp.jobs.services import job_submit
from webapp.pages.selectors import queue_jobs
from webapp.registry.services import EVALUATE_TASK, VALIDATE_TASK
from webapp.training.services import TRAIN_TASK

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture(autouse=True)
def now():
    """Each test's "now", which the rows are dated against (/healthz's checks read the clock themselves)."""
    global NOW
    NOW = timezone.now()


def queued(task_name, *, ago: float, owner=None, due_in: float = 0.0, params=None) -> Job:
    job = job_submit(task_name=task_name, params=params or {}, created_by=owner)
    Job.objects.filter(pk=job.pk).update(queued_at=NOW - timedelta(seconds=ago),
                                         due_at=NOW - timedelta(seconds=ago - due_in))
    return Job.objects.get(pk=job.pk)


def running(task_name, *, for_seconds: float, owner=None, done: int = 0, total=None) -> Job:
    job = job_submit(task_name=task_name, created_by=owner)
    started = NOW - timedelta(seconds=for_seconds)
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, queued_at=started, due_at=started, started_at=started,
                                         progress_done=done, progress_total=total)
    return Job.objects.get(pk=job.pk)


def finished(task_name, *durations: float) -> None:
    for index, seconds in enumerate(durations):
        end = NOW - timedelta(hours=1, seconds=index)
        Job.objects.create(task_name=task_name, state=JobState.SUCCEEDED, queued_at=end, due_at=end,
                           started_at=end - timedelta(seconds=seconds), finished_at=end)


def by_job(entries):
    return {entry.job.pk: entry for entry in entries}


def test_every_kind_of_job_is_listed_with_its_queue_and_position_in_it():
    validation = queued(VALIDATE_TASK, ago=30, params={"checkpoint_id": 1})
    refit = queued(REFIT_TASK, ago=20)
    later_validation = queued(VALIDATE_TASK, ago=10, params={"checkpoint_id": 2})
    training = running(TRAIN_TASK, for_seconds=60)
    waiting_training = queued(TRAIN_TASK, ago=50)
    evaluation = queued(EVALUATE_TASK, ago=40)

    entries, queues = job_queue(NOW)

    rows = {entry.job.pk: (entry.kind, entry.queue, entry.position) for entry in entries}
    assert rows == {
        validation.pk: ("validation", "cpu", 1), refit.pk: ("refit", "cpu", 2), later_validation.pk: ("validation", "cpu", 3),
        waiting_training.pk: ("training", "gpu-train", 1), evaluation.pk: ("evaluation", "gpu-eval", 1),
        training.pk: ("training", "gpu-train", None),
    }
    assert [entry.job.pk for entry in entries][-1] == training.pk  # queued first, by queue and position
    assert (queues["cpu"].queued, queues["cpu"].running, queues["cpu"].oldest_queued_seconds) == (3, 0, 30)
    assert (queues["gpu-train"].queued, queues["gpu-train"].running) == (1, 1)
    assert queues["gpu-eval"].pool == queues["gpu-train"].pool == "gpu" and queues["cpu"].pool == "cpu"


def test_without_finished_jobs_of_a_kind_its_times_are_unknown():
    queued(VALIDATE_TASK, ago=5)

    [entry], _ = job_queue(NOW)

    assert entry.position == 1 and entry.starts_in_seconds == 0  # nothing ahead of it, a free slot
    assert entry.finishes_in_seconds is None


def test_start_and_finish_follow_the_median_of_recent_durations_and_the_running_slots():
    finished(VALIDATE_TASK, 10, 20, 90)  # median 20 s
    first = running(VALIDATE_TASK, for_seconds=5)  # about 15 s left
    second = running(VALIDATE_TASK, for_seconds=18, done=9, total=10)  # its rate: 2 s left
    a, b, c = (queued(VALIDATE_TASK, ago=ago) for ago in (30, 20, 10))

    entries = by_job(job_queue(NOW)[0])

    assert entries[first.pk].finishes_in_seconds == pytest.approx(15)
    assert entries[second.pk].finishes_in_seconds == pytest.approx(2)
    # two slots (two running): a takes the one free in 2 s, b the one free in 15 s, c a's after it.
    assert [(entries[job.pk].starts_in_seconds, entries[job.pk].finishes_in_seconds) for job in (a, b, c)] == [
        pytest.approx((2, 22)), pytest.approx((15, 35)), pytest.approx((22, 42))]
    assert job_queue(NOW)[1]["cpu"].slots_assumed == 2


def test_queues_of_one_worker_pool_share_its_slots_and_a_countdown_delays_the_start():
    finished(TRAIN_TASK, 100)
    finished(EVALUATE_TASK, 10)
    running(TRAIN_TASK, for_seconds=40)  # 60 s left
    evaluation = queued(EVALUATE_TASK, ago=20)
    retry = queued(EVALUATE_TASK, ago=5, due_in=300)  # a retry's backoff: not due for 295 s

    entries = by_job(job_queue(NOW)[0])

    assert (entries[evaluation.pk].starts_in_seconds, entries[evaluation.pk].finishes_in_seconds) == (
        pytest.approx(60), pytest.approx(70))  # gpu-eval waits for the gpu pool's one busy slot
    assert entries[retry.pk].position == 2 and entries[retry.pk].starts_in_seconds == pytest.approx(295)
    assert entries[retry.pk].waited_seconds == 0


def test_users_see_their_own_jobs_with_positions_counted_over_everyones():
    alice, bob = (get_user_model().objects.create_user(name) for name in ("alice", "bob"))
    queued(VALIDATE_TASK, ago=30, owner=bob)
    own = queued(VALIDATE_TASK, ago=10, owner=alice)

    shown = queue_jobs(alice, NOW)

    assert [(row["entry"].job.pk, row["entry"].position) for row in shown["jobs"]] == [(own.pk, 2)]
    assert {queue.name: queue.queued for queue in shown["queues"]}["cpu"] == 2
    staff = get_user_model().objects.create_user("ops", is_staff=True)
    assert len(queue_jobs(staff, NOW)["jobs"]) == 2


def test_a_sweeps_evaluations_show_to_the_owner_of_the_checkpoint_though_nobody_submitted_them(synthetic):
    from webapp.registry.models import Checkpoint, CheckpointStatus, Compressor, LanguageModel
    from webapp.registry.services import run_start

    alice, bob = (get_user_model().objects.create_user(name) for name in ("alice", "bob"))
    llm = LanguageModel.objects.create(name="tiny", family="qwen2", n_params=1_000_000)
    compressor, _ = Compressor.objects.get_or_create(method="avgpool", version="1")
    checkpoint = Checkpoint.objects.create(owner=alice, name="trained", status=CheckpointStatus.READY, llm=llm,
                                           compressor=compressor, visual_tokens=4, visibility="private")
    run = run_start(checkpoint=checkpoint, suite=synthetic)  # as a training registers its checkpoint: no created_by

    rows = queue_jobs(alice, NOW)["jobs"]

    assert {row["subject"]["kind"] for row in rows} == {"evaluation"} and len(rows) == run.benchmark_jobs.count()
    assert rows[0]["subject"]["pk"] == run.pk and rows[0]["entry"].job.created_by is None
    assert queue_jobs(bob, NOW)["jobs"] == []


def test_the_queues_of_a_worker_pool_take_turns_at_its_slots():
    finished(TRAIN_TASK, 100)
    finished(EVALUATE_TASK, 10)
    running(TRAIN_TASK, for_seconds=40)  # the gpu pool's one busy slot: 60 s left
    first, second = queued(TRAIN_TASK, ago=50), queued(TRAIN_TASK, ago=40)
    evaluation = queued(EVALUATE_TASK, ago=5)

    entries = by_job(job_queue(NOW)[0])

    starts = {job: entries[job.pk].starts_in_seconds for job in (first, second, evaluation)}
    assert starts == {evaluation: pytest.approx(60), first: pytest.approx(70), second: pytest.approx(170)}
    assert (entries[first.pk].position, entries[second.pk].position, entries[evaluation.pk].position) == (1, 2, 1)


def test_queue_stats_and_the_queue_checks_of_healthz(settings):
    settings.FRONTIER_QUEUE_STALL_SECONDS = 300
    settings.FRONTIER_QUEUE_STALL_SECONDS_BY_QUEUE = {"gpu-train": 3600}
    queued(VALIDATE_TASK, ago=400)
    queued(VALIDATE_TASK, ago=10)
    queued(TRAIN_TASK, ago=600)
    running(EVALUATE_TASK, for_seconds=50)
    queued(EVALUATE_TASK, ago=900, due_in=800)  # waited 100 s since it became due

    stats = queue_stats()
    checks = check_queues()

    assert stats["cpu"]["queued"] == 2 and stats["cpu"]["oldest_queued_seconds"] == pytest.approx(400, abs=5)
    assert stats["gpu-eval"] == {"queued": 1, "running": 1, "oldest_queued_seconds": pytest.approx(100, abs=5)}
    assert not checks["queue:cpu"].ok and "over 300 s" in checks["queue:cpu"].detail
    assert checks["queue:gpu-train"].ok and checks["queue:gpu-train"].extra["stall_seconds"] == 3600
    assert checks["queue:gpu-eval"].ok


def test_a_retry_requeued_with_a_countdown_is_due_after_it():
    from webapp.jobs.services import attempt_finish, job_claim

    job = job_submit(task_name=VALIDATE_TASK)
    attempt = job_claim(job.pk, task_id="t", hostname="w@test", pid=1)
    before = timezone.now()
    attempt_finish(attempt, "retry", error_class="Flaky", retry_countdown=40)

    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert (job.due_at - before).total_seconds() == pytest.approx(40, abs=2)
    assert job.due_at - job.queued_at == timedelta(seconds=40)


def test_the_api_and_the_page_list_the_same_jobs(client_for):
    alice = get_user_model().objects.create_user("alice")
    finished(VALIDATE_TASK, 12)
    validation = queued(VALIDATE_TASK, ago=30, owner=alice, params={"checkpoint_id": 999})
    training = queued(TRAIN_TASK, ago=20, owner=alice)

    body = client_for(alice).get("/api/v1/queue/").json()

    jobs = {job["id"]: job for job in body["jobs"]}
    assert jobs[validation.pk]["kind"] == "validation" and jobs[validation.pk]["queue"] == "cpu"
    assert jobs[validation.pk]["subject"] == {"kind": "", "pk": None, "label": ""}  # no checkpoint 999
    assert jobs[validation.pk]["position"] == 1 and jobs[validation.pk]["finishes_in_seconds"] == pytest.approx(12)
    assert jobs[training.pk]["finishes_in_seconds"] is None and jobs[training.pk]["worker_pool"] == "gpu"
    assert {queue["name"] for queue in body["queues"]} == {"gpu-eval", "gpu-train", "cpu"}
    assert "median" in body["eta_method"]

    page = Client()
    page.force_login(alice)
    html = page.get("/queue/").content.decode()
    row = re.search(rf'<tr data-job-id="{training.pk}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "training" in row and "gpu-train" in row and 'class="eta">unknown<' in row
    row = re.search(rf'<tr data-job-id="{validation.pk}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert '<td class="num position">1</td>' in row and 'class="eta">12 s<' in row
    assert 'data-live-active="true"' in html
