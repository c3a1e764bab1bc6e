"""A benchmark several suites share is evaluated once per checkpoint, lmms-eval task and task hash (issue #18): the
real runner (``execute_job``) runs ``evaluate_benchmark_job`` on a real tiny checkpoint and lmms-eval's ``pope`` on
the POPE miniature in a real dataset mirror. Reasoning's POPE is evaluated; compressor_table's then takes that
result without loading the model, and reads like a result of its own run everywhere; another limit, a stale
source or another judge makes it evaluate. In-process, embedded database."""

import pytest

from evaluation.datasets import SOURCES, dataset_folder, write_manifest
from evaluation.minis import pope
from evaluation.task_identity import task_identity
from tests.factories import ready_checkpoint, record_result
from webapp.jobs.models import Job, JobState
from webapp.registry.models import Benchmark, BenchmarkResult, BenchmarkSuite, HarnessOutput, SuiteScore
from webapp.registry.selectors import stale as stale_selectors
from webapp.registry.selectors.stale import result_identity, stale_results
from webapp.registry.services import benchmark_catalog_sync, run_start
from workers import evaluate
from workers.evaluate import evaluate_benchmark_job
from workers.runner import execute_job

pytestmark = pytest.mark.django_db(transaction=True)

RESULT_FIELDS = ("metric", "value", "stderr", "n", "higher_is_better")


