"""lmms-eval's own ``vizwiz_vqa_val`` task on the VizWiz-VQA miniature: VQA accuracy as by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task, vqa_accuracy

from evaluation.minis import vizwiz

TASK_YAML = "vizwiz_vqa/vizwiz_vqa_val.yaml"
# question_id -> (prediction, the word it normalises to, how many of the row's ten answers are that word)
TABLE = {
    "VizWiz_val_00000000.jpg": ("Soup.", "soup", 10),
    "VizWiz_val_00000001.jpg": ("coffee", "coffee", 3),
    "VizWiz_val_00000002.jpg": ("the beans", "beans", 2),  # article dropped
    "VizWiz_val_00000003.jpg": ("tea", "tea", 1),
    "VizWiz_val_00000004.jpg": ("rice", "rice", 0),
    "VizWiz_val_00000005.jpg": ("pasta", "pasta", 4),
    "VizWiz_val_00000006.jpg": ("milks", "milks", 0),
    "VizWiz_val_00000007.jpg": ("Unanswerable", "unanswerable", 3),  # as the prompt asks
}
# By hand (vqa_accuracy): 1, 0.9, 0.6, 0.3, 0, 1, 0, 0.9 -> 4.7 / 8
EXPECTED = 4.7 / 8


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return vizwiz.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_splits_and_columns(mini):
    assert vizwiz.REPO_ID == installed_dataset_path(TASK_YAML)
    for split in ("val", "test"):
        data = load_split(mini, split=split)
        assert data.features == vizwiz.features() and len(data) == 8
    assert set(load_split(mini, split="test")["answers"]) == {None}


def test_lmms_eval_vizwiz_vqa_val_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "vizwiz_vqa_val", TASK_YAML, mini, lambda doc: TABLE[doc["question_id"]][0])
    assert_hand_scores_match(run, "vizwiz", lambda doc: TABLE[doc["question_id"]][0])

    counts = {doc["question_id"]: doc["answers"].count(TABLE[doc["question_id"]][1]) for doc in run.docs.values()}
    assert counts == {qid: matches for qid, (_, _, matches) in TABLE.items()}
    assert sum(vqa_accuracy(matches) for _, _, matches in TABLE.values()) / len(TABLE) == pytest.approx(EXPECTED)
    assert run.results["exact_match,none"] == pytest.approx(EXPECTED)
    first = run.docs[0]
    assert run.prompts[0] == (
        f"{first['question'].capitalize()}\nWhen the provided information is insufficient, respond with "
        "'Unanswerable'.\nAnswer the question using a single word or phrase."
    )
