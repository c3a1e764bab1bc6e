"""The dataset mirror over the REST API (issue #18), the twin of ``python -m evaluation datasets status|prefetch``
and ``manage.py datasets``: GET /api/v1/datasets/ says per real benchmark whether its data are in the mirror, and
staff POST /api/v1/datasets/prefetch/ queues one prefetch job on the cpu queue, which the real job runner runs
(here offline: it fails at once with the no-hub message and leaves the mirror byte for byte as it was)."""

import shutil
import time
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from evaluation import datasets as mirror
from evaluation.minis import pope
from webapp.jobs.models import AttemptOutcome, Job, JobState
from webapp.jobs.task_names import PREFETCH_DATASETS, ROUTES
from workers.datasets import prefetch_datasets_job
from workers.runner import execute_job

pytestmark = pytest.mark.django_db
PREFETCH = "/api/v1/datasets/prefetch/"
REASONING = ["mme", "gqa", "ai2d", "mmbench_en_dev", "mmmu_val", "scienceqa_img", "mathvista_testmini_format",
             "pope", "chartqa"]


@pytest.fixture(scope="module")
def pope_mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("pope-mini")
    pope.write(root, rows_per_split=8, seed=0)
    return root


@pytest.fixture
def mirror_root(settings, tmp_path, pope_mini):
    """FRONTIER_DATASETS_DIR holding the POPE miniature and nothing else."""
    settings.FRONTIER_DATASETS_DIR = tmp_path / "mirror"
    shutil.copytree(pope_mini, settings.FRONTIER_DATASETS_DIR)
    return settings.FRONTIER_DATASETS_DIR


@pytest.fixture
def staff(client_for):
    return client_for(get_user_model().objects.create_user("root", is_staff=True))


def listing(root) -> dict[str, str]:
    """Every folder and file under ``root`` with each file's sha256."""
    return {path.relative_to(root).as_posix(): mirror.file_sha256(path) if path.is_file() else "folder"
            for path in sorted(root.rglob("*"))}


def test_the_status_lists_every_real_benchmark_and_how_to_fill_the_missing_ones(mirror_root):
    response = APIClient().get("/api/v1/datasets/")  # anyone may read it

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["root"] == str(mirror_root) and body["suite"] is None and body["verified"] is False
    assert [record["key"] for record in body["benchmarks"]] == list(mirror.SOURCES)
    assert len(body["benchmarks"]) == 13 and set(body["generated"]) == {"shapes", "glyphs", "spots"}
    records = {record["key"]: record for record in body["benchmarks"]}
    assert records["pope"]["present"] and records["pope"]["problem"] == ""
    assert records["pope"]["repo_id"] == "lmms-lab-encoder/POPE"
    assert records["pope"]["revision"].startswith("generated:")
    assert records["pope"]["bytes"] > 0 and len(records["pope"]["fingerprint"]) == 64
    missing = [record for key, record in records.items() if key != "pope"]
    assert all(not record["present"] and record["revision"] is None and "no folder" in record["problem"]
               for record in missing)
    assert records["gqa"]["prefetch"] == "python -m evaluation datasets prefetch --task gqa"
    assert records["docvqa"]["prefetch"] == "python -m evaluation datasets prefetch --task docvqa_val"


