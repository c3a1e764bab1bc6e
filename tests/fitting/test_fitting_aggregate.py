"""Benchmark normalisation, suite averages and stated exclusions."""
import pandas as pd
import pytest

from fitting import SUITES, AggregationError, BenchmarkNormalisation, aggregate

REASONING_FRACTIONS = {"gqa": ("exact_match", 0.6), "ai2d": ("exact_match", 0.5), "mmbench": ("gpt_eval_score", 0.7),
                       "mmmu": ("mmmu_acc", 0.3), "scienceqa_img": ("exact_match", 0.65),
                       "mathvista": ("llm_as_judge_eval", 0.25), "chartqa": ("relaxed_overall", 0.2)}


def rows(checkpoint, skip=()):
    table = [(checkpoint, "mme", "mme_perception_score", 1400.0), (checkpoint, "mme", "mme_cognition_score", 280.0),
             (checkpoint, "pope", "pope_accuracy", 0.99), (checkpoint, "pope", "pope_f1_score", 0.85)]
    table += [(checkpoint, benchmark, metric, value) for benchmark, (metric, value) in REASONING_FRACTIONS.items()]
    table += [(checkpoint, "vizwiz", "exact_match", 0.4)]
    return [row for row in table if row[1] not in skip]


def test_reasoning_suite_average_with_mme_points_and_pope_f1():
    result = aggregate(pd.DataFrame(rows("ckpt-a"), columns=["checkpoint", "benchmark", "metric", "value"]))
    errors = result.benchmarks.set_index("benchmark")["error"]
    assert errors["mme"] == pytest.approx(1 - 1680 / 2800)
    assert errors["pope"] == pytest.approx(0.15)
    expected = (errors["mme"] + 0.15 + sum(1 - v for _, v in REASONING_FRACTIONS.values())) / 9
    suite = result.suites.set_index("suite").loc["reasoning"]
    assert suite["error"] == pytest.approx(expected) and suite["n_benchmarks"] == 9
    assert "vizwiz" not in errors.index
    assert result.exclusions.set_index("suite").loc["ocr", "reason"] == "missing 2 of 2 benchmarks: textvqa, docvqa"


def test_missing_benchmark_excludes_checkpoint_with_reason():
    table = pd.DataFrame(rows("full") + rows("partial", skip=("mathvista",)),
                         columns=["checkpoint", "benchmark", "metric", "value"])
    result = aggregate(table)
    assert result.suites.query("suite == 'reasoning'")["checkpoint"].tolist() == ["full"]
    excluded = result.exclusions.query("checkpoint == 'partial' and suite == 'reasoning'").iloc[0]
    assert excluded["missing"] == ["mathvista"]
    assert excluded["reason"] == "missing 1 of 9 benchmarks: mathvista"


def test_percent_values_need_and_get_their_unit():
    table = pd.DataFrame([("c", "textvqa", "exact_match", 55.0, "percent"), ("c", "docvqa", "anls", 0.45, "fraction")],
                         columns=["checkpoint", "benchmark", "metric", "value", "unit"])
    assert aggregate(table).suites.set_index("suite").loc["ocr", "error"] == pytest.approx(0.5)
    with pytest.raises(AggregationError, match=r"textvqa score 55 for checkpoint 'c' is outside \[0, 1\].*unit='percent': rows \[0\]"):
        aggregate(table.drop(columns="unit"))


def test_lower_is_better_metrics_use_the_value_as_error():
    table = pd.DataFrame([("c", "gqa", "exact_match", 0.3, False)],
                         columns=["checkpoint", "benchmark", "metric", "value", "higher_is_better"])
    assert aggregate(table).benchmarks["error"].iloc[0] == pytest.approx(0.3)


def test_callers_extend_the_table_with_a_synthetic_suite():
    benchmarks = {"shapes": BenchmarkNormalisation("shapes", ("accuracy",)),
                  "glyphs": BenchmarkNormalisation("glyphs", ("accuracy",))}
    table = pd.DataFrame([("c", "shapes", "accuracy", 0.9), ("c", "glyphs", "accuracy", 0.7)],
                         columns=["checkpoint", "benchmark", "metric", "value"])
    result = aggregate(table, benchmarks=benchmarks, suites={"synthetic": ("shapes", "glyphs")})
    assert result.suites["error"].iloc[0] == pytest.approx(0.2)
    assert "synthetic" not in SUITES


def test_duplicate_results_are_rejected():
    table = pd.DataFrame([("c", "gqa", "exact_match", 0.3), ("c", "gqa", "exact_match", 0.4)],
                         columns=["checkpoint", "benchmark", "metric", "value"])
    with pytest.raises(AggregationError, match=r"several values for one \(checkpoint, benchmark, metric\): rows \[0, 1\]"):
        aggregate(table)
