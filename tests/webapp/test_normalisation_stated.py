"""Each benchmark states how its result becomes the normalised score (evaluation.suites.normalisation_text): on the
suite page, in the leaderboard's column tooltips and its API, and (checked here) in README's benchmarks table."""

from pathlib import Path

import pytest

from evaluation.suites import BENCHMARKS, normalisation_text

pytestmark = pytest.mark.django_db
README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_texts_say_what_the_aggregation_computes():
    assert normalisation_text(BENCHMARKS["mme"]) == (
        "score = (perception + cognition) / 2800; lmms-eval metrics mme_perception_score + mme_cognition_score")
    assert normalisation_text(BENCHMARKS["pope"]) == "score = F1; lmms-eval metric pope_f1_score"
    assert normalisation_text(BENCHMARKS["mmbench"]).startswith("score = GPT-judged accuracy % / 100;")


def test_the_suite_page_lists_each_benchmarks_normalisation(client):
    page = client.get("/suites/", {"suite": "reasoning"}).content.decode()
    for key in ("mme", "pope", "mmbench"):
        assert normalisation_text(BENCHMARKS[key]) in page


def test_the_leaderboard_states_them_in_headers_and_api(client):
    page = client.get("/leaderboard/", {"suite": "reasoning"}).content.decode()
    body = client.get("/api/v1/leaderboard/", {"suite": "reasoning"}).json()
    assert body["normalisations"]["mme"] == normalisation_text(BENCHMARKS["mme"])
    assert 'title="Normalised score on mme: score = (perception + cognition) / 2800' in page


def test_readme_lists_every_benchmark_with_its_normalisation():
    text = README.read_text()
    for benchmark in BENCHMARKS.values():
        suites = ", ".join(benchmark.suites)
        row = f"| `{benchmark.key}` | {suites} | `{benchmark.task}` | {normalisation_text(benchmark)} |"
        assert row in text
