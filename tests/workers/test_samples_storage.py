"""Per-item records through the real runner (issue #19): ``execute_job`` runs ``evaluate_benchmark_job`` on a real
tiny private checkpoint and lmms-eval's ``pope`` on the POPE miniature; the records land in the default storage as
gzip'd JSON lines, their sha256 in the stamp and on the harness output, and GET
/api/v1/evaluations/<id>/samples/<key>/ pages through them, filtered, to the owner only. A reused result serves the
records of the evaluation that ran. In-process, embedded database."""

import gzip
import hashlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from evaluation.loading import VLMRunner
from evaluation.minis import pope
from tests.factories import ready_checkpoint, record_result
from webapp.jobs.models import JobState
from webapp.leaderboard.services import benchmark_results_record
from webapp.registry.models import Benchmark, BenchmarkSuite, HarnessOutput, Visibility
from webapp.registry.selectors import stale as stale_selectors
from webapp.registry.services import run_start
from workers import evaluate
from workers.evaluate import evaluate_benchmark_job
from workers.runner import execute_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("alice")


@pytest.fixture
def checkpoint(settings, tmp_path, monkeypatch, local_media, owner):
    """A ready private tiny checkpoint of alice's (real weights) that answers "yes" to everything, so half of the
    miniature's questions are right; a mirror holding the POPE miniature; no judge."""
    from evaluation.tiny import make_tiny_checkpoint

    for name in ("FRONTIER_JUDGE_URL", "FRONTIER_JUDGE_MODEL", "FRONTIER_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings.FRONTIER_JUDGE = {}
    settings.FRONTIER_DATASETS_DIR = tmp_path / "mirror"
    pope.write(settings.FRONTIER_DATASETS_DIR, rows_per_split=8, seed=0)
    stale_selectors._mirror_cache.clear()
    real = VLMRunner.generate
    monkeypatch.setattr(VLMRunner, "generate", lambda self, images, prompts, **kw: [
        "yes" for _ in real(self, images, prompts, **kw)])
    make_tiny_checkpoint(local_media / "checkpoints" / "tiny", compressor="avgpool", tokens=4, seed=0)
    evaluate._evaluators.clear()
    yield ready_checkpoint(name="tiny", tokens=4, files_prefix="checkpoints/tiny", owner=owner,
                           visibility=Visibility.PRIVATE)
    evaluate._evaluators.clear()
    stale_selectors._mirror_cache.clear()


def run_benchmark(run, key: str):
    from types import SimpleNamespace

    job = run.benchmark_jobs.get(benchmark__key=key).job
    task = SimpleNamespace(request=SimpleNamespace(id=f"task-{job.pk}", hostname="w1@test"), soft_time_limit=None)
    execute_job(task, job.pk, evaluate_benchmark_job)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    return job


def samples_url(run, key: str = "pope") -> str:
    return f"/api/v1/evaluations/{run.pk}/samples/{key}/"


def test_records_land_in_storage_stamped_and_page_through_the_api_to_the_owner_only(checkpoint, owner, client_for):
    reasoning = BenchmarkSuite.objects.get(name="reasoning")
    run = run_start(checkpoint=checkpoint, suite=reasoning, limit=8,
                    benchmarks=[Benchmark.objects.get(suite=reasoning, key="pope")])
    run_benchmark(run, "pope")
    output = HarnessOutput.objects.get(run=run)
    key = f"samples/{checkpoint.pk}/{run.pk}/pope.jsonl.gz"
    with default_storage.open(key, "rb") as handle:
        data = handle.read()
    records = [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]
    assert (output.samples_key, output.samples_count) == (key, 8) and len(records) == 8
    assert output.samples_sha256 == output.stamp["samples_sha256"] == hashlib.sha256(data).hexdigest()
    assert "samples" not in output.raw and [record["doc_id"] for record in records] == list(range(8))
    right = [record["doc_id"] for record in records if record["scores"]["pope_accuracy"]["score"] == 1]
    assert 0 < len(right) < 8 and all(record["prediction"] == "yes" for record in records)

    # A redelivered job rewrites the same file.
    HarnessOutput.objects.filter(pk=output.pk).update(samples_key="")
    benchmark_results_record(run=run, benchmark=output.benchmark, metrics=[], raw=output.raw, stamp=output.stamp,
                             samples=records)
    output.refresh_from_db()
    assert output.samples_key == key and output.samples_sha256 == hashlib.sha256(data).hexdigest()
    assert default_storage.listdir(f"samples/{checkpoint.pk}/{run.pk}")[1] == ["pope.jsonl.gz"]

    alice = client_for(owner)
    pages = [alice.get(samples_url(run), {"page_size": 3, "page": page}).json() for page in (1, 2, 3)]
    assert [page["count"] for page in pages] == [8, 8, 8] and pages[2]["next"] is None
    assert [record for page in pages for record in page["results"]] == records
    wrong = alice.get(samples_url(run), {"wrong": "true"}).json()
    assert [record["doc_id"] for record in wrong["results"]] == [d for d in range(8) if d not in right]
    by_field = alice.get(samples_url(run), {"field": "pope_accuracy", "value": "1"}).json()
    assert [record["doc_id"] for record in by_field["results"]] == right
    assert alice.get(samples_url(run), {"value": "1"}).status_code == 400

    bob = client_for(get_user_model().objects.create_user("bob"))
    for client in (bob, client_for(get_user_model().objects.create_user("carol"))):
        response = client.get(samples_url(run))
        assert response.status_code == 404 and "that you can see" in response.json()["detail"]
    staff = get_user_model().objects.create_user("root", is_staff=True)
    assert client_for(staff).get(samples_url(run)).json()["count"] == 8

    # compressor_table's POPE takes this result and serves its records, not a copy.
    table = run_start(checkpoint=checkpoint, suite=BenchmarkSuite.objects.get(name="compressor_table"), limit=8,
                      benchmarks=[Benchmark.objects.get(suite__name="compressor_table", key="pope")])
    evaluate._evaluators.clear()
    assert run_benchmark(table, "pope").result["reused_from"]["run"] == run.pk and not evaluate._evaluators
    reused = HarnessOutput.objects.get(run=table)
    assert (reused.samples_key, reused.samples_sha256, reused.samples_count) == (key, output.samples_sha256, 8)
    assert reused.stamp["samples_sha256"] == output.samples_sha256
    assert alice.get(samples_url(table), {"page_size": 8}).json()["results"] == records
    assert not default_storage.exists(f"samples/{checkpoint.pk}/{table.pk}/pope.jsonl.gz")


def test_a_result_recorded_before_samples_existed_is_a_404_that_says_so(client_for, owner):
    run = run_start(checkpoint=ready_checkpoint(owner=owner), suite=BenchmarkSuite.objects.get(name="reasoning"),
                    benchmarks=[Benchmark.objects.get(suite__name="reasoning", key="pope")])
    record_result(run, "pope", 0.8, metric="pope_f1_score")
    response = client_for(owner).get(samples_url(run))
    assert response.status_code == 404
    assert "recorded before Frontier kept per-item records" in response.json()["detail"]
    assert client_for(owner).get(samples_url(run, "gqa")).status_code == 404
