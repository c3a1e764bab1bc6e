"""lmms-eval's own ``gqa`` task on the GQA miniature: exact match as by hand, images joined from the second config.

GQA's ``process_docs`` loads ``lmms-lab-encoder/GQA`` / ``testdev_balanced_images`` by hub id, past the task's
``dataset_path``: the run answers hub ids from the mirror root (``hub_ids_from``), as a mirror must.
"""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, installed_task_yaml, load_split, run_task

from evaluation.minis import gqa

TASK_YAML = "gqa/gqa.yaml"
# picture number -> (the mini's answer, prediction, score by hand): the stripped prediction must equal the
# answer, ignoring case and punctuation (no article removal, no stemming).
TABLE = {
    1: ("cup", "cup", 1.0),
    2: ("yes", "Yes.", 1.0),
    3: ("lamp", "a lamp", 0.0),
    4: ("no", "no", 1.0),
    5: ("cup", "cups", 0.0),
    6: ("yes", "no", 0.0),
    7: ("plate", "PLATE", 1.0),
    8: ("no", " no\n", 1.0),
}


def _picture(doc) -> int:
    return int(doc["question"].rstrip("?").split()[-1])


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    gqa.write(root, rows_per_split=8, seed=0)
    return root


def test_the_mini_holds_both_configs_the_task_reads(mirror):
    from lmms_eval.utils import load_yaml_config

    assert gqa.REPO_ID == installed_dataset_path(TASK_YAML)
    assert load_yaml_config(str(installed_task_yaml(TASK_YAML)), mode="simple")["dataset_name"] == gqa.CONFIG
    utils = (installed_task_yaml(TASK_YAML).parent / "utils.py").read_text()
    assert f'"{gqa.REPO_ID}", "{gqa.IMAGES_CONFIG}", split="{gqa.SPLIT}"' in utils  # the second, by-id load
    questions = load_split(mirror / gqa.REPO_ID, gqa.CONFIG, split=gqa.SPLIT)
    images = load_split(mirror / gqa.REPO_ID, gqa.IMAGES_CONFIG, split=gqa.SPLIT)
    assert questions.features == gqa.features() and len(questions) == 8
    assert images.features == gqa.image_features() and set(questions["imageId"]) == set(images["id"])


def test_lmms_eval_gqa_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "gqa", TASK_YAML, mirror / gqa.REPO_ID, lambda doc: TABLE[_picture(doc)][1],
                   mirror_root=mirror)
    assert_hand_scores_match(run, "gqa", lambda doc: TABLE[_picture(doc)][1])

    assert {_picture(doc): doc["answer"] for doc in run.docs.values()} == {
        picture: answer for picture, (answer, _, _) in TABLE.items()
    }
    expected = sum(score for _, _, score in TABLE.values()) / len(TABLE)  # 5 / 8
    assert run.results["exact_match,none"] == pytest.approx(expected) == 0.625
    assert run.prompts[0] == f"{run.docs[0]['question']}\nAnswer the question using a single word or phrase."
