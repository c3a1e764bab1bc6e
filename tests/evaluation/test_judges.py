"""evaluation.judges against lmms-eval 0.7.3's own MMBench and MathVista judge code and an OpenAI-compatible server
on 127.0.0.1 (tests/judge_server.py): which judge, the transport, failures that can no longer become random
letters, the plan without a judge, and the stamp."""

import hashlib
import socket
import time

import pytest
from judge_server import JudgeServer

from evaluation import judges
from evaluation.judges import JudgeConfig, JudgeFailed, JudgeUnavailable, judge_transport

MMBENCH_ITEM = {"index": 3, "question": "What is drawn", "A": "a red square", "B": "a blue circle", "C": "a star",
                "D": "a cat", "answer": "B", "prediction": "I think it is round"}  # no letter, no option text


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_the_judge_is_read_from_the_environment_and_a_half_configuration_says_what_is_missing():
    assert JudgeConfig.from_env({}) is None
    config = JudgeConfig.from_env({"FRONTIER_JUDGE_URL": "http://user:secret@judge.lan:8000/v1/chat/completions/",
                                   "FRONTIER_JUDGE_MODEL": "qwen2.5-7b", "FRONTIER_JUDGE_API_KEY": "k"})
    assert (config.url, config.model, config.api_key) == ("http://user:secret@judge.lan:8000/v1", "qwen2.5-7b", "k")
    assert config.endpoint == "http://judge.lan:8000/v1" and "k" not in repr(config)  # no credentials shown
    with pytest.raises(JudgeUnavailable, match="FRONTIER_JUDGE_MODEL is not"):
        JudgeConfig.from_env({"FRONTIER_JUDGE_URL": "http://127.0.0.1:8000/v1"})
    with pytest.raises(JudgeUnavailable, match="not an http"):
        JudgeConfig.from_env({"FRONTIER_JUDGE_URL": "127.0.0.1:8000", "FRONTIER_JUDGE_MODEL": "m"})
    assert JudgeUnavailable.failure_class == "judge_unavailable"


def test_probe_names_the_server_and_refuses_a_wrong_model_or_a_dead_endpoint():
    with JudgeServer(lambda text: "A", owned_by="vllm") as server:
        assert judges.JudgeClient(JudgeConfig(server.url, server.model)).probe() == "vllm"
        with pytest.raises(JudgeUnavailable, match="does not serve 'other'.*it serves judge-model"):
            judges.JudgeClient(JudgeConfig(server.url, "other")).probe()
    started = time.monotonic()
    with pytest.raises(JudgeUnavailable, match="does not answer.*FRONTIER_JUDGE_URL"):
        judges.JudgeClient(JudgeConfig(_closed_port_url(), "m")).probe()
    assert time.monotonic() - started < 5


def test_mmbench_judge_requests_go_to_the_configured_server_with_its_model_and_key():
    from lmms_eval.tasks.mmbench.mmbench_evals import MMBench_Evaluator

    original = MMBench_Evaluator.__dict__["_post_request"]
    with JudgeServer(lambda text: "B") as server:
        with judge_transport(JudgeConfig(server.url, server.model, api_key="sk-test")) as client:
            letter, raw = MMBench_Evaluator(model_version="gpt-4o-2024-11-20").extract_answer_from_item(
                dict(MMBENCH_ITEM))
        assert (letter, raw, client.calls) == ("B", "B", 1)
        (payload,) = server.requests
        assert payload["model"] == "judge-model"  # not lmms-eval's default vendor model
        assert "Answer: I think it is round\nYour output: " in server.prompts()[0]
        assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert MMBench_Evaluator.__dict__["_post_request"] is original  # restored


def test_a_failing_judge_stops_mmbench_instead_of_a_random_letter():
    """lmms-eval alone retries, then returns a random letter ("Failed to predict, thus randomly generate one")."""
    from lmms_eval.tasks.mmbench.mmbench_evals import MMBench_Evaluator

    with JudgeServer(lambda text: "B") as server:
        server.failing = True
        with judge_transport(JudgeConfig(server.url, server.model)):
            started = time.monotonic()
            with pytest.raises(JudgeFailed, match="judge-model at http://127.0.0.1.*503"):
                MMBench_Evaluator().extract_answer_from_item(dict(MMBENCH_ITEM))
            assert time.monotonic() - started < 5  # no sleeping retries
        assert len(server.requests) == 1
    with judge_transport(None):
        with pytest.raises(JudgeFailed, match="no judge is configured.*FRONTIER_JUDGE_URL"):
            MMBench_Evaluator().extract_answer_from_item(dict(MMBENCH_ITEM))
    assert isinstance(JudgeFailed("x"), BaseException) and not isinstance(JudgeFailed("x"), Exception)


