"""lmms-eval's own ``ai2d`` task on the AI2D miniature: exact match after its letter filter, as by hand."""

import pytest
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.minis import ai2d

# diagram number -> (target letter "ABCD"[int(answer)], prediction, score by hand). lmms-eval's
# "flexible-extract" filter keeps X from a response starting "X."; the stripped result must then equal the
# letter, ignoring case and punctuation.
TABLE = {
    1: ("A", "A", 1.0),
    2: ("B", "b", 1.0),  # case ignored
    3: ("C", "C. an organism", 1.0),  # the filter keeps "C"
    4: ("D", "(D)", 1.0),  # punctuation ignored
    5: ("A", " a\n", 1.0),  # lmms-eval strips the response first
    6: ("B", "C", 0.0),
    7: ("C", "The answer is C", 0.0),  # no answer extraction beyond "X."
    8: ("D", "owl", 0.0),  # the option's text is not its letter
}
METRIC = "exact_match,flexible-extract"


def _diagram(doc) -> int:
    return int(doc["question"].split("(diagram ")[1].split(")")[0])


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return ai2d.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_columns(mini):
    assert ai2d.REPO_ID == installed_dataset_path("ai2d/ai2d.yaml")
    test = load_split(mini, split="test")
    assert test.features == ai2d.features() and len(test) == 8
    assert all(len(options) == 4 for options in test["options"])


def test_lmms_eval_ai2d_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    run = run_task(tmp_path, "ai2d", "ai2d/ai2d.yaml", mini, lambda doc: TABLE[_diagram(doc)][1])
    assert_hand_scores_match(run, "ai2d", lambda doc: TABLE[_diagram(doc)][1], "flexible-extract")

    assert {_diagram(doc): "ABCD"[int(doc["answer"])] for doc in run.docs.values()} == {
        diagram: letter for diagram, (letter, _, _) in TABLE.items()
    }
    expected = sum(score for _, _, score in TABLE.values()) / len(TABLE)  # 5 / 8
    assert run.results[METRIC] == pytest.approx(expected) == 0.625
    first = run.docs[0]
    options = "\n".join(f"{letter}. {option}" for letter, option in zip("ABCD", first["options"]))
    assert run.prompts[0] == (
        f"{first['question']}\n{options}\nAnswer with the option's letter from the given choices directly."
    )