@pytest.fixture(autouse=True)
def no_publishing(monkeypatch):
    from workers.celery_app import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def mirror(settings, tmp_path, monkeypatch):
    """A dataset mirror holding the POPE miniature (8 questions), the one evaluations read; no judge configured."""
    for name in ("FRONTIER_JUDGE_URL", "FRONTIER_JUDGE_MODEL", "FRONTIER_JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings.FRONTIER_JUDGE = {}
    settings.FRONTIER_DATASETS_DIR = tmp_path / "mirror"
    pope.write(settings.FRONTIER_DATASETS_DIR, rows_per_split=8, seed=0)
    stale_selectors._mirror_cache.clear()
    yield settings.FRONTIER_DATASETS_DIR
    stale_selectors._mirror_cache.clear()


@pytest.fixture
def checkpoint(local_media, mirror):
    """A ready tiny checkpoint (real weights, random) in the media storage."""
    from evaluation.tiny import make_tiny_checkpoint

    make_tiny_checkpoint(local_media / "checkpoints" / "tiny", compressor="avgpool", tokens=4, seed=0)
    return ready_checkpoint(name="tiny", tokens=4, files_prefix="checkpoints/tiny")


@pytest.fixture
def evaluations(monkeypatch):
    """The tasks the harness really evaluated, in order (the real ``CheckpointEvaluator.evaluate``, counted); the
    model cache starts and ends empty."""
    from evaluation.harness import CheckpointEvaluator

    called, real = [], CheckpointEvaluator.evaluate

    def counted(self, tasks, *args, **kwargs):
        called.extend(tasks)
        return real(self, tasks, *args, **kwargs)

    monkeypatch.setattr(CheckpointEvaluator, "evaluate", counted)
    evaluate._evaluators.clear()
    yield called
    evaluate._evaluators.clear()


def suite(name: str) -> BenchmarkSuite:
    return BenchmarkSuite.objects.get(name=name)


def run_benchmark(run, key: str) -> Job:
    """Run one benchmark job of the run through the real runner; the job afterwards."""
    from types import SimpleNamespace

    job = run.benchmark_jobs.get(benchmark__key=key).job
    task = SimpleNamespace(request=SimpleNamespace(id=f"task-{job.pk}", hostname="w1@test"), soft_time_limit=None)
    execute_job(task, job.pk, evaluate_benchmark_job)
    job.refresh_from_db()
    return job


def evaluated_pope(checkpoint, limit: int = 4) -> HarnessOutput:
    """Reasoning's POPE on the checkpoint, evaluated for real; its harness output."""
    run = run_start(checkpoint=checkpoint, suite=suite("reasoning"), limit=limit,
                    benchmarks=[Benchmark.objects.get(suite__name="reasoning", key="pope")])
    job = run_benchmark(run, "pope")
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result["reused_from"] is None
    return HarnessOutput.objects.get(run=run)


def results(run, key: str) -> list[tuple]:
    rows = BenchmarkResult.objects.filter(run=run, benchmark__key=key).order_by("metric")
    return list(rows.values_list(*RESULT_FIELDS))


def current_stamp(task: str) -> dict:
    return {"tasks": {task: {"task_hash": task_identity(task)["yaml_sha256"], "generation_kwargs": {}, "judge": None}}}


def test_compressor_table_takes_reasonings_pope_without_loading_the_model_and_reads_it_as_its_own(
    checkpoint, evaluations, client
):
    source = evaluated_pope(checkpoint)
    assert evaluations == ["pope"] and "results" in source.raw and "reused_from" not in source.stamp
    origin = {"harness_output": source.pk, "run": source.run_id, "suite": "reasoning"}
    evaluate._evaluators.clear()

    table = run_start(checkpoint=checkpoint, suite=suite("compressor_table"), limit=4)
    job = run_benchmark(table, "pope")

    assert job.state == JobState.SUCCEEDED, job.error
    assert evaluations == ["pope"] and not evaluate._evaluators  # not evaluated again, no model loaded
    values = dict(BenchmarkResult.objects.filter(run=source.run).values_list("metric", "value"))
    assert "pope_f1_score" in values
    assert job.result == {"benchmark": "pope", "metrics": values, "reused_from": origin}
    assert results(table, "pope") == results(source.run, "pope")
    output = HarnessOutput.objects.get(run=table, benchmark__key="pope")
    assert output.stamp == {**source.stamp, "reused_from": origin} and output.raw == {"reused_from": origin}
    assert "Reused the result of tiny on compressor_table/pope from evaluation" in job.attempts.get().log_tail
    assert job.progress_done == job.progress_total == 4

    # With the other six benchmarks of the table, the run has a score, current, with reasoning's POPE in it.
    for key in ("mme", "gqa", "mmbench", "scienceqa_img", "vizwiz", "vqav2"):
        task = Benchmark.objects.get(suite__name="compressor_table", key=key).lmms_eval_task
        for metric in Benchmark.objects.get(suite__name="compressor_table", key=key).metrics:
            record_result(table, key, 0.5, metric=metric, stamp=current_stamp(task))
    score = SuiteScore.objects.get(checkpoint=checkpoint, suite__name="compressor_table")
    assert score.n_benchmarks == 7 and score.benchmark_scores["pope"] == pytest.approx(values["pope_f1_score"])
    assert score.benchmark_identities["pope"] == result_identity("pope", source.stamp["tasks"],
                                                                 source.stamp["datasets"])
    assert stale_results(checkpoint_ids=[checkpoint.pk]) == []
    row = {row["name"]: row for row in client.get(
        "/api/v1/leaderboard/", {"suite": "compressor_table"}).json()["results"]}["tiny"]
    assert row["stale"] == {} and row["scores"]["pope"] == pytest.approx(values["pope_f1_score"])
    listed = client.get("/api/v1/results/", {"run": table.pk, "benchmark": "pope"}).json()
    listed = listed.get("results", listed)
    assert {entry["metric"]: entry["value"] for entry in listed} == values
    page = client.get(f"/checkpoints/{checkpoint.pk}/").content.decode()
    assert 'id="stale-results"' not in page and "compressor_table" in page

    # A third run takes it too, and names the evaluation that ran, not the copy it found first.
    again = run_start(checkpoint=checkpoint, suite=suite("compressor_table"), limit=4,
                      benchmarks=[Benchmark.objects.get(suite__name="compressor_table", key="pope")])
    assert run_benchmark(again, "pope").result["reused_from"] == origin
    assert HarnessOutput.objects.get(run=again).stamp["reused_from"] == origin and evaluations == ["pope"]


def changed_task_hash(stamp: dict) -> None:
    stamp["tasks"]["pope"]["task_hash"] = "0" * 64


def changed_dataset_revision(stamp: dict) -> None:
    stamp["datasets"]["pope"]["revision"] = "generated:an-older-mini"


def judged_by_an_llm(stamp: dict) -> None:
    stamp["tasks"]["pope"]["judge"] = {"kind": "llm", "model": "judge-7b", "prompt_sha256": "ab" * 32}


@pytest.mark.parametrize("change", [changed_task_hash, changed_dataset_revision, judged_by_an_llm, None],
                         ids=["stale-task-hash", "stale-dataset", "other-judge", "other-limit"])
def test_a_source_that_is_stale_of_another_judge_or_limit_is_not_reused(checkpoint, evaluations, change):
    source = evaluated_pope(checkpoint)
    if change is not None:
        stamp = source.stamp
        change(stamp)
        HarnessOutput.objects.filter(pk=source.pk).update(stamp=stamp)

    table = run_start(checkpoint=checkpoint, suite=suite("compressor_table"), limit=4 if change else 3,
                      benchmarks=[Benchmark.objects.get(suite__name="compressor_table", key="pope")])
    job = run_benchmark(table, "pope")

    assert job.state == JobState.SUCCEEDED, job.error
    assert evaluations == ["pope", "pope"] and job.result["reused_from"] is None
    output = HarnessOutput.objects.get(run=table)
    assert "reused_from" not in output.stamp and "results" in output.raw
    n = {row[0]: row[3] for row in results(table, "pope")}["pope_f1_score"]
    assert n == (4 if change else 3)


def test_with_its_data_gone_from_the_mirror_nothing_is_reused_and_the_evaluation_fails_as_it_does(
    checkpoint, evaluations, mirror
):
    """Not stale (the stale check cannot read a missing dataset), yet not what an evaluation here would read."""
    import shutil

    evaluated_pope(checkpoint)
    shutil.rmtree(dataset_folder(pope.REPO_ID, mirror))
    table = run_start(checkpoint=checkpoint, suite=suite("compressor_table"), limit=4,
                      benchmarks=[Benchmark.objects.get(suite__name="compressor_table", key="pope")])
    job = run_benchmark(table, "pope")
    assert (job.state, job.failure_class) == (JobState.FAILED, "dataset_unavailable")
    assert not HarnessOutput.objects.filter(run=table).exists()


def test_a_judged_benchmark_is_reused_only_under_the_same_judge(checkpoint, evaluations, settings, mirror):
    """MMBench without a judge runs its rule-based variant: an earlier rule-based result stands in for it; with the
    judge configured by halves the job is not answered from it and fails as the evaluation does."""
    folder = dataset_folder(SOURCES["mmbench"].repo_id, mirror)  # its data at rev-1 (only the manifest is read)
    folder.mkdir(parents=True)
    (folder / "dev.parquet").write_bytes(b"rows")
    write_manifest(folder, SOURCES["mmbench"].repo_id, "rev-1", "hub")
    reasoning_run = run_start(checkpoint=checkpoint, suite=suite("reasoning"), limit=4,
                              benchmarks=[Benchmark.objects.get(suite__name="reasoning", key="mmbench")])
    stamp = current_stamp("mmbench_en_dev_static")
    stamp["tasks"]["mmbench_en_dev_static"]["judge"] = {"kind": "rule-based", "task": "mmbench_en_dev_static"}
    stamp["datasets"] = {"mmbench_en_dev_static": {"repo_id": SOURCES["mmbench"].repo_id, "revision": "rev-1"}}
    record_result(reasoning_run, "mmbench", 61.0, metric="gpt_eval_score", n=4, stamp=stamp)
    mmbench = [Benchmark.objects.get(suite__name="compressor_table", key="mmbench")]

    half_set = run_start(checkpoint=checkpoint, suite=suite("compressor_table"), limit=4, benchmarks=mmbench)
    settings.FRONTIER_JUDGE = {"FRONTIER_JUDGE_URL": "http://127.0.0.1:9/v1"}  # and no FRONTIER_JUDGE_MODEL
    job = run_benchmark(half_set, "mmbench")
    assert (job.state, job.failure_class) == (JobState.FAILED, "judge_unavailable")
    assert "FRONTIER_JUDGE_MODEL is not" in job.error and not HarnessOutput.objects.filter(run=half_set).exists()

    settings.FRONTIER_JUDGE = {}
    evaluate._evaluators.clear()
    rule_based = run_start(checkpoint=checkpoint, suite=suite("compressor_table"), limit=4, benchmarks=mmbench)
    job = run_benchmark(rule_based, "mmbench")
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result["reused_from"]["run"] == reasoning_run.pk and not evaluate._evaluators
    assert results(rule_based, "mmbench") == results(reasoning_run, "mmbench")


def test_an_existing_install_gains_the_shared_rows_at_its_next_migrate():
    """benchmark_catalog_sync runs after every migrate: an install whose compressor_table held VizWiz and VQAv2
    only gets the five shared benchmarks; what is there is left as it is."""
    table = suite("compressor_table")
    Benchmark.objects.filter(suite=table).exclude(key__in=["vizwiz", "vqav2"]).delete()
    Benchmark.objects.filter(suite=table, key="vizwiz").update(full_scale=2.0)  # an admin's change

    benchmark_catalog_sync()

    assert sorted(table.benchmarks.values_list("key", flat=True)) == sorted(
        ["gqa", "mmbench", "mme", "pope", "scienceqa_img", "vizwiz", "vqav2"])
    assert table.benchmarks.get(key="vizwiz").full_scale == 2.0
    assert suite("reasoning").benchmarks.count() == 9
