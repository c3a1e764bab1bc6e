"""Stale results (webapp.registry.selectors.stale): a newest result whose stamp names another task hash or dataset
revision than the installed ones is marked on the leaderboard (API and page) and the checkpoint page, and staff
re-evaluate every stale result in one action (service, management command, API): exactly the stale ones, once."""

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from evaluation.datasets import SOURCES, write_manifest
from evaluation.task_identity import task_identity
from tests.factories import measured_checkpoint, ready_checkpoint, record_result
from webapp.jobs.models import Job
from webapp.leaderboard.services import refit_all
from webapp.registry.models import BenchmarkJob, BenchmarkSuite, EvaluationRun, SuiteScore
from webapp.registry.selectors import stale as stale_selectors
from webapp.registry.selectors.stale import stale_results
from webapp.registry.services import EVALUATE_TASK, stale_results_reevaluate

pytestmark = pytest.mark.django_db
POPE = SOURCES["pope"]


def stamp_of(*tasks, hashes=None, revisions=None) -> dict:
    """A stamp as the harness writes it: the installed hash unless ``hashes`` says otherwise."""
    hashes, revisions = hashes or {}, revisions or {}
    return {
        "tasks": {task: {"task_hash": hashes.get(task, task_identity(task)["yaml_sha256"]),
                         "generation_kwargs": {}, "judge": None} for task in tasks},
        "datasets": {task: {"repo_id": "r", "revision": revision, "fingerprint": "f"}
                     for task, revision in revisions.items()},
    }


@pytest.fixture
def mirror(settings, tmp_path):
    """A dataset mirror holding POPE at revision rev-2 (the web side reads the current revision from it)."""
    settings.FRONTIER_DATASETS_DIR = tmp_path / "mirror"
    folder = settings.FRONTIER_DATASETS_DIR / POPE.repo_id
    folder.mkdir(parents=True)
    (folder / "test.parquet").write_bytes(b"rows")
    write_manifest(folder, POPE.repo_id, "rev-2", "hub")
    stale_selectors._mirror_cache.clear()
    yield folder
    stale_selectors._mirror_cache.clear()


@pytest.fixture
def checkpoints(synthetic, mirror):
    """current: every stamp current; old_hash: shapes evaluated with other task files; unstamped: no hashes;
    old_data: POPE read at an older revision (reasoning suite)."""
    current = measured_checkpoint(synthetic, {"shapes": 0.5, "glyphs": 0.4}, stamp=stamp_of("shapes", "glyphs"),
                                  name="current")
    old_hash = ready_checkpoint(name="old-hash", tokens=4)
    run = EvaluationRun.objects.create(checkpoint=old_hash, suite=synthetic)
    record_result(run, "shapes", 0.6, stamp=stamp_of("shapes", hashes={"shapes": "0" * 64}))
    record_result(run, "glyphs", 0.3, stamp=stamp_of("glyphs"))
    unstamped = measured_checkpoint(synthetic, {"shapes": 0.2, "glyphs": 0.2}, name="unstamped", tokens=9)
    reasoning = BenchmarkSuite.objects.get(name="reasoning")
    old_data = ready_checkpoint(name="old-data", tokens=16, n_params=2_000_000)
    run = EvaluationRun.objects.create(checkpoint=old_data, suite=reasoning)
    record_result(run, "pope", 0.8, metric="pope_f1_score", stamp=stamp_of("pope", revisions={"pope": "rev-1"}))
    fresh = ready_checkpoint(name="fresh-data", tokens=36, n_params=2_000_000)
    run = EvaluationRun.objects.create(checkpoint=fresh, suite=reasoning)
    record_result(run, "pope", 0.8, metric="pope_f1_score", stamp=stamp_of("pope", revisions={"pope": "rev-2"}))
    return {"current": current, "old_hash": old_hash, "unstamped": unstamped, "old_data": old_data, "fresh": fresh}


def stale_pairs() -> set[tuple[str, str]]:
    names = {}
    rows = stale_results()
    for row in rows:
        names[(row["checkpoint_id"], row["benchmark"])] = row
    from webapp.registry.models import Checkpoint

    by_pk = dict(Checkpoint.objects.values_list("pk", "name"))
    return {(by_pk[pk], key) for pk, key in names}


def test_stale_marks_exactly_the_results_whose_task_or_data_changed(checkpoints):
    assert stale_pairs() == {("old-hash", "shapes"), ("unstamped", "shapes"), ("unstamped", "glyphs"),
                             ("old-data", "pope")}
    reasons = {row["benchmark"]: row["reasons"] for row in stale_results(checkpoint_ids=[checkpoints["old_data"].pk])}
    assert reasons == {"pope": [f"dataset {POPE.repo_id}: revision rev-1 → rev-2"]}
    (old_hash,) = stale_results(checkpoint_ids=[checkpoints["old_hash"].pk])
    assert "lmms-eval files changed (000000000000 →" in old_hash["reasons"][0]


def test_a_newer_result_replaces_a_stale_one(checkpoints, synthetic):
    run = EvaluationRun.objects.create(checkpoint=checkpoints["old_hash"], suite=synthetic)
    record_result(run, "shapes", 0.61, stamp=stamp_of("shapes"))
    assert ("old-hash", "shapes") not in stale_pairs()


def test_the_mirror_moving_to_a_new_revision_makes_results_stale(checkpoints, mirror):
    write_manifest(mirror, POPE.repo_id, "rev-3", "hub")
    stale_selectors._mirror_cache.clear()
    assert {("old-data", "pope"), ("fresh-data", "pope")} <= stale_pairs()