def test_the_status_of_one_suite_and_staff_only_verification(mirror_root, client_for, staff):
    ocr = APIClient().get("/api/v1/datasets/", {"suite": "ocr"}).json()
    assert ocr["suite"] == "ocr" and [record["key"] for record in ocr["benchmarks"]] == ["textvqa", "docvqa"]
    assert ocr["generated"] == []
    synthetic = APIClient().get("/api/v1/datasets/?suite=synthetic").json()
    assert synthetic["benchmarks"] == [] and synthetic["generated"] == ["shapes", "glyphs"]
    unknown = APIClient().get("/api/v1/datasets/?suite=nonesuch")
    assert unknown.status_code == 400 and "unknown suite 'nonesuch'; choose one of" in unknown.json()["detail"]

    alice = client_for(get_user_model().objects.create_user("alice"))
    refused = alice.get("/api/v1/datasets/?verify=true")
    assert refused.status_code == 403 and "Only staff may verify" in refused.json()["detail"]
    assert APIClient().get("/api/v1/datasets/?verify=true").status_code == 403
    assert alice.get("/api/v1/datasets/?verify=maybe").status_code == 400
    verified = staff.get("/api/v1/datasets/?suite=reasoning&verify=true").json()
    assert verified["verified"] is True and [r["key"] for r in verified["benchmarks"] if r["present"]] == ["pope"]
    readme = mirror_root / "lmms-lab-encoder" / "POPE" / "README.md"
    readme.write_bytes(readme.read_bytes().replace(b"POPE", b"EPOP"))  # same size: only re-hashing sees it

    def pope_of(query: str) -> dict:
        return next(r for r in staff.get(f"/api/v1/datasets/?{query}").json()["benchmarks"] if r["key"] == "pope")

    assert pope_of("suite=reasoning")["present"]
    changed = pope_of("suite=reasoning&verify=true")
    assert not changed["present"] and "README.md changed" in changed["problem"]


def test_only_staff_may_prefetch(mirror_root, client_for):
    alice = client_for(get_user_model().objects.create_user("alice"))
    assert alice.post(PREFETCH, {"suite": "reasoning"}, format="json").status_code == 403
    assert APIClient().post(PREFETCH, {"suite": "reasoning"}, format="json").status_code == 401
    assert not Job.objects.exists()


@pytest.mark.parametrize("body, message", [
    ({"suite": "nonesuch"}, "unknown suite 'nonesuch'; choose one of"),
    ({"tasks": ["pope", "nonesuch"]}, "no hub dataset is known for nonesuch; choose among the tasks mme, gqa"),
    ({"suite": "reasoning", "revision": "abc"},
     '"revision" names one dataset\'s revision, but suite reasoning needs 9'),
    ({"tasks": ["pope", "mme"], "revision": "abc"},
     'give it with one task, e.g. {"tasks": ["pope"], "revision": "abc"}'),
    ({}, 'Give either "suite"'),
    ({"suite": "ocr", "tasks": ["pope"]}, "not both"),
    ({"suite": "synthetic"}, "Nothing to prefetch: the benchmarks of suite synthetic are generated locally"),
    ({"tasks": "pope"}, "Expected a list"),
])
def test_a_bad_prefetch_request_is_a_400_that_names_the_valid_choices(mirror_root, staff, body, message):
    response = staff.post(PREFETCH, body, format="json")

    assert response.status_code == 400, response.content
    assert message in response.json().get("detail", str(response.json())), response.json()
    assert not Job.objects.exists()


