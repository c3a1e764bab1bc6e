"""Two checkpoints compared item by item (webapp.leaderboard.selectors.compare, fitting.paired): the API and the
page give the difference with its interval, McNemar's test, the disagreeing items and the loyalty, all checked
against values computed by hand here; private checkpoints stay private; a parent (same LLM, V = 576) is offered."""

import pytest
from rest_framework.test import APIClient

from tests.factories import ready_checkpoint
from webapp.leaderboard.services import benchmark_results_record
from webapp.registry.models import Benchmark, BenchmarkSuite, EvaluationRun, Visibility

pytestmark = pytest.mark.django_db
# Per item (8 shapes questions): right (1) or wrong (0).
A = [1, 1, 0, 0, 1, 0, 1, 1]
B = [1, 0, 1, 1, 1, 1, 1, 1]
# By hand: mean(B) − mean(A) = 7/8 − 5/8 = 0.25; discordant: a only item 1, b only items 2, 3, 5, so McNemar's
# exact p = 2·P(X ≤ 1 | n = 4, ½) = 2·(1 + 4)/16 = 0.625; loyalty = 4/8 items scored the same.


def with_records(checkpoint, scores: list[int], key: str = "shapes"):
    suite = BenchmarkSuite.objects.get(name="synthetic")
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=suite)
    records = [{"task": key, "doc_id": index, "item_id": str(index), "prompt_sha256": "p", "prediction": "x",
                "target": "y", "scores": {"exact_match": float(score)}, "tokens_generated": 1, "seconds": 0.1}
               for index, score in enumerate(scores)]
    benchmark_results_record(
        run=run, benchmark=Benchmark.objects.get(suite=suite, key=key),
        metrics=[{"metric": "exact_match", "value": sum(scores) / len(scores), "stderr": 0.1, "n": len(scores)}],
        raw={"results": {}}, stamp={}, samples=records)
    return checkpoint


@pytest.fixture
def pair(synthetic, local_media):
    a = with_records(ready_checkpoint(name="a-v4", tokens=4), A)
    b = with_records(ready_checkpoint(name="b-v16", tokens=16), B)
    return a, b


def test_the_comparison_is_the_hand_computed_one(pair, client):
    a, b = pair
    body = client.get("/api/v1/compare/", {"a": a.pk, "b": b.pk}).json()
    (row,) = body["benchmarks"]
    assert (row["benchmark"], row["n_shared"], row["test"]) == ("shapes", 8, "mcnemar")
    assert row["difference"] == pytest.approx(0.25) and row["p_value"] == pytest.approx(0.625)
    assert row["low"] <= 0.25 <= row["high"] and row["low"] < 0 < row["high"] and row["separated"] is False
    assert row["loyalty"] == pytest.approx(0.5)
    assert (row["disagreements"], row["disagreeing_items"]) == (4, ["1", "2", "3", "5"])
    assert body["overall"] is None and body["only_in"] == {"a": [], "b": []}
    assert "paired-bootstrap" in body["method"]

    page = client.get("/compare/", {"a": a.pk, "b": b.pk}).content.decode()
    assert 'data-benchmark="shapes" data-separated="false"' in page and "1, 2, 3, 5" in page and "within noise" in page


def test_bad_and_invisible_comparisons_say_what_to_do(pair, client, django_user_model):
    a, b = pair
    assert client.get("/api/v1/compare/", {"a": a.pk}).status_code == 400
    same = client.get("/api/v1/compare/", {"a": a.pk, "b": a.pk})
    assert same.status_code == 400 and "two different checkpoints" in same.json()["detail"]
    missing = client.get("/api/v1/compare/", {"a": a.pk, "b": b.pk, "benchmark": "glyphs"})
    assert missing.status_code == 404 and "benchmarks both have: shapes" in missing.json()["detail"]
    owner = django_user_model.objects.create_user("owner")
    b.owner, b.visibility = owner, Visibility.PRIVATE
    b.save()
    assert client.get("/api/v1/compare/", {"a": a.pk, "b": b.pk}).status_code == 404
    mine = APIClient()
    mine.force_authenticate(owner)
    assert mine.get("/api/v1/compare/", {"a": a.pk, "b": b.pk}).status_code == 200
    assert client.get("/compare/", {"a": a.pk, "b": b.pk}).status_code == 404
    assert client.get("/compare/").status_code == 200  # the form alone
    assert f'href="/compare/?a={a.pk}"' in client.get(f"/checkpoints/{a.pk}/").content.decode()


def test_a_compressed_checkpoint_is_offered_its_uncompressed_parent(pair, client):
    a, b = pair
    parent = ready_checkpoint(name="parent-v576", tokens=576)
    parent.llm_id = a.llm_id
    parent.save()
    body = client.get("/api/v1/compare/", {"a": a.pk, "b": b.pk}).json()
    assert body["parents"]["a"] == {"id": parent.pk, "name": "parent-v576"}


def test_a_results_items_are_browsable_and_filterable(pair, client):
    a, _ = pair
    run = a.runs.get()
    page = client.get(f"/evaluations/{run.pk}/samples/shapes/").content.decode()
    assert 'data-count="8"' in page and page.count("<tr data-item=") == 8
    wrong = client.get(f"/evaluations/{run.pk}/samples/shapes/", {"wrong": "true"}).content.decode()
    assert 'data-count="3"' in wrong and wrong.count("<tr data-item=") == 3
    assert all(f'<tr data-item="{index}">' in wrong for index in (2, 3, 5))  # A's wrong items
    assert client.get(f"/evaluations/{run.pk}/samples/glyphs/").status_code == 404
