"""Benchmark normalisation, suite averages and stated exclusions."""
import numpy as np
import pandas as pd
import pytest

import fitting
from evaluation.suites import normalisations
from fitting import AggregationError, BenchmarkNormalisation
from fitting import aggregate as aggregate_with

PAPER = normalisations(("reasoning", "ocr"))  # the paper's suites, from the one benchmark table


def aggregate(table, benchmarks=None, suites=None):
    """The paper's suites unless a test passes its own."""
    return aggregate_with(table, PAPER[0] if benchmarks is None else benchmarks, PAPER[1] if suites is None else suites)

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
    assert not hasattr(fitting, "SUITES") and not hasattr(fitting, "BENCHMARKS")  # no table of its own


def test_duplicate_results_are_rejected():
    table = pd.DataFrame([("c", "gqa", "exact_match", 0.3), ("c", "gqa", "exact_match", 0.4)],
                         columns=["checkpoint", "benchmark", "metric", "value"])
    with pytest.raises(AggregationError, match=r"several values for one \(checkpoint, benchmark, metric\): rows \[0, 1\]"):
        aggregate(table)


SHAPES = {"shapes": BenchmarkNormalisation("shapes", ("accuracy",)),
          "glyphs": BenchmarkNormalisation("glyphs", ("top1", "top5"), full_scale=2.0),
          "colours": BenchmarkNormalisation("colours", ("accuracy",), higher_is_better=False)}


def test_rows_are_ordered_by_checkpoint_then_suite_order_with_missing_lists_in_member_order():
    # Suites and members deliberately not in alphabetical order; checkpoints arrive shuffled.
    suites = {"zeta": ("shapes", "glyphs"), "alpha": ("glyphs", "colours", "shapes")}
    table = pd.DataFrame([("c3", "shapes", "accuracy", 0.5), ("c1", "colours", "accuracy", 0.2),
                          ("c1", "shapes", "accuracy", 0.9), ("c2", "glyphs", "top1", 0.6),
                          ("c1", "glyphs", "top5", 0.8), ("c1", "glyphs", "top1", 0.4), ("c3", "colours", "accuracy", 0.1),
                          ("c2", "glyphs", "top5", 1.0), ("c3", "glyphs", "top1", 0.7)],
                         columns=["checkpoint", "benchmark", "metric", "value"])
    result = aggregate(table, benchmarks=SHAPES, suites=suites)
    assert list(result.benchmarks.itertuples(index=False, name=None)) == [
        ("c1", "colours", 0.2, 0.2), ("c1", "glyphs", pytest.approx(0.6), pytest.approx(0.4)),
        ("c1", "shapes", 0.9, pytest.approx(0.1)), ("c2", "glyphs", 0.8, pytest.approx(0.2)),
        ("c3", "colours", 0.1, 0.1), ("c3", "shapes", 0.5, 0.5)]
    assert list(result.suites[["checkpoint", "suite", "n_benchmarks"]].itertuples(index=False, name=None)) == [
        ("c1", "zeta", 2), ("c1", "alpha", 3)]
    assert result.suites["error"].tolist() == pytest.approx([(0.1 + 0.4) / 2, (0.4 + 0.2 + 0.1) / 3])
    assert list(result.exclusions.itertuples(index=False, name=None)) == [
        ("c2", "zeta", ["shapes"], "missing 1 of 2 benchmarks: shapes"),
        ("c2", "alpha", ["colours", "shapes"], "missing 2 of 3 benchmarks: colours, shapes"),
        ("c3", "zeta", ["glyphs"], "missing 1 of 2 benchmarks: glyphs"),  # top5 missing: no glyphs score
        ("c3", "alpha", ["glyphs"], "missing 1 of 3 benchmarks: glyphs")]
    assert result.suites.dtypes.tolist() == ["str", "str", "float64", "int64"]


