"""lmms-eval's own ``mathvista_testmini_format`` on the MathVista miniature, with an LLM judge
(tests/judge_server.py) extracting the answers the task does not parse itself: accuracy as by hand."""

import pytest
from judge_server import JudgeServer
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.judges import JudgeConfig, judge_transport
from evaluation.minis import mathvista

TASK_YAML = "mathvista/mathvista_testmini_format.yaml"
# pid -> (the mini's answer, the response, the judge's extraction (None: not asked), right by hand). The task
# parses a response itself only when it is one of the choices' texts, or the integer / float the question asks
# for (an empty one is kept empty); anything else goes to the judge. Then: a letter names its choice, other text
# the closest choice (edit distance); integers through int(float(...)); floats are rounded to the dataset's
# precision, a float (1.0), which round() refuses: None, so a float answer is never right.
TABLE = {
    "1": ("4", "B", "B", True),  # a letter is not a choice's text: the judge extracts "B", choice B is "4"
    "2": ("blue", "blue", None, True),  # the choice's text itself
    "3": ("12", "12", None, True),  # an integer
    "4": ("7", "The bar is 8 cm long.", "8", False),
    "5": ("2.5", "2.5", None, False),  # the exact float, wrong: round(2.5, 1.0) raises
    "6": ("0.25", "one quarter", "0.25", False),  # the judge gets it right; the same float problem
    "7": ("[2007, 2008]", "From 2007 to 2008", "[2007, 2008]", True),  # a list, compared as text
    "8": ("No", "", None, True),  # no response: the closest choice to "" is the shorter, "No" (right!)
}
# By hand: 1, 2, 3, 7, 8 right: 5 / 8 = 62.5 %.
EXPECTED = 62.5
# All wrong (the float answers exact): lmms-eval's aggregation reports None, not 0.
ALL_WRONG = {"1": "5", "2": "red", "3": "13", "4": "6", "5": "2.5", "6": "0.25", "7": "2006 and 2007", "8": "Yes"}


def judge_reply(extractions: dict):
    """The judge: the extraction for the response in the prompt (query, response, "Extracted answer: ")."""
    def reply(prompt: str) -> str:
        return extractions[prompt.removesuffix("\n\nExtracted answer: ").rsplit("\n\n", 1)[1]]

    return reply


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return mathvista.write(tmp_path_factory.mktemp("mirror"), rows_per_split=8, seed=0)


def test_the_mini_is_the_repo_the_task_reads_with_the_hubs_split_and_columns(mini):
    assert mathvista.REPO_ID == installed_dataset_path(TASK_YAML)
    testmini = load_split(mini, split="testmini")
    assert testmini.features == mathvista.features() and len(testmini) == 8
    rows = {row["pid"]: row for row in testmini}
    assert {pid: row["answer"] for pid, row in rows.items()} == {pid: row[0] for pid, row in TABLE.items()}
    assert {pid: row["answer_type"] for pid, row in rows.items() if row["question_type"] == "free_form"} == {
        "3": "integer", "4": "integer", "5": "float", "6": "float", "7": "list"}
    assert [pid for pid, row in rows.items() if row["choices"] is not None] == ["1", "2", "8"]
    assert {pid: row["precision"] for pid, row in rows.items() if row["precision"] is not None} == {"5": 1.0, "6": 2.0}
    assert rows["4"]["unit"] == "cm" and rows["1"]["image"] == "images/1.jpg"
    assert rows["1"]["query"].endswith("Question: How many sides does the shape in the figure have?\nChoices:\n"
                                       "(A) 3\n(B) 4\n(C) 5\n(D) 6")
    metadata = rows["5"]["metadata"]
    assert (metadata["split"], metadata["language"], metadata["skills"]) == ("testmini", "english",
                                                                             ["statistical reasoning"])
    assert (metadata["img_width"], metadata["img_height"]) == rows["5"]["decoded_image"].size


def test_the_hand_rule_refuses_a_response_only_the_judge_reads_without_its_extraction():
    from minis_expected import hand_scores

    doc = {"pid": "9", "question_type": "free_form", "answer_type": "integer", "choices": None, "precision": None,
           "answer": "3"}
    with pytest.raises(LookupError, match="asks the judge"):
        hand_scores("mathvista", [doc], ["three"])
    assert hand_scores("mathvista", [doc], ["three"], judge_extractions={"9": "3"}) == {"llm_as_judge_eval": 100.0}
    assert hand_scores("mathvista", [doc], ["3.0"], judge_extractions={"9": "3.0"}) == {"llm_as_judge_eval": 100.0}


def test_lmms_eval_mathvista_with_a_judge_scores_the_scripted_responses_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    judged = {pid: row for pid, row in TABLE.items() if row[2] is not None}
    with JudgeServer(judge_reply({row[1]: row[2] for row in judged.values()})) as server:
        with judge_transport(JudgeConfig(server.url, server.model)) as client:
            run = run_task(tmp_path, "mathvista_testmini_format", TASK_YAML, mini, lambda doc: TABLE[doc["pid"]][1])
    extractions = {pid: row[2] for pid, row in judged.items()}
    assert_hand_scores_match(run, "mathvista", lambda doc: TABLE[doc["pid"]][1], judge_extractions=extractions)

    assert sum(right for *_, right in TABLE.values()) / len(TABLE) * 100 == EXPECTED
    assert run.results["llm_as_judge_eval,none"] == EXPECTED
    # the judge was asked exactly about the responses the task does not parse, each with its query
    assert len(server.requests) == client.calls == len(judged)
    docs = {doc["pid"]: doc for doc in run.docs.values()}
    for pid, prompt in zip(judged, server.prompts()):
        assert prompt.endswith(f"\n\n{docs[pid]['query']}\n\n{TABLE[pid][1]}\n\nExtracted answer: "), prompt
    prompts = {doc["pid"]: run.prompts[doc_id] for doc_id, doc in run.docs.items()}
    assert prompts["1"] == ("How many sides does the shape in the figure have?\nA. 3\nB. 4\nC. 5\nD. 6\n"
                            "Answer with the option's letter from the given choices directly.")
    assert prompts["4"] == "How long is the blue bar? (Unit: cm)\nAnswer the question using a single integer number."
    assert prompts["5"] == ("What is the value of the green bar?\nAnswer the question using a single floating-point "
                            "number with one decimal place.")


def test_lmms_eval_mathvista_reports_none_for_no_right_answer(tmp_path, monkeypatch, mini):
    from minis_expected import hand_scores

    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    with JudgeServer(judge_reply({"2006 and 2007": "[2006, 2007]"})) as server:
        with judge_transport(JudgeConfig(server.url, server.model)):
            run = run_task(tmp_path, "mathvista_testmini_format", TASK_YAML, mini, lambda doc: ALL_WRONG[doc["pid"]])
    assert len(server.requests) == 1  # only the list question's response needs the judge
    docs = list(run.docs.values())
    hand = hand_scores("mathvista", docs, [ALL_WRONG[doc["pid"]] for doc in docs],
                       judge_extractions={"7": "[2006, 2007]"})
    assert hand == {"llm_as_judge_eval": 0.0} and run.results["llm_as_judge_eval,none"] is None
