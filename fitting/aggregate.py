"""Long benchmark tables → normalised error per benchmark and per suite.

The normalisation table is data the caller passes: `benchmarks` (benchmark → which metric rows
make its score and their full scale, a `BenchmarkNormalisation`) and `suites` (suite → benchmarks).
Fitting keeps no table of its own: the benchmarks Frontier evaluates are defined once, in
`evaluation.suites`, and the web side passes the ones its database holds.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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


@dataclass
class AggregatedScores:
    benchmarks: pd.DataFrame  # checkpoint, benchmark, score, error
    suites: pd.DataFrame      # checkpoint, suite, error, n_benchmarks
    exclusions: pd.DataFrame  # checkpoint, suite, missing, reason


def _rows(frame: pd.DataFrame, mask) -> str:
    return f"rows {frame.index[np.asarray(mask)].tolist()[:10]}"


def benchmark_errors(results: pd.DataFrame, benchmarks: Mapping[str, BenchmarkNormalisation]) -> pd.DataFrame:
    """Normalised score and error per (checkpoint, benchmark) for benchmarks with every metric present.

    Rows of benchmarks or metrics absent from the table are ignored.  Rows are sorted by
    checkpoint, then benchmark.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise AggregationError(f"missing column(s) {', '.join(missing)}; need {', '.join(REQUIRED_COLUMNS)}")
    known = [(spec.benchmark, metric) for spec in benchmarks.values() for metric in spec.metrics]
    rows = results[pd.MultiIndex.from_arrays([results["benchmark"], results["metric"]]).isin(known)]
    units = rows["unit"] if "unit" in rows.columns else pd.Series("fraction", index=rows.index)
    unknown_unit = ~units.isin(UNIT_SCALE.keys())
    if unknown_unit.any():
        raise AggregationError(f"unknown unit(s) {sorted(set(units[unknown_unit]), key=str)} (use fraction or percent): "
                               f"{_rows(rows, unknown_unit)}")
    values = pd.to_numeric(rows["value"], errors="coerce") / units.map(UNIT_SCALE).astype(float)
    if values.isna().any():
        raise AggregationError(f"non-numeric or missing values: {_rows(rows, values.isna())}")
    duplicated = rows.duplicated(["checkpoint", "benchmark", "metric"], keep=False)
    if duplicated.any():
        raise AggregationError(f"several values for one (checkpoint, benchmark, metric): {_rows(rows, duplicated)}")
    # Rows with a missing checkpoint belong to no group (groupby drops them).
    frame = rows.assign(value=values)[rows["checkpoint"].notna().to_numpy()]
    grouped = frame.groupby(["checkpoint", "benchmark"], sort=True)
    keys = grouped.size().index
    group_of_row = grouped.ngroup().to_numpy()
    scores, spec_higher_is_better = _group_scores(frame.assign(group=group_of_row), len(keys), benchmarks)
    complete = ~np.isnan(scores)
    outside = complete & ~((scores >= 0.0) & (scores <= 1.0))
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        checkpoint, benchmark = keys[first:first + 1].tolist()[0]
        group_rows = rows.index.isin(frame.index[group_of_row == first])
        raise AggregationError(
            f"{benchmark} score {scores[first]:.4g} for checkpoint {checkpoint!r} is outside [0, 1] after dividing by "
            f"its full scale {benchmarks[benchmark].full_scale:g}; percent values need unit='percent': "
            f"{_rows(rows, group_rows)}")
    selected = np.flatnonzero(complete)
    if not len(selected):
        return pd.DataFrame(columns=["checkpoint", "benchmark", "score", "error"])
    if "higher_is_better" in frame.columns:
        first_row_of_group = np.unique(group_of_row, return_index=True)[1]
        first_values = frame["higher_is_better"].iloc[first_row_of_group[selected]]
        higher_is_better = np.array([bool(value) for value in first_values], dtype=bool)
    else:
        higher_is_better = spec_higher_is_better[selected]
    score = scores[selected]
    kept = keys[selected]
    return pd.DataFrame({
        "checkpoint": kept.get_level_values(0).tolist(), "benchmark": kept.get_level_values(1).tolist(),
        "score": score, "error": np.where(higher_is_better, 1.0 - score, score),
    })


