"""lmms-eval's own ``chartqa`` task on the ChartQA miniature: relaxed accuracy (5 % tolerance) as by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import chartqa

# survey number -> (type, the mini's answer, prediction, relaxed correctness by hand)
TABLE = {
    1: ("human_test", "40", "41", 1.0),  # |41 - 40| / 40 = 2.5 % <= 5 %
    2: ("augmented_test", "Kiev", "kiev", 1.0),  # words: exact match, case ignored
    3: ("human_test", "20%", "0.2", 1.0),  # a percentage is a fraction: 20% == 0.2
    4: ("augmented_test", "28", "30", 0.0),  # 2 / 28 = 7.1 % > 5 %
    5: ("human_test", "Bonn", "Bonn.", 0.0),  # punctuation is not stripped
    6: ("augmented_test", "20%", "20%", 1.0),
    7: ("human_test", "89", "89.0", 1.0),
    8: ("augmented_test", "Lima", "Oslo", 0.0),
}
# By hand: overall 5/8; human surveys 1, 3, 5, 7 -> 3/4; augmented surveys 2, 4, 6, 8 -> 2/4.
EXPECTED = {"relaxed_overall": 5 / 8, "relaxed_human_split": 3 / 4, "relaxed_augmented_split": 2 / 4}


def _survey(doc) -> int:
    return int(doc["question"].split("survey ")[1].rstrip("'?"))


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return chartqa.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_columns(mini):
    assert chartqa.REPO_ID == installed_dataset_path("chartqa/chartqa.yaml")
    test = load_split(mini, split="test")
    assert test.features == chartqa.features() and len(test) == 8
    assert set(test["type"]) == {"human_test", "augmented_test"}


def test_lmms_eval_chartqa_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "chartqa", "chartqa/chartqa.yaml", mini, lambda doc: TABLE[_survey(doc)][2])
    assert_hand_scores_match(run, "chartqa", lambda doc: TABLE[_survey(doc)][2])

    assert {_survey(doc): (doc["type"], doc["answer"]) for doc in run.docs.values()} == {
        survey: (kind, answer) for survey, (kind, answer, _, _) in TABLE.items()
    }
    for metric, value in EXPECTED.items():
        assert run.results[f"{metric},none"] == pytest.approx(value), metric
    assert run.prompts[0] == f"{run.docs[0]['question']}\nAnswer the question with a single word."