def test_a_prefetch_queues_one_job_on_the_cpu_queue_and_a_second_request_does_not_duplicate_it(mirror_root, staff):
    first = staff.post(PREFETCH, {"tasks": ["pope", "mme"]}, format="json")

    assert first.status_code == 202, first.content
    body = first.json()
    job = Job.objects.get()
    assert body["job"]["id"] == job.pk and body["job"]["state"] == "queued" and body["coalesced"] is False
    assert body["url"] == first["Location"] == f"/api/v1/jobs/{job.pk}/" and body["datasets"] == ["pope", "mme"]
    assert f"Queued job {job.pk} on the cpu queue" in body["detail"] and body["url"] in body["detail"]
    assert job.task_name == PREFETCH_DATASETS.name and ROUTES[job.task_name] == {"queue": "cpu"}
    assert job.params == {"suite": "", "tasks": ["pope", "mme"], "revision": ""}
    assert job.created_by.username == "root"

    again = staff.post(PREFETCH, {"tasks": ["mme", "pope"]}, format="json")  # the same datasets
    assert again.status_code == 202 and again.json()["job"]["id"] == job.pk and again.json()["coalesced"] is True
    assert "already queued" in again.json()["detail"]
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING)
    running = staff.post(PREFETCH, {"tasks": ["pope", "mme"]}, format="json").json()
    assert running["job"]["id"] == job.pk and "already running" in running["detail"]
    assert Job.objects.count() == 1

    other = staff.post(PREFETCH, {"tasks": ["pope"], "revision": "abc"}, format="json").json()  # other datasets
    assert other["coalesced"] is False and other["job"]["params"] == {"suite": "", "tasks": ["pope"], "revision": "abc"}
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED)
    assert staff.post(PREFETCH, {"tasks": ["pope", "mme"]}, format="json").json()["coalesced"] is False
    assert Job.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_job_runs_through_the_real_runner_and_offline_fails_fast_leaving_the_mirror_unchanged(
    mirror_root, staff, monkeypatch
):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)  # no broker: the test runs the job
    queued = staff.post(PREFETCH, {"suite": "reasoning"}, format="json").json()
    job = Job.objects.get(pk=queued["job"]["id"])
    assert job.params == {"suite": "reasoning", "tasks": REASONING, "revision": ""}
    before = listing(mirror_root)
    monkeypatch.delenv("FRONTIER_HF_OFFLINE_DEFAULTED", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # set by whoever started the worker: no hub here

    started = time.monotonic()
    execute_job(SimpleNamespace(request=SimpleNamespace(id="task-1", hostname="cpu@test"), soft_time_limit=None),
                job.pk, prefetch_datasets_job)
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    attempt = job.attempts.get()
    assert elapsed < 5, elapsed
    assert job.state == JobState.FAILED and job.attempt_count == 1 and attempt.outcome == AttemptOutcome.FAILED
    assert job.failure_class == attempt.failure_class == "dataset_unavailable"
    assert job.error.startswith("PrefetchError: cannot prefetch lmms-lab-encoder/MME (task mme): this machine has "
                                "no access to the Hugging Face hub (HF_HUB_OFFLINE is set)")
    assert "run `python -m evaluation datasets prefetch --task mme`" in job.error
    assert f"into FRONTIER_DATASETS_DIR here ({mirror_root / 'lmms-lab-encoder/MME'})" in job.error
    assert "Fetching lmms-lab-encoder/MME for task mme" in attempt.log_tail
    assert listing(mirror_root) == before  # nothing written, nothing left behind
    detail = staff.get(queued["url"]).json()
    assert detail["state"] == "failed" and detail["failure_class"] == "dataset_unavailable"
    # Failed: a new request queues a new job.
    assert staff.post(PREFETCH, {"suite": "reasoning"}, format="json").json()["coalesced"] is False


@pytest.mark.django_db(transaction=True)
def test_a_prefetch_that_succeeds_returns_the_records_and_the_status_shows_them(
    settings, tmp_path, pope_mini, staff, monkeypatch
):
    """With hub access (here a stand-in for evaluation.prefetch.prefetch that writes the miniature), the job
    returns each fetched dataset's record, and the mirror's status shows it present."""
    import workers.datasets
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)
    settings.FRONTIER_DATASETS_DIR = tmp_path / "mirror"
    fetched = []

    def fake_prefetch(source, root, revision=None):
        fetched.append((source.task, root, revision))
        shutil.copytree(pope_mini, root, dirs_exist_ok=True)
        return mirror.source_status(source, root)

    monkeypatch.setattr(workers.datasets, "prefetch", fake_prefetch)
    queued = staff.post(PREFETCH, {"tasks": ["pope"], "revision": "main"}, format="json").json()
    execute_job(SimpleNamespace(request=SimpleNamespace(id="task-2", hostname="cpu@test"), soft_time_limit=None),
                queued["job"]["id"], workers.datasets.prefetch_datasets_job)

    job = staff.get(queued["url"]).json()
    assert job["state"] == "succeeded" and (job["progress_done"], job["progress_total"]) == (1, 1)
    assert fetched == [("pope", settings.FRONTIER_DATASETS_DIR, "main")]
    assert job["result"]["root"] == str(settings.FRONTIER_DATASETS_DIR)
    [record] = job["result"]["datasets"]
    assert record["key"] == "pope" and record["present"] and record["revision"].startswith("generated:")
    status = {r["key"]: r for r in staff.get("/api/v1/datasets/?suite=reasoning").json()["benchmarks"]}
    assert status["pope"]["present"] and status["pope"]["fingerprint"] == record["fingerprint"]
