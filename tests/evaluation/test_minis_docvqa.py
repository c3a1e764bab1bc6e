"""lmms-eval's own ``docvqa_val`` task on the DocVQA miniature: ANLS as computed by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import docvqa

TASK_YAML = "docvqa/docvqa_val.yaml"
# questionId -> (the mini's answers, prediction, ANLS by hand: 1 - edit distance / longer length against the
# closest answer after lower-casing and collapsing spaces, 0 below 0.5). The length is that of the raw strings.
TABLE = {
    "70010": (["Brown & Sons"], "Brown & Sons", 1.0),
    "70011": (["4 September 1986", "04/09/1986"], "04/09/86", 1 - 2 / 10),  # two deletions from 04/09/1986
    "70012": (["$3,575.00", "3575"], "3,575", 1 - 1 / 5),  # one insertion from 3575 (vs 1 - 4/9 for $3,575.00)
    "70013": (["D654-65"], "d654-65", 1.0),  # case is ignored
    "70024": (["Philip Morris"], "Philip", 0.0),  # 1 - 7/13 = 0.46 < 0.5
    "70025": (["24 March 1986", "24/03/1986"], "24 march 1986", 1.0),
    "70026": (["$315.00", "315"], "  315 ", 1.0),  # distance 0 after stripping
    "70027": (["A314-73"], "A3l4-73", 1 - 1 / 7),  # letter l for one
}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return docvqa.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_and_config_the_task_reads_with_the_hubs_splits_and_columns(mini):
    from lmms_eval.utils import load_yaml_config
    from minis_runner import installed_task_yaml

    assert docvqa.REPO_ID == installed_dataset_path(TASK_YAML)
    assert load_yaml_config(str(installed_task_yaml(TASK_YAML)), mode="simple")["dataset_name"] == docvqa.CONFIG
    for split in ("train", "validation", "test"):
        data = load_split(mini, docvqa.CONFIG, split=split)
        assert data.features == docvqa.features() and len(data) == 8
    assert set(load_split(mini, docvqa.CONFIG, split="test")["answers"]) == {None}


def test_lmms_eval_docvqa_val_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "docvqa_val", TASK_YAML, mini, lambda doc: TABLE[doc["questionId"]][1])
    assert_hand_scores_match(run, "docvqa", lambda doc: TABLE[doc["questionId"]][1])

    assert {doc["questionId"]: doc["answers"] for doc in run.docs.values()} == {
        qid: answers for qid, (answers, _, _) in TABLE.items()
    }
    expected = sum(score for _, _, score in TABLE.values()) / len(TABLE)  # (5.6 + 6/7) / 8
    assert run.results["anls,none"] == pytest.approx(expected)
    first = run.docs[0]
    assert run.prompts[0] == f"{first['question']}\nAnswer the question using a single word or phrase."