def _group_scores(frame: pd.DataFrame, n_groups: int, benchmarks) -> tuple[np.ndarray, np.ndarray]:
    """Score per group (NaN where a metric of its benchmark is missing) and its spec's higher_is_better.

    `frame` has one row per (group, metric) and a `group` column numbering the groups 0..n_groups-1.
    Metric values are summed in the spec's metric order, as a per-group Series sum would.
    """
    scores = np.full(n_groups, np.nan)
    spec_higher_is_better = np.ones(n_groups, dtype=bool)
    for benchmark, benchmark_rows in frame.groupby("benchmark", sort=False):
        spec = benchmarks[benchmark]
        by_metric = benchmark_rows.pivot(index="group", columns="metric", values="value")
        groups = by_metric.index.to_numpy()
        by_metric = by_metric.reindex(columns=list(spec.metrics)).to_numpy(dtype=float)
        complete = ~np.isnan(by_metric).any(axis=1)
        scores[groups[complete]] = np.ascontiguousarray(by_metric[complete]).sum(axis=1) / spec.full_scale
        spec_higher_is_better[groups] = spec.higher_is_better
    return scores, spec_higher_is_better


def aggregate(
    results: pd.DataFrame, benchmarks: Mapping[str, BenchmarkNormalisation], suites: Mapping[str, Sequence[str]]
) -> AggregatedScores:
    """Per-benchmark normalised errors and per-suite mean errors.

    A checkpoint missing any benchmark of a suite (or one of its metrics) gets no average for
    that suite; it is listed in `exclusions` with the missing benchmarks (in suite order).
    Suite rows and exclusions are ordered by checkpoint, then suite.
    """
    per_benchmark = benchmark_errors(results, benchmarks)
    checkpoints = sorted(results["checkpoint"].unique())
    suite_members = {suite: list(members) for suite, members in suites.items()}
    benchmark_columns = pd.Index(list(dict.fromkeys(b for members in suite_members.values() for b in members)))
    # errors[checkpoint position, benchmark column]; NaN where the checkpoint has no error for it.
    errors = np.full((len(checkpoints), len(benchmark_columns)), np.nan)
    row = pd.Index(checkpoints).get_indexer(per_benchmark["checkpoint"])
    column = benchmark_columns.get_indexer(per_benchmark["benchmark"])
    in_suite = (row >= 0) & (column >= 0)
    errors[row[in_suite], column[in_suite]] = per_benchmark["error"].to_numpy(dtype=float)[in_suite]

    names, member_lists = list(suite_members), list(suite_members.values())
    complete = np.zeros((len(checkpoints), len(names)), dtype=bool)
    suite_error = np.full(complete.shape, np.nan)
    present = []  # per suite: [checkpoint position, member position] → has an error
    for position, members in enumerate(member_lists):
        member_errors = errors[:, benchmark_columns.get_indexer(members)]
        present.append(~np.isnan(member_errors))
        is_complete = present[position].all(axis=1)
        complete[:, position] = is_complete
        if members:
            suite_error[is_complete, position] = member_errors[is_complete].sum(axis=1) / len(members)

    checkpoint_at, suite_at = np.divmod(np.flatnonzero(complete.ravel()), max(len(names), 1))
    suite_rows = pd.DataFrame({
        "checkpoint": [checkpoints[i] for i in checkpoint_at], "suite": [names[s] for s in suite_at],
        "error": suite_error[checkpoint_at, suite_at],
        "n_benchmarks": np.array([len(member_lists[s]) for s in suite_at], dtype=np.int64),
    })
    exclusions = []
    for i, s in zip(*np.divmod(np.flatnonzero(~complete.ravel()), max(len(names), 1)), strict=True):
        missing = [b for b, found in zip(member_lists[s], present[s][i], strict=True) if not found]
        exclusions.append({"checkpoint": checkpoints[i], "suite": names[s], "missing": missing,
                           "reason": f"missing {len(missing)} of {len(member_lists[s])} benchmarks: {', '.join(missing)}"})
    return AggregatedScores(
        benchmarks=per_benchmark,
        suites=suite_rows if len(suite_rows) else pd.DataFrame(columns=["checkpoint", "suite", "error", "n_benchmarks"]),
        exclusions=pd.DataFrame(exclusions, columns=["checkpoint", "suite", "missing", "reason"]),
    )
