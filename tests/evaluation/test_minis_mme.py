"""lmms-eval's own ``mme`` task on the MME miniature: perception and cognition scores as computed by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import mme

# (question_id, the mini's answer) -> prediction. lmms-eval's parser: lower-case, strip, drop periods; "yes"/"no",
# "y"/"n", else "yes"/"no" found in the first four characters, else "other".
TABLE = {
    ("existence/000000000001.png", "Yes"): "Yes",
    ("existence/000000000001.png", "No"): "No",  # both right: acc 100 + acc+ 100 = 200
    ("existence/000000000002.png", "Yes"): "yes",
    ("existence/000000000002.png", "No"): "Yes",  # one right: 50 + 0 = 50 -> existence (200 + 50) / 2 = 125
    ("color/000000000003.jpg", "Yes"): "Yes.",
    ("color/000000000003.jpg", "No"): "No, it is not.",  # "no" in the first four characters: 200
    ("color/000000000004.jpg", "Yes"): "blue",  # "other"
    ("color/000000000004.jpg", "No"): "Yes",  # both wrong: 0 -> color (200 + 0) / 2 = 100
    ("numerical_calculation/000000000005.png", "Yes"): "maybe",  # "other"
    ("numerical_calculation/000000000005.png", "No"): "Not sure",  # "not " holds "no": right -> 50
    ("numerical_calculation/000000000006.png", "Yes"): "y",
    ("numerical_calculation/000000000006.png", "No"): "N",  # 200 -> numerical (50 + 200) / 2 = 125
}
# Perception sums existence and color: 125 + 100; cognition is numerical_calculation alone.
EXPECTED = {"mme_perception_score": 225.0, "mme_cognition_score": 125.0}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return mme.write(tmp_path_factory.mktemp("mirror"), rows_per_split=12, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_columns(mini):
    assert mme.REPO_ID == installed_dataset_path("mme/mme.yaml")
    test = load_split(mini, split="test")
    assert test.features == mme.features() and len(test) == 12
    assert sorted(test["question_id"]) == sorted(question_id for question_id, _ in TABLE)  # two per image


def test_lmms_eval_mme_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "mme", "mme/mme.yaml", mini, lambda doc: TABLE[(doc["question_id"], doc["answer"])])
    assert_hand_scores_match(run, "mme", lambda doc: TABLE[(doc["question_id"], doc["answer"])])

    assert {(doc["question_id"], doc["answer"]) for doc in run.docs.values()} == set(TABLE)
    for metric, value in EXPECTED.items():
        assert run.results[f"{metric},none"] == pytest.approx(value), metric
    first = run.docs[0]
    assert first["question"].endswith(" Please answer yes or no.")
    question = first["question"].removesuffix(" Please answer yes or no.")
    assert run.prompts[0] == f"{question}\nAnswer the question using a single word or phrase."
