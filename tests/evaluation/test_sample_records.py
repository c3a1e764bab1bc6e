"""Per-item records (issue #19): lmms-eval's ``pope`` on the POPE miniature with a real tiny checkpoint keeps one
record per question, with lmms-eval's own per-item scores, the prompt's hash, tokens and time, and no images."""

import hashlib
import json

import pytest

from evaluation.minis import pope
from evaluation.samples import is_wrong, item_id, json_safe, jsonl_gz, read_jsonl_gz, sample_records, score_number

RECORD_FIELDS = {"task", "doc_id", "item_id", "prompt_sha256", "prompt", "prediction", "target", "scores",
                 "tokens_generated", "seconds"}


@pytest.fixture(scope="module")
def pope_run(tmp_path_factory, pooling_checkpoint, synthetic_root):
    """(outcome, lmms-eval's own logged samples of the same run) on the 8-question POPE miniature."""
    from evaluation.harness import CheckpointEvaluator

    root = tmp_path_factory.mktemp("mirror")
    pope.write(root, rows_per_split=8, seed=0)
    evaluator = CheckpointEvaluator(pooling_checkpoint, batch_size=3, device="cpu", synthetic_dir=synthetic_root,
                                    datasets_dir=root)
    logged, real = {}, evaluator.lmms_evaluator.simple_evaluate

    def spied(**kwargs):
        raw = real(**kwargs)
        logged.update(raw.get("samples", {}))
        return raw

    evaluator.lmms_evaluator.simple_evaluate = spied
    try:
        outcome = evaluator.evaluate(["pope"], latency_samples=0)
    finally:
        evaluator.lmms_evaluator.simple_evaluate = real
    return outcome, logged["pope"]


def test_every_item_has_a_record_with_lmms_evals_own_scores_and_no_image(pope_run):
    outcome, logged = pope_run
    records = outcome.samples["pope"]
    assert "samples" not in outcome.raw_results and len(records) == len(logged) == 8
    assert [record["doc_id"] for record in records] == list(range(8))
    by_doc = {sample["doc_id"]: sample for sample in logged}
    for record in records:
        sample = by_doc[record["doc_id"]]
        assert record["item_id"] == f"{sample['doc_id']}:{sample['doc']['question_id']}"
        assert record["prompt_sha256"] == hashlib.sha256(sample["arguments"][0].encode()).hexdigest()
        assert record["prompt"] == sample["arguments"][0]
        assert record["prediction"] == sample["filtered_resps"][0] and record["target"] == sample["target"]
        metrics = {"pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio"}
        assert set(record["scores"]) == metrics
        assert all(record["scores"][metric] == sample[metric] for metric in metrics)
        assert isinstance(record["tokens_generated"], int) and record["tokens_generated"] > 0
        assert record["seconds"] > 0
    assert all(set(record) == RECORD_FIELDS for record in records)
    assert "Image" not in json.dumps(records) and "base64" not in json.dumps(records)  # no picture, in any form
    mean = sum(score_number(record["scores"]["pope_accuracy"]) for record in records) / len(records)
    assert mean == pytest.approx(outcome.task_results("pope")["pope_accuracy,none"])
    assert [is_wrong(record, ("pope_f1_score",)) for record in records] == [
        record["scores"]["pope_accuracy"]["score"] == 0 for record in records]


def test_the_stored_form_is_the_same_bytes_for_the_same_records(pope_run):
    records = pope_run[0].samples["pope"]
    data = jsonl_gz(list(reversed(records)))
    assert data == jsonl_gz(records) and read_jsonl_gz(data) == records


def test_ids_scores_and_odd_values():
    assert item_id({"doc_id": 4, "doc": {"index": 12, "id": "x"}}) == "4:12"
    assert item_id({"doc_id": 4, "doc": {"question": "?"}}) == "4"
    assert json_safe({"a": (1, float("nan")), "b": object()}) == {"a": [1, None], "b": "<object>"}
    assert [score_number(v) for v in (True, 0, 0.5, {"score": 1}, {"correct": False}, "yes")] == [
        1.0, 0.0, 0.5, 1.0, 0.0, None]
    assert is_wrong({"scores": {"exact_match": 0.0, "other": 1}}, ("exact_match",))
    assert not is_wrong({"scores": {"exact_match": 1.0, "other": 0}}, ("exact_match",))
    assert is_wrong({"scores": {"exact_match": 1.0, "other": 0}})


def test_a_multiple_choice_item_keeps_every_choices_loss():
    logged = {"doc_id": 2, "doc": {"pid": "p9"}, "arguments": ["Which?", " A", "Which?", " B"], "target": 1,
              "filtered_resps": [(3.5, False), (0.25, True)], "resps": [], "acc": 1.0}
    (record,) = sample_records([logged], "user_task", {("user_task", 2): {"tokens_generated": 0, "seconds": 0.5}})
    assert record["prediction"] == [[3.5, False], [0.25, True]] and record["item_id"] == "2:p9"
    assert (record["scores"], record["tokens_generated"], record["seconds"]) == ({"acc": 1.0}, 0, 0.5)
