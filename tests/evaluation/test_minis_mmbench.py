"""lmms-eval's own MMBench tasks on the MMBench miniature: circular evaluation scored as by hand, rule-based
(``mmbench_en_dev_static``) and with an LLM judge (``mmbench_en_dev``, tests/judge_server.py)."""

import pytest
from judge_server import JudgeServer
from minis_runner import assert_hand_scores_match, installed_dataset_path, load_split, run_task

from evaluation.judges import JudgeConfig, judge_transport
from evaluation.minis import mmbench

TASK_YAML = "mmbench/mmbench_en_dev.yaml"
STATIC_YAML = "mmbench/mmbench_en_dev_static.yaml"
# index -> (the mini's answer, the scripted prediction). A group (index % 1e6: the original and its rotated
# copies) is right only if all its rows are. Rules first, for every row of the group: one bare letter among
# the words, else one letter wrapped as "C." / "(C)" / ..., else one option's text; a wrong one loses the group.
# Rows no rule reads go to mcq_extract (static) or the judge, in index order.
TABLE = {
    1: ("B", "B"),  # the plain letter (the question with a hint)
    2: ("C", "(C)"),  # "(X)"
    3: ("A", "left"),  # option A's text only (the three-option question)
    4: ("D", "D"),
    1000004: ("C", "C."),
    2000004: ("B", "A"),  # wrong: group 4 is lost, whatever the rest says
    3000004: ("A", "The one at the top"),  # no rule reads it, and nothing is asked: the group is lost already
    5: ("A", "A"),
    1000005: ("D", "The answer is D"),  # the one bare letter among the words
    2000005: ("C", "Clearly twelve"),  # no rule reads it; static: the capital C of "Clearly" (right, by luck)
    3000005: ("B", "B"),
    6: ("B", "Definitely the brick"),  # option B's text
    1000006: ("A", "Bricks are heavier than feathers"),  # no rule reads it; static: the B of "Bricks" (wrong)
}
# By hand, static: groups 1, 2, 3, 5 right; 4 (2000004 wrong) and 6 (1000006 read as B) wrong: 4/6.
STATIC = 100 * 4 / 6
# The judge's letters for the predictions no rule reads; 3000004 is never asked about (group 4 already lost).
JUDGE = {"Clearly twelve": "C", "Bricks are heavier than feathers": "A"}
JUDGED = [2000005, 1000006]  # in the order lmms-eval asks
# By hand, judged: group 6 is right now (A): groups 1, 2, 3, 5, 6 of 6.
WITH_JUDGE = 100 * 5 / 6


def prediction(doc):
    return TABLE[doc["index"]][1]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return mmbench.write(tmp_path_factory.mktemp("mirror"), rows_per_split=6, seed=0)


def test_the_mini_is_the_repo_the_tasks_read_with_the_hubs_config_and_columns(mini):
    assert mmbench.REPO_ID == installed_dataset_path(TASK_YAML) == installed_dataset_path(STATIC_YAML)
    dev = load_split(mini, "en", split="dev")
    assert dev.features == mmbench.features() and len(dev) == len(TABLE)
    rows = {row["index"]: row for row in dev}
    assert {index: row["answer"] for index, row in rows.items()} == {index: truth for index, (truth, _) in
                                                                     TABLE.items()}
    assert sorted(index for index, row in rows.items() if row["hint"] is not None) == [1, 5, 1000005, 2000005, 3000005]
    assert [index for index, row in rows.items() if row["D"] is None] == [3, 6, 1000006]
    assert set(dev["split"]) == {"dev"} and set(dev["comment"]) == {None}
    # a circular copy: the options rotated one place, the answer letter moved with its option
    assert [rows[1000004][x] for x in "ABCD"] == [rows[4][x] for x in "BCDA"]
    assert rows[1000004][rows[1000004]["answer"]] == rows[4][rows[4]["answer"]] == "a clock"
    assert rows[1000004]["image"].tobytes() == rows[4]["image"].tobytes()


def test_the_hand_rule_refuses_a_prediction_only_the_judge_reads_without_its_letter():
    from minis_expected import hand_scores

    docs = [{"index": 1, "answer": "B", "A": "red", "B": "blue", "C": None, "D": None}]
    with pytest.raises(LookupError, match="lmms-eval asks the judge"):
        hand_scores("mmbench", docs, ["I cannot tell"])
    assert hand_scores("mmbench", docs, ["I cannot tell"], judge_letters={1: "B"}) == {"gpt_eval_score": 100.0}
    assert hand_scores("mmbench", docs, ["I cannot tell"], rule_based=True) == {"gpt_eval_score": 0.0}


def test_lmms_eval_mmbench_static_scores_the_scripted_predictions_as_by_hand(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.chdir(tmp_path)  # the aggregations write ./submissions/
    run = run_task(tmp_path, "mmbench_en_dev_static", STATIC_YAML, mini, prediction)
    assert_hand_scores_match(run, "mmbench", prediction, rule_based=True)

    assert run.results["gpt_eval_score,none"] == pytest.approx(STATIC)
    prompts = {doc["index"]: run.prompts[doc_id] for doc_id, doc in run.docs.items()}
    post = "\n\nAnswer with the option's letter from the given choices directly."
    assert prompts[1] == ("The picture shows a shelf in a toy shop. What colour is the ball on the shelf? There are "
                          "several options:\nA. red\nB. blue\nC. green\nD. yellow" + post)
    assert prompts[3] == ("Where is the cup in the image? There are several options:\nA. left\nB. right\nC. centre"
                          + post)  # no hint, no D


def test_lmms_eval_mmbench_with_a_judge_asks_it_only_what_no_rule_reads(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.chdir(tmp_path)

    def reply(prompt: str) -> str:
        return JUDGE[prompt.rsplit("\nAnswer: ", 1)[1].removesuffix("\nYour output: ")]

    with JudgeServer(reply) as server, judge_transport(JudgeConfig(server.url, server.model)) as client:
        run = run_task(tmp_path, "mmbench_en_dev", TASK_YAML, mini, prediction)
    judge_letters = {index: JUDGE[TABLE[index][1]] for index in JUDGED}
    assert_hand_scores_match(run, "mmbench", prediction, judge_letters=judge_letters)

    assert run.results["gpt_eval_score,none"] == pytest.approx(WITH_JUDGE)
    assert len(server.requests) == client.calls == len(JUDGED)
    assert all(payload["model"] == "judge-model" for payload in server.requests)
    for index, prompt in zip(JUDGED, server.prompts()):
        assert prompt.endswith(f"\nAnswer: {TABLE[index][1]}\nYour output: "), prompt
    rows = {doc["index"]: doc for doc in run.docs.values()}
    options = "".join(f"{x}. {rows[2000005][x]}\n" for x in "ABCD")
    assert f"Options: There are several options: \n{options}\nAnswer: Clearly twelve" in server.prompts()[0]
