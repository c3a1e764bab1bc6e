"""Results of LLM-judged benchmarks keep their judge (evaluation.judges): the leaderboard (API, CSV, page) names each
score's judge and says when a benchmark's scores come from different judges instead of ranking them together
silently; a rule-based MMBench result (mmbench_en_dev_static, run without a judge) is current, not stale."""

import pytest

from evaluation.suites import BENCHMARKS
from evaluation.task_identity import task_identity
from tests.factories import ready_checkpoint, record_result
from webapp.registry.models import BenchmarkSuite, EvaluationRun, SuiteScore

pytestmark = pytest.mark.django_db
LLM_JUDGE = {"kind": "llm", "model": "qwen2.5-7b", "endpoint": "http://judge:8000/v1", "server": "vllm",
             "endpoint_kind": "openai-chat-completions", "prompt_sha256": "ab" * 32, "calls": 3}
RULE_BASED = {"kind": "rule-based", "task": "mmbench_en_dev_static", "rule": "lmms-eval's rule-based extraction"}
LLM_LABEL = f"qwen2.5-7b (prompt {'ab' * 6})"


def mmbench_stamp(judge: dict) -> dict:
    """The stamp the harness writes: keyed by the task it ran (the static variant when no judge was configured)."""
    task = judge.get("task", "mmbench_en_dev")
    return {"tasks": {task: {"task_hash": task_identity(task)["yaml_sha256"], "generation_kwargs": {},
                             "judge": judge}}}


def mmbench_result(name: str, tokens: int, value: float, judge: dict):
    """A checkpoint with every reasoning benchmark (a score needs them all): MMBench judged by ``judge``,
    MathVista by the LLM judge, the others plain."""
    checkpoint = ready_checkpoint(name=name, tokens=tokens, n_params=2_000_000)
    run = EvaluationRun.objects.create(checkpoint=checkpoint, suite=BenchmarkSuite.objects.get(name="reasoning"))
    for key, benchmark in BENCHMARKS.items():
        if benchmark.suite != "reasoning":
            continue
        entry = {"task_hash": task_identity(benchmark.task)["yaml_sha256"],
                 "judge": LLM_JUDGE if key == "mathvista" else None}
        stamp = mmbench_stamp(judge) if key == "mmbench" else {"tasks": {benchmark.task: entry}}
        for metric in benchmark.metrics:
            plain = 0.5 * benchmark.full_scale / len(benchmark.metrics) * (100 if benchmark.unit == "percent" else 1)
            record_result(run, key, value if key == "mmbench" else plain, metric=metric, stamp=stamp)
    return checkpoint


@pytest.fixture
def mixed(db):
    return [mmbench_result("judged-a", 4, 61.0, LLM_JUDGE), mmbench_result("judged-b", 16, 64.0, LLM_JUDGE),
            mmbench_result("rules", 36, 70.0, RULE_BASED)]


def test_each_result_keeps_its_judge_and_a_rule_based_result_is_current(mixed):
    identities = dict(SuiteScore.objects.values_list("checkpoint__name", "benchmark_identities"))
    assert identities["judged-a"]["mmbench"]["judge"] == LLM_LABEL
    assert identities["rules"]["mmbench"] == {
        "task": "mmbench_en_dev_static", "task_hash": task_identity("mmbench_en_dev_static")["yaml_sha256"],
        "dataset_revision": None, "judge": "rule-based"}


def test_the_leaderboard_names_each_scores_judge_and_the_mix(mixed, client):
    body = client.get("/api/v1/leaderboard/", {"suite": "reasoning"}).json()
    assert body["mixed_judges"] == {"mmbench": {LLM_LABEL: 2, "rule-based": 1}}
    rows = {row["name"]: row for row in body["results"]}
    assert rows["rules"]["judges"] == {"mmbench": "rule-based", "mathvista": LLM_LABEL}
    assert rows["judged-a"]["judges"] == {"mmbench": LLM_LABEL, "mathvista": LLM_LABEL}
    assert rows["rules"]["stale"] == {}  # its hash is the static task's, which is installed unchanged

    csv = client.get("/api/v1/leaderboard/", {"suite": "reasoning", "format": "csv"}).content.decode().splitlines()
    header = csv[0].split(",")
    assert {"stale", "judges"} <= set(header)
    assert any("mmbench=rule-based" in line for line in csv[1:])

    page = client.get("/leaderboard/", {"suite": "reasoning"}).content.decode()
    assert 'id="mixed-judges"' in page and "rule-based (1 checkpoint)" in page
    assert f"{LLM_LABEL} (2 checkpoints)" in page
    assert page.count('data-judge="rule-based"') == 1 and page.count(f'data-judge="{LLM_LABEL}"') == 2 + 3


def test_one_judge_throughout_is_not_flagged(db, client):
    mmbench_result("judged-a", 4, 61.0, LLM_JUDGE)
    mmbench_result("judged-b", 16, 64.0, LLM_JUDGE)
    body = client.get("/api/v1/leaderboard/", {"suite": "reasoning"}).json()
    assert body["mixed_judges"] == {}
    assert 'id="mixed-judges"' not in client.get("/leaderboard/", {"suite": "reasoning"}).content.decode()
