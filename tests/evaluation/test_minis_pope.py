"""lmms-eval's own ``pope`` task on the POPE miniature: the scores match a confusion matrix counted by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import pope

# question_id -> (the mini's ground truth, the scripted prediction). lmms-eval lowercases and strips the
# prediction but keeps punctuation, so "No." is neither yes nor no: wrong, and outside the confusion matrix.
TABLE = {
    "1": ("yes", "yes"),  # true positive
    "2": ("no", "yes"),  # false positive
    "3": ("yes", "no"),  # false negative
    "4": ("no", "no"),  # true negative
    "5": ("yes", " Yes "),  # true positive after lower/strip
    "6": ("no", "no"),  # true negative
    "7": ("yes", "yes"),  # true positive
    "8": ("no", "No."),  # wrong, counted nowhere in precision/recall
}
# By hand: correct 1,4,5,6,7 -> 5/8; TP 3 (1,5,7), FP 1 (2), FN 1 (3) -> precision 3/4, recall 3/4, F1 3/4;
# half of the ground truths are yes.
EXPECTED = {"pope_accuracy": 5 / 8, "pope_precision": 3 / 4, "pope_recall": 3 / 4, "pope_f1_score": 3 / 4,
            "pope_yes_ratio": 1 / 2}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return pope.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_configs_and_columns(mini):
    assert pope.REPO_ID == installed_dataset_path("pope/pope.yaml")
    assert mini.as_posix().endswith(pope.REPO_ID)
    test = load_split(mini, split="test")
    assert test.features == pope.features() and len(test) == 8
    for split in ("adversarial", "popular", "random"):
        full = load_split(mini, "Full", split=split)
        assert full.features == pope.features() and set(full["category"]) == {split}


def test_lmms_eval_pope_scores_the_scripted_predictions_as_counted_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "pope", "pope/pope.yaml", mini, lambda doc: TABLE[doc["question_id"]][1])
    assert_hand_scores_match(run, "pope", lambda doc: TABLE[doc["question_id"]][1])

    assert {doc["question_id"]: doc["answer"] for doc in run.docs.values()} == {
        question_id: truth for question_id, (truth, _) in TABLE.items()
    }
    for metric, value in EXPECTED.items():
        assert run.results[f"{metric},none"] == pytest.approx(value), metric
    first = run.docs[0]
    assert run.prompts[0] == f"{first['question']}\nAnswer the question using a single word or phrase."
