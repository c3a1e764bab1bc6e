"""Long benchmark tables → normalised error per benchmark and per suite.

The normalisation table is data: `BENCHMARKS` (benchmark → which metric rows make its
score and their full scale) and `SUITES` (suite → benchmarks).  Callers extend them with
`register_benchmark` / `register_suite`, or pass their own mappings to `aggregate`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("checkpoint", "benchmark", "metric", "value")
UNIT_SCALE = {"fraction": 1.0, "percent": 100.0}


class AggregationError(ValueError):
    """A results table that cannot be normalised; the message names the rows."""


@dataclass(frozen=True)
class BenchmarkNormalisation:
    """score = Σ value(metric) / full_scale, in [0, 1]; error = 1 − score (or score if lower is better).

    Values are first converted from the row's `unit` (fraction by default, or percent).
    """

    benchmark: str
    metrics: tuple[str, ...]
    full_scale: float = 1.0
    higher_is_better: bool = True


BENCHMARKS: dict[str, BenchmarkNormalisation] = {}
SUITES: dict[str, tuple[str, ...]] = {}


def register_benchmark(spec: BenchmarkNormalisation) -> None:
    BENCHMARKS[spec.benchmark] = spec


def register_suite(name: str, benchmarks) -> None:
    SUITES[name] = tuple(benchmarks)


# MME is reported in points: perception out of 2000 plus cognition out of 800 (total 2800).
register_benchmark(BenchmarkNormalisation("mme", ("mme_perception_score", "mme_cognition_score"), 2800.0))
register_benchmark(BenchmarkNormalisation("pope", ("pope_f1_score",)))
for benchmark, metric in {
    "gqa": "exact_match", "ai2d": "exact_match", "mmbench": "gpt_eval_score", "mmmu": "mmmu_acc",
    "scienceqa_img": "exact_match", "mathvista": "llm_as_judge_eval", "chartqa": "relaxed_overall",
    "textvqa": "exact_match", "docvqa": "anls",
}.items():
    register_benchmark(BenchmarkNormalisation(benchmark, (metric,)))
register_suite("reasoning", ("mme", "gqa", "ai2d", "mmbench", "mmmu", "scienceqa_img", "mathvista", "pope", "chartqa"))
register_suite("ocr", ("textvqa", "docvqa"))


@dataclass
class AggregatedScores:
    benchmarks: pd.DataFrame  # checkpoint, benchmark, score, error
    suites: pd.DataFrame      # checkpoint, suite, error, n_benchmarks
    exclusions: pd.DataFrame  # checkpoint, suite, missing, reason


def _rows(frame: pd.DataFrame, mask) -> str:
    return f"rows {frame.index[np.asarray(mask)].tolist()[:10]}"


def benchmark_errors(results: pd.DataFrame, benchmarks=None) -> pd.DataFrame:
    """Normalised score and error per (checkpoint, benchmark) for benchmarks with every metric present.

    Rows of benchmarks or metrics absent from the table are ignored.
    """
    benchmarks = BENCHMARKS if benchmarks is None else benchmarks
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise AggregationError(f"missing column(s) {', '.join(missing)}; need {', '.join(REQUIRED_COLUMNS)}")
    known = {(spec.benchmark, metric) for spec in benchmarks.values() for metric in spec.metrics}
    rows = results[np.array([pair in known for pair in zip(results["benchmark"], results["metric"])], dtype=bool)]
    units = rows["unit"] if "unit" in rows.columns else pd.Series("fraction", index=rows.index)
    unknown_unit = ~units.isin(UNIT_SCALE.keys())
    if unknown_unit.any():
        raise AggregationError(f"unknown unit(s) {sorted(set(units[unknown_unit]))} (use fraction or percent): "
                               f"{_rows(rows, unknown_unit)}")
    values = pd.to_numeric(rows["value"], errors="coerce") / units.map(UNIT_SCALE)
    if values.isna().any():
        raise AggregationError(f"non-numeric or missing values: {_rows(rows, values.isna())}")
    duplicated = rows.duplicated(["checkpoint", "benchmark", "metric"], keep=False)
    if duplicated.any():
        raise AggregationError(f"several values for one (checkpoint, benchmark, metric): {_rows(rows, duplicated)}")
    records = []
    for (checkpoint, benchmark), group in rows.assign(value=values).groupby(["checkpoint", "benchmark"], sort=True):
        spec = benchmarks[benchmark]
        by_metric = group.set_index("metric")["value"]
        if not set(spec.metrics) <= set(by_metric.index):
            continue
        score = by_metric[list(spec.metrics)].sum() / spec.full_scale
        if not 0.0 <= score <= 1.0:
            raise AggregationError(
                f"{benchmark} score {score:.4g} for checkpoint {checkpoint!r} is outside [0, 1] after dividing by "
                f"its full scale {spec.full_scale:g}; percent values need unit='percent': {_rows(rows, rows.index.isin(group.index))}")
        higher_is_better = bool(group["higher_is_better"].iloc[0]) if "higher_is_better" in group else spec.higher_is_better
        records.append({"checkpoint": checkpoint, "benchmark": benchmark, "score": score,
                        "error": 1.0 - score if higher_is_better else score})
    return pd.DataFrame(records, columns=["checkpoint", "benchmark", "score", "error"])


def aggregate(results: pd.DataFrame, benchmarks=None, suites=None) -> AggregatedScores:
    """Per-benchmark normalised errors and per-suite mean errors.

    A checkpoint missing any benchmark of a suite (or one of its metrics) gets no average for
    that suite; it is listed in `exclusions` with the missing benchmarks.
    """
    suites = SUITES if suites is None else suites
    per_benchmark = benchmark_errors(results, benchmarks)
    suite_rows, exclusions = [], []
    for checkpoint in sorted(results["checkpoint"].unique()):
        present = per_benchmark[per_benchmark["checkpoint"] == checkpoint].set_index("benchmark")["error"]
        for suite, members in suites.items():
            missing = [b for b in members if b not in present.index]
            if missing:
                exclusions.append({"checkpoint": checkpoint, "suite": suite, "missing": missing,
                                   "reason": f"missing {len(missing)} of {len(members)} benchmarks: {', '.join(missing)}"})
            else:
                suite_rows.append({"checkpoint": checkpoint, "suite": suite,
                                   "error": float(present[list(members)].mean()), "n_benchmarks": len(members)})
    return AggregatedScores(
        benchmarks=per_benchmark,
        suites=pd.DataFrame(suite_rows, columns=["checkpoint", "suite", "error", "n_benchmarks"]),
        exclusions=pd.DataFrame(exclusions, columns=["checkpoint", "suite", "missing", "reason"]),
    )
