"""lmms-eval's own ``mmmu_val`` task on the MMMU miniature: instance-level accuracy as judged by hand."""

import ast

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import mmmu

TASK_YAML = "mmmu/mmmu_val.yaml"
# id -> (the mini's answer, prediction, correct by hand). Multiple choice: the letter alone, "(X)" or "X." is
# read as X (a response with no letter would be a *random* letter: avoided). Open: the tail after "is " /
# "answer " etc., numbers compared as floats rounded to 2 decimals, words by substring.
TABLE = {
    "validation_Math_1": ("B", "B", True),
    "validation_Math_2": ("A", "(A) 12", True),
    "validation_Math_3": ("12", "The answer is 12.", True),
    "validation_Physics_1": ("C", "D", False),
    "validation_Physics_2": ("9.8", "9.81", False),  # 9.81 != 9.8
    "validation_Physics_3": ("A", "A.", True),
    "validation_Art_1": ("B", "C", False),  # the two-image question
    "validation_Art_2": ("blue", "Blue", True),
}
# By hand: Math 3/3, Physics 1/3, Art 1/2; instance-level overall (3 + 1 + 1) / 8.
EXPECTED = 5 / 8


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return mmmu.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_splits_and_columns(mini):
    assert mmmu.REPO_ID == installed_dataset_path(TASK_YAML)
    for split in ("dev", "validation", "test"):
        data = load_split(mini, split=split)
        assert data.features == mmmu.features() and len(data) == 8
    validation = load_split(mini, split="validation")
    assert all(isinstance(ast.literal_eval(options), list) for options in validation["options"])
    assert [row["image_2"] is not None for row in validation] == [row["id"] == "validation_Art_1" for row in validation]


def test_lmms_eval_mmmu_val_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "mmmu_val", TASK_YAML, mini, lambda doc: TABLE[doc["id"]][1])
    assert_hand_scores_match(run, "mmmu", lambda doc: TABLE[doc["id"]][1])

    assert {doc["id"]: doc["answer"] for doc in run.docs.values()} == {key: row[0] for key, row in TABLE.items()}
    assert sum(correct for _, _, correct in TABLE.values()) / len(TABLE) == EXPECTED
    assert run.results["mmmu_acc,none"] == pytest.approx(EXPECTED)
    assert {run.docs[doc_id]["id"]: count for doc_id, count in run.visuals.items() if count != 1} == {
        "validation_Art_1": 2}  # doc_to_visual found both images the question names
    first = run.docs[0]
    options = "\n".join(f"{letter}. {option}" for letter, option in zip("ABCD", ast.literal_eval(first["options"])))
    assert run.prompts[0] == (
        f"{first['question']}\n{options}\n\nAnswer with the option's letter from the given choices directly."
    )
