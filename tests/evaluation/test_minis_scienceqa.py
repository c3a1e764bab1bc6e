"""lmms-eval's own ``scienceqa_img`` task on the ScienceQA miniature: exact match as scored by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import scienceqa

TASK_YAML = "scienceqa/scienceqa_img.yaml"
# picture number -> (target letter, "ABCDE"[answer] of the mini's row, prediction, its score by hand).
# lmms-eval's rule: the stripped prediction equals the letter (any case), or it starts "X." with X upper case.
TABLE = {
    1: ("A", "A", 1.0),
    2: ("B", "b", 1.0),  # case is ignored
    3: ("C", "C. choice", 1.0),  # "X. ..." counts as X
    4: ("B", "A", 0.0),
    5: ("B", "The answer is B.", 0.0),  # no answer extraction
    6: ("B", " B\n", 1.0),  # stripped
    7: ("A", "B. choice", 0.0),
    8: ("B", "(B)", 0.0),
}


def _picture(doc) -> int:
    return int(doc["question"].rstrip("?").split()[-1])


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return scienceqa.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_and_config_the_task_reads_with_the_hubs_columns(mini):
    from lmms_eval.utils import load_yaml_config
    from minis_runner import installed_task_yaml

    assert scienceqa.REPO_ID == installed_dataset_path(TASK_YAML)
    assert load_yaml_config(str(installed_task_yaml(TASK_YAML)), mode="simple")["dataset_name"] == scienceqa.CONFIG
    for config in ("ScienceQA-IMG", "ScienceQA-FULL"):
        for split in ("validation", "test"):
            data = load_split(mini, config, split=split)
            assert data.features == scienceqa.features() and len(data) == 8
    full = load_split(mini, "ScienceQA-FULL", split="test")
    assert None in full["image"]  # FULL holds text-only questions too


def test_lmms_eval_scienceqa_img_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "scienceqa_img", TASK_YAML, mini, lambda doc: TABLE[_picture(doc)][1])
    assert_hand_scores_match(run, "scienceqa_img", lambda doc: TABLE[_picture(doc)][1])

    assert {_picture(doc): "ABCDE"[doc["answer"]] for doc in run.docs.values()} == {
        picture: letter for picture, (letter, _, _) in TABLE.items()
    }
    expected = sum(score for _, _, score in TABLE.values()) / len(TABLE)  # 4 / 8
    assert expected == 0.5
    assert run.results["exact_match,none"] == pytest.approx(expected)

    second = next(doc for doc in run.docs.values() if _picture(doc) == 2)  # a row with a hint
    doc_id = next(doc_id for doc_id, doc in run.docs.items() if doc is second)
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip("ABCDE", second["choices"]))
    assert run.prompts[doc_id] == (
        f"Context: {second['hint']}\n{second['question']}\n{options}\n"
        "Answer with the option's letter from the given choices directly."
    )