def test_mathvista_extraction_asks_the_configured_judge_and_a_failure_is_not_an_empty_answer():
    """lmms-eval alone returns "" after failed requests, which normalisation turns into the most similar choice."""
    from lmms_eval.tasks.mathvista.mathvista_evals import MathVistaEvaluator

    problem = {"question_type": "free_form", "answer_type": "integer", "choices": None, "query": "How many dots?"}
    with JudgeServer(lambda text: "7") as server:
        with judge_transport(JudgeConfig(server.url, server.model)) as client:
            assert MathVistaEvaluator().extract_answer("I count seven dots.", problem) == "7"
            assert MathVistaEvaluator().extract_answer("12", problem) == "12"  # parsed without the judge
        assert client.calls == 1 and len(server.requests) == 1
        prompt = server.prompts()[0]
        assert prompt.endswith("How many dots?\n\nI count seven dots.\n\nExtracted answer: ")
        server.failing = True
        with judge_transport(JudgeConfig(server.url, server.model)):
            with pytest.raises(JudgeFailed):
                MathVistaEvaluator().extract_answer("I count seven dots.", problem)


def test_without_a_judge_mmbench_runs_its_rule_based_task_and_mathvista_is_refused(monkeypatch):
    for variable in ("FRONTIER_JUDGE_URL", "FRONTIER_JUDGE_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    assert judges.plan(["pope", "gqa"]) == (None, {"pope": "pope", "gqa": "gqa"}, False)
    assert judges.plan(["mmbench_en_dev", "pope"]) == (
        None, {"mmbench_en_dev": "mmbench_en_dev_static", "pope": "pope"}, False)
    with pytest.raises(JudgeUnavailable, match="mathvista.*no rule-based variant.*FRONTIER_JUDGE_URL"):
        judges.plan(["mathvista_testmini_format"])
    monkeypatch.setenv("FRONTIER_JUDGE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FRONTIER_JUDGE_MODEL", "m")
    config, ran, judged = judges.plan(["mmbench_en_dev", "mathvista_testmini_format"])
    assert (config.model, judged) == ("m", True)
    assert ran == {"mmbench_en_dev": "mmbench_en_dev", "mathvista_testmini_format": "mathvista_testmini_format"}


def test_the_stamp_names_the_judge_and_the_hash_of_the_prompt_lmms_eval_renders(monkeypatch):
    from lmms_eval.tasks.mathvista import mathvista_evals

    with JudgeServer(lambda text: "A", owned_by="llamacpp") as server:
        client = judges.JudgeClient(JudgeConfig(server.url, server.model))
        client.probe()
        tasks = {"mmbench_en_dev": {"judge": {"kind": "none"}}, "pope": {"judge": None}}
        judges.stamp_judges(tasks, {"mmbench_en_dev": "mmbench_en_dev", "pope": "pope"}, client)
    judge = tasks["mmbench_en_dev"]["judge"]
    assert judge == {"kind": "llm", "model": "judge-model", "endpoint": server.url, "server": "llamacpp",
                     "endpoint_kind": "openai-chat-completions", "prompt_sha256": judges.prompt_sha256("mmbench"),
                     "calls": 0}
    assert tasks["pope"]["judge"] is None
    assert judges.judge_label(judge) == f"judge-model (prompt {judge['prompt_sha256'][:12]})"

    rule = {"mmbench_en_dev_static": {"judge": {"kind": "none"}}}
    judges.stamp_judges(rule, {"mmbench_en_dev": "mmbench_en_dev_static"}, judges._NoJudge())
    assert rule["mmbench_en_dev_static"]["judge"]["kind"] == "rule-based"
    assert judges.judge_label(rule["mmbench_en_dev_static"]["judge"]) == "rule-based"

    before = judges.prompt_sha256("mathvista")
    monkeypatch.setattr(mathvista_evals, "DEMO_PROMPT", "Extract the answer.\n" + mathvista_evals.DEMO_PROMPT)
    assert judges.prompt_sha256("mathvista") != before  # the template, as rendered (stripped), is hashed
    assert len(before) == 64 and before != judges.prompt_sha256("mmbench")
    assert hashlib.sha256(b"").hexdigest() not in (before, judges.prompt_sha256("mmbench"))


def test_a_judge_that_never_names_a_letter_stops_mmbench_instead_of_a_random_letter():
    from lmms_eval.tasks.mmbench.mmbench_evals import MMBench_Evaluator

    original = MMBench_Evaluator.__dict__["extract_answer_from_item"]
    with JudgeServer(lambda text: "I cannot tell") as server, judge_transport(JudgeConfig(server.url, server.model)):
        with pytest.raises(JudgeFailed, match="no usable option letter for MMBench item 3 in three tries"):
            MMBench_Evaluator().extract_answer_from_item(dict(MMBENCH_ITEM))
        assert len(server.requests) == 3  # lmms-eval's own three tries, then no random draw
    with JudgeServer(lambda text: "") as server, judge_transport(JudgeConfig(server.url, server.model)):
        with pytest.raises(JudgeFailed, match="empty message"):
            MMBench_Evaluator().extract_answer_from_item(dict(MMBENCH_ITEM))
    assert MMBench_Evaluator.__dict__["extract_answer_from_item"] is original  # restored
    letter, _ = MMBench_Evaluator().extract_answer_from_item({**MMBENCH_ITEM, "prediction": "B"})
    assert letter == "B"  # outside the transport, lmms-eval's own method again (no judge needed here)
