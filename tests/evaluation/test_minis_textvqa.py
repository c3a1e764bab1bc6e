"""lmms-eval's own ``textvqa_val`` task on the TextVQA miniature: VQA accuracy over ten answers, as by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task, vqa_accuracy

from evaluation.minis import textvqa

TASK_YAML = "textvqa/textvqa_val.yaml"
# question_id -> (prediction, the word it normalises to, how many of the row's ten answers are that word)
TABLE = {
    34602: ("Stop.", "stop", 10),  # lower case, final period dropped
    34603: ("exit", "exit", 3),
    34604: ("the OPEN", "open", 2),  # the article is dropped
    34605: ("sale", "sale", 1),
    34606: ("taxi", "taxi", 0),
    34607: ("hotel", "hotel", 4),
    34608: ("banks", "banks", 0),
    34609: ("exit", "exit", 2),  # matching counts any annotator's answer, not only the sign's word
}
PER_ROW = {34602: 1.0, 34603: 0.9, 34604: 0.6, 34605: 0.3, 34606: 0.0, 34607: 1.0, 34608: 0.0, 34609: 0.6}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return textvqa.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_splits_and_columns(mini):
    assert textvqa.REPO_ID == installed_dataset_path(TASK_YAML)
    for split in ("train", "validation", "test"):
        data = load_split(mini, split=split)
        assert data.features == textvqa.features() and len(data) == 8
    assert set(load_split(mini, split="test")["answers"]) == {None}


def test_the_hand_formula_gives_the_per_row_values():
    assert {qid: vqa_accuracy(matches) for qid, (_, _, matches) in TABLE.items()} == pytest.approx(PER_ROW)


def test_lmms_eval_textvqa_val_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.chdir(tmp_path)  # the submission aggregation writes ./submissions/
    run = run_task(tmp_path, "textvqa_val", TASK_YAML, mini, lambda doc: TABLE[doc["question_id"]][0])
    assert_hand_scores_match(run, "textvqa", lambda doc: TABLE[doc["question_id"]][0])

    counts = {doc["question_id"]: doc["answers"].count(TABLE[doc["question_id"]][1]) for doc in run.docs.values()}
    assert counts == {qid: matches for qid, (_, _, matches) in TABLE.items()}
    expected = sum(PER_ROW.values()) / len(PER_ROW)  # 4.4 / 8
    assert run.results["exact_match,none"] == pytest.approx(expected) == 0.55
    first = run.docs[0]
    assert run.prompts[0] == f"{first['question'].capitalize()}\nAnswer the question using a single word or phrase."