def reference_aggregate(table, benchmarks, suites):
    """The per-checkpoint, per-benchmark definition, written out plainly."""
    scores, suite_rows, exclusions = [], [], []
    for checkpoint in sorted(table["checkpoint"].unique()):
        errors = {}
        for benchmark in sorted(benchmarks):
            spec = benchmarks[benchmark]
            group = table[(table["checkpoint"] == checkpoint) & (table["benchmark"] == benchmark)
                          & table["metric"].isin(spec.metrics)]
            if set(group["metric"]) != set(spec.metrics):
                continue
            fraction = group["value"] / group["unit"].map({"fraction": 1.0, "percent": 100.0})
            score = sum(fraction[group["metric"] == metric].item() for metric in spec.metrics) / spec.full_scale
            errors[benchmark] = 1.0 - score if group["higher_is_better"].iloc[0] else score
            scores.append((checkpoint, benchmark, score, errors[benchmark]))
        for suite, members in suites.items():
            missing = [b for b in members if b not in errors]
            if missing:
                exclusions.append((checkpoint, suite, missing,
                                   f"missing {len(missing)} of {len(members)} benchmarks: {', '.join(missing)}"))
            else:
                suite_rows.append((checkpoint, suite, sum(errors[b] for b in members) / len(members), len(members)))
    return (pd.DataFrame(scores, columns=["checkpoint", "benchmark", "score", "error"]),
            pd.DataFrame(suite_rows, columns=["checkpoint", "suite", "error", "n_benchmarks"]),
            pd.DataFrame(exclusions, columns=["checkpoint", "suite", "missing", "reason"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_per_checkpoint_reference_on_a_random_table(seed):
    rng = np.random.default_rng(seed)
    suites = {"most": ("glyphs", "shapes", "colours"), "glyphs only": ("glyphs",), "pair": ("colours", "shapes")}
    records = []
    for checkpoint in rng.permutation(40):
        for benchmark, spec in SHAPES.items():
            if rng.random() < 0.15:
                continue
            for metric in spec.metrics + ("unread_metric",):
                if rng.random() < 0.1:
                    continue
                unit = str(rng.choice(["fraction", "percent"]))
                value = rng.random() * (100.0 if unit == "percent" else 1.0)
                records.append((f"ckpt-{checkpoint:02d}", benchmark, metric, value, unit, bool(rng.random() < 0.7)))
    table = pd.DataFrame(records, columns=["checkpoint", "benchmark", "metric", "value", "unit", "higher_is_better"])
    result = aggregate(table, benchmarks=SHAPES, suites=suites)
    expected = reference_aggregate(table, SHAPES, suites)
    assert len(result.exclusions) and len(result.suites)  # the draw covers both outcomes
    for got, want in zip((result.benchmarks, result.suites, result.exclusions), expected, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_higher_is_better_comes_from_the_first_row_of_the_group_else_the_spec():
    table = pd.DataFrame([("c", "glyphs", "top1", 0.2), ("c", "glyphs", "top5", 0.4), ("c", "colours", "accuracy", 0.3)],
                         columns=["checkpoint", "benchmark", "metric", "value"])
    from_spec = aggregate(table, benchmarks=SHAPES, suites={}).benchmarks.set_index("benchmark")["error"]
    assert from_spec.to_dict() == pytest.approx({"colours": 0.3, "glyphs": 0.7})
    flags = table.assign(higher_is_better=[False, True, True])
    from_table = aggregate(flags, benchmarks=SHAPES, suites={}).benchmarks.set_index("benchmark")["error"]
    assert from_table.to_dict() == pytest.approx({"colours": 0.7, "glyphs": 0.3})


def test_out_of_range_error_names_the_first_checkpoint_in_order_and_its_rows():
    table = pd.DataFrame([("b", "glyphs", "top1", 90.0), ("a", "shapes", "accuracy", 0.5), ("a", "glyphs", "top1", 0.5),
                          ("a", "glyphs", "top5", 70.0), ("b", "glyphs", "top5", 0.5)],
                         columns=["checkpoint", "benchmark", "metric", "value"])
    with pytest.raises(AggregationError, match=r"^glyphs score 35.25 for checkpoint 'a' is outside \[0, 1\] after "
                                               r"dividing by its full scale 2; .*: rows \[2, 3\]$"):
        aggregate(table, benchmarks=SHAPES, suites={})


def test_a_table_with_no_row_a_benchmark_reads_excludes_every_suite():
    table = pd.DataFrame([("c", "pope", "pope_accuracy", 0.9)], columns=["checkpoint", "benchmark", "metric", "value"])
    result = aggregate(table)
    assert result.benchmarks.empty and result.suites.empty
    assert result.exclusions[["checkpoint", "suite"]].values.tolist() == [["c", "reasoning"], ["c", "ocr"]]


def test_unknown_and_missing_units_are_named():
    table = pd.DataFrame([("c", "gqa", "exact_match", 0.3, "points"), ("c", "ai2d", "exact_match", 0.4, None)],
                         columns=["checkpoint", "benchmark", "metric", "value", "unit"])
    with pytest.raises(AggregationError, match=r"unknown unit\(s\) \[nan, 'points'\] .*: rows \[0, 1\]"):
        aggregate(table)
