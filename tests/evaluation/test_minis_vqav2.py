"""lmms-eval's own ``vqav2_val`` task on the VQAv2 miniature: VQA accuracy over answer dicts, as by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task, vqa_accuracy

from evaluation.minis import vqav2

TASK_YAML = "vqav2/vqav2_val.yaml"
# question_id -> (prediction, the word it normalises to, how many of the row's ten answers are that word)
TABLE = {
    262148002: ("Red.", "red", 10),
    262165002: ("green", "green", 3),
    262182002: ("blue", "blue", 2),
    262199002: ("yellow", "yellow", 1),
    262216002: ("purple", "purple", 0),
    262233002: ("Orange", "orange", 4),
    262250002: ("a red", "red", 10),  # article dropped
    262267002: ("blue", "blue", 3),  # any annotator's answer counts, not only the square's colour
}
# By hand (vqa_accuracy): 1, 0.9, 0.6, 0.3, 0, 1, 1, 0.9 -> 5.7 / 8
EXPECTED = 5.7 / 8


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return vqav2.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_splits_and_columns(mini):
    assert vqav2.REPO_ID == installed_dataset_path(TASK_YAML)
    for split in ("validation", "testdev", "test"):
        data = load_split(mini, split=split)
        assert data.features == vqav2.features() and len(data) == 8
    validation = load_split(mini, split="validation")
    assert all([answer["answer_id"] for answer in answers] == list(range(1, 11)) for answers in validation["answers"])


def test_lmms_eval_vqav2_val_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "vqav2_val", TASK_YAML, mini, lambda doc: TABLE[doc["question_id"]][0])
    assert_hand_scores_match(run, "vqav2", lambda doc: TABLE[doc["question_id"]][0])

    counts = {
        doc["question_id"]: [answer["answer"] for answer in doc["answers"]].count(TABLE[doc["question_id"]][1])
        for doc in run.docs.values()
    }
    assert counts == {qid: matches for qid, (_, _, matches) in TABLE.items()}
    assert sum(vqa_accuracy(matches) for _, _, matches in TABLE.values()) / len(TABLE) == pytest.approx(EXPECTED)
    assert run.results["exact_match,none"] == pytest.approx(EXPECTED)
    assert run.prompts[0] == f"{run.docs[0]['question']}\nAnswer the question using a single word or phrase."