def test_leaderboard_rows_say_which_benchmarks_are_stale_and_why(checkpoints, client):
    body = client.get("/api/v1/leaderboard/", {"suite": "synthetic"}).json()
    rows = {row["name"]: row for row in body["results"]}
    assert rows["current"]["stale"] == {}
    assert set(rows["old-hash"]["stale"]) == {"shapes"} and "changed" in rows["old-hash"]["stale"]["shapes"][0]
    assert set(rows["unstamped"]["stale"]) == {"shapes", "glyphs"}
    page = client.get("/leaderboard/", {"suite": "synthetic"}).content.decode()
    assert page.count('class="badge badge-stale" title="Stale:') == 2
    assert "shapes: task shapes: its lmms-eval files changed" in page


def test_the_refit_keeps_the_scores_identities_and_the_compressors_table_counts_stale_rows(checkpoints, client):
    before = dict(SuiteScore.objects.values_list("checkpoint__name", "benchmark_identities"))
    assert before["old-hash"]["shapes"]["task_hash"] == "0" * 64
    SuiteScore.objects.update(benchmark_identities={})
    refit_all(full=True)  # the bulk path writes the same identities as a result's own refresh
    assert dict(SuiteScore.objects.values_list("checkpoint__name", "benchmark_identities")) == before
    stale = client.get("/api/v1/compressors/", {"suite": "synthetic"}).json()["stale"]
    assert (stale["checkpoints"], stale["measured"]) == (2, 3)


def test_the_checkpoint_page_lists_its_stale_benchmarks(checkpoints, client):
    page = client.get(f"/checkpoints/{checkpoints['old_data'].pk}/").content.decode()
    assert 'id="stale-results"' in page and "reasoning · pope" in page and "revision rev-1 → rev-2" in page
    assert 'id="stale-results"' not in client.get(f"/checkpoints/{checkpoints['current'].pk}/").content.decode()


def queued_pairs() -> set[tuple[str, str]]:
    return set(BenchmarkJob.objects.filter(job__state="queued").values_list("run__checkpoint__name", "benchmark__key"))


def test_one_action_queues_exactly_the_stale_results_once(checkpoints):
    dry = stale_results_reevaluate(dry_run=True)
    assert dry["stale"] == 4 and not Job.objects.filter(task_name=EVALUATE_TASK).exists()
    outcome = stale_results_reevaluate()
    assert queued_pairs() == {("old-hash", "shapes"), ("unstamped", "shapes"), ("unstamped", "glyphs"),
                              ("old-data", "pope")}
    assert Job.objects.filter(task_name=EVALUATE_TASK).count() == 4
    assert sorted((run["suite"], run["benchmarks"]) for run in outcome["runs"]) == [
        ("reasoning", ["pope"]), ("synthetic", ["glyphs", "shapes"]), ("synthetic", ["shapes"])]
    again = stale_results_reevaluate()  # idempotent: each is being re-evaluated already
    assert (again["stale"], again["already_queued"], again["runs"]) == (4, 4, [])
    assert Job.objects.filter(task_name=EVALUATE_TASK).count() == 4


def test_the_command_filters_by_benchmark_and_has_a_dry_run(checkpoints):
    out = io.StringIO()
    call_command("reevaluate_stale", "--benchmark", "pope", "--dry-run", stdout=out)
    assert "would queue pope" in out.getvalue() and not Job.objects.filter(task_name=EVALUATE_TASK).exists()
    out = io.StringIO()
    call_command("reevaluate_stale", "--benchmark", "pope", "--json", stdout=out)
    outcome = json.loads(out.getvalue())
    assert [run["benchmarks"] for run in outcome["runs"]] == [["pope"]] and queued_pairs() == {("old-data", "pope")}


def test_the_api_action_is_staff_only(checkpoints, alice, django_user_model):
    client = APIClient()
    client.force_authenticate(alice)
    assert client.post("/api/v1/results/stale/", {}, format="json").status_code == 403
    assert client.get("/api/v1/results/stale/").status_code == 403
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    client.force_authenticate(staff)
    assert client.get("/api/v1/results/stale/", {"benchmark": "shapes"}).json()["count"] == 2
    response = client.post("/api/v1/results/stale/", {"benchmark": "shapes"}, format="json")
    assert response.status_code == 202 and len(response.json()["runs"]) == 2
    assert queued_pairs() == {("old-hash", "shapes"), ("unstamped", "shapes")}
    assert client.post("/api/v1/results/stale/", {"benchmark": "shapes"}, format="json").json()["runs"] == []
    assert client.post("/api/v1/results/stale/", {"dry_run": "yes"}, format="json").status_code == 400


def test_a_result_computed_after_out_of_memory_halving_is_flagged_on_the_leaderboard(synthetic, client):
    """The worker stamps batch_size_changed when it halved the batch (tests/workers/test_failure_classes.py);
    the leaderboard row names the benchmark and the change, the page shows a batch badge."""
    changed = {"from": 8, "to": 4, "reason": "out_of_memory"}
    measured_checkpoint(synthetic, {"shapes": 0.5, "glyphs": 0.4},
                        stamp={**stamp_of("shapes", "glyphs"), "batch_size_changed": changed}, name="halved")
    measured_checkpoint(synthetic, {"shapes": 0.5, "glyphs": 0.4}, stamp=stamp_of("shapes", "glyphs"), name="steady",
                        tokens=9)
    rows = {row["name"]: row for row in client.get("/api/v1/leaderboard/", {"suite": "synthetic"}).json()["results"]}
    assert rows["halved"]["batch_changed"] == {"shapes": changed, "glyphs": changed}
    assert rows["steady"]["batch_changed"] == {}
    page = client.get("/leaderboard/", {"suite": "synthetic"}).content.decode()
    assert page.count('class="badge badge-batch"') == 1 and "shapes 8 → 4" in page
