"""Input tables → validated (N, V, error) points, with errors that name the bad rows."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from fitting.laws import Law

N_COLUMN = "llm_params_b"
V_COLUMN = "visual_tokens"
SCORE_COLUMN = "avg_score"
ERROR_COLUMN = "error"
PAPER_CSV = "paper_reasoning_scores.csv"
ZERO_SPREAD = 1e-12
"""Errors closer than this (relative to 1) count as equal: rounding, not a difference to explain."""


class FitInputError(ValueError):
    """Input the law cannot be fitted to.  ``reason`` says why in words a user understands (and
    what to do next), ``code`` names the case for programs; the message is "cannot fit: <reason>"."""

    def __init__(self, reason: str, code: str = "invalid_input"):
        self.reason = reason
        self.code = code
        super().__init__(f"cannot fit: {reason}")


@dataclass(frozen=True)
class Points:
    """Observations, one per checkpoint: N in billions of parameters, V visual tokens, error in
    [0, 1].  Several checkpoints may share one (N, V): see fitting.replicates."""

    n_params_b: np.ndarray
    visual_tokens: np.ndarray
    error: np.ndarray

    def __len__(self) -> int:
        return len(self.error)

    @property
    def log_variables(self) -> np.ndarray:
        return np.log(np.stack([self.n_params_b, self.visual_tokens]))

    def subset(self, mask: np.ndarray) -> Points:
        return Points(self.n_params_b[mask], self.visual_tokens[mask], self.error[mask])


def _named(labels, noun: str) -> str:
    labels = list(labels)
    shown = ", ".join(str(label) for label in labels[:10])
    return f"{noun} [{shown}{', …' if len(labels) > 10 else ''}]"


def _rows(frame: pd.DataFrame, mask) -> str:
    """The bad rows by checkpoint id when the table has a checkpoint column, else by index label."""
    mask = np.asarray(mask)
    if "checkpoint" in frame.columns:
        return _named(frame["checkpoint"].to_numpy()[mask].tolist(), "checkpoints")
    return _named(frame.index[mask].tolist(), "rows")


def _values(values) -> str:
    return ", ".join(f"{v:g}" for v in list(values)[:10])


def _check_values(columns: dict[str, np.ndarray], where) -> None:
    """Finite, N and V > 0, error in [0, 1]; `where(mask)` names the offending rows."""
    for column, values in columns.items():
        bad = ~np.isfinite(values)
        if bad.any():
            raise FitInputError(f"{column} must be finite: {where(bad)} have {_values(values[bad])}", "not_finite")
    for column in (N_COLUMN, V_COLUMN):
        bad = columns[column] <= 0
        if bad.any():
            raise FitInputError(f"{column} must be > 0: {where(bad)} have {_values(columns[column][bad])}",
                                "outside_domain")
    value_column = next(column for column in columns if column not in (N_COLUMN, V_COLUMN))
    values = columns[value_column]
    bad = (values < 0) | (values > 1)
    if bad.any():
        hint = " (percent scores must be divided by 100)" if (values > 1).any() else ""
        raise FitInputError(f"{value_column} must lie in [0, 1]{hint}: {where(bad)} have {_values(values[bad])}",
                            "outside_domain")


def points_from_frame(frame: pd.DataFrame) -> Points:
    """Validate a table with llm_params_b, visual_tokens and avg_score (or error) columns.

    error = 1 − avg_score unless an `error` column is given.  Rows are named in messages by
    their `checkpoint` column when there is one, else by the frame's index labels (0-based
    data rows for a CSV read with pandas).  Rows with the same (N, V) are kept: they are
    replicates (fitting.replicates), not an error.
    """
    value_column = ERROR_COLUMN if ERROR_COLUMN in frame.columns else SCORE_COLUMN
    missing = [c for c in (N_COLUMN, V_COLUMN, value_column) if c not in frame.columns]
    if missing:
        raise FitInputError(
            f"missing column(s) {', '.join(missing)}; need {N_COLUMN}, {V_COLUMN} and "
            f"{SCORE_COLUMN} (or {ERROR_COLUMN}); got {', '.join(map(str, frame.columns))}", "missing_columns")
    columns = frame[[N_COLUMN, V_COLUMN, value_column]].apply(pd.to_numeric, errors="coerce")
    not_a_number = columns.isna()
    if not_a_number.any(axis=None):
        bad = not_a_number.any(axis=1)
        names = ", ".join(columns.columns[not_a_number.any(axis=0)])
        raise FitInputError(f"missing or non-numeric values (NaN) in {names}: {_rows(frame, bad)}", "missing_values")
    arrays = {column: columns[column].to_numpy(float) for column in columns.columns}
    _check_values(arrays, lambda mask: _rows(frame, mask))
    values = arrays[value_column]
    return Points(
        n_params_b=arrays[N_COLUMN],
        visual_tokens=arrays[V_COLUMN],
        error=values if value_column == ERROR_COLUMN else 1.0 - values,
    )


def check_points(points: Points) -> None:
    """The checks of points_from_frame for Points built directly (positions name the points)."""
    _check_values({N_COLUMN: np.asarray(points.n_params_b, float), V_COLUMN: np.asarray(points.visual_tokens, float),
                   ERROR_COLUMN: np.asarray(points.error, float)},
                  lambda mask: _named(np.flatnonzero(mask).tolist(), "points"))


def pair_groups(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs as a (2, k) array in sorted order, as ``np.unique(..., axis=1)``
    gives them, and each element's pair (its column there), with each column factorized (hashed) first:
    milliseconds at 100,000 points, not 70."""
    first_codes, first_values = pd.factorize(np.asarray(first), sort=True)
    second_codes, second_values = pd.factorize(np.asarray(second), sort=True)
    codes, index = np.unique(first_codes.astype(np.int64) * len(second_values) + second_codes, return_inverse=True)
    pairs = np.stack([first_values[codes // len(second_values)], second_values[codes % len(second_values)]])
    return pairs, np.asarray(index).ravel()


def distinct_pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return pair_groups(first, second)[0]


def _checkpoints(count: int) -> str:
    return f"{count} checkpoint{'s' if count != 1 else ''}"


def check_identifiable(points: Points, law: Law) -> None:
    """Raise FitInputError unless the law's parameters can be identified from these points.

    In this order: no points; a single configuration; a single LLM size or token count for a law
    with an exponent on it; fewer distinct (N, V) configurations than parameters; no spread in
    the errors at all (nothing for the law to explain).
    """
    n_parameters = len(law.parameter_names)
    if len(points) == 0:
        raise FitInputError("there are no checkpoints to fit: none has both a score and a known N and V; "
                            "evaluate checkpoints with a known LLM size and token count first", "no_points")
    configurations = distinct_pairs(points.n_params_b, points.visual_tokens)
    if configurations.shape[1] == 1:
        n, v = configurations[:, 0]
        which = ("there is only one checkpoint" if len(points) == 1
                 else f"all {len(points)} checkpoints are the same configuration")
        raise FitInputError(
            f"{which} (N = {n:g} B, V = {v:g}): a law of how error changes with N and V needs checkpoints at "
            f"several LLM sizes and token counts (the {law.name} law needs at least {n_parameters} different ones)",
            "one_configuration")
    wording = {
        "N": (N_COLUMN, "the same LLM size", "N = {:g} B", "at least two LLM sizes", "one_llm_size"),
        "V": (V_COLUMN, "the same number of visual tokens", "V = {:g}", "at least two token counts", "one_token_count"),
    }
    values = {"N": points.n_params_b, "V": points.visual_tokens}
    for variable in dict.fromkeys(law.exponent_variable.values()):
        distinct = np.unique(values[variable])
        if len(distinct) < 2:
            _, same, shown, need, code = wording[variable]
            exponents = ", ".join(e for e, v in law.exponent_variable.items() if v == variable)
            raise FitInputError(
                f"every checkpoint has {same} ({shown.format(distinct[0])}), so the law cannot tell how error "
                f"changes with {variable}: its exponent {exponents} is not identified; add checkpoints with {need}",
                code)
    if configurations.shape[1] < n_parameters:
        raise FitInputError(
            f"{_checkpoints(len(points))} cover {configurations.shape[1]} distinct (N, V) configurations, fewer than "
            f"the {n_parameters} parameters ({', '.join(law.parameter_names)}) of the {law.name} law: the "
            f"{law.name} law needs at least {n_parameters}; add checkpoints at other LLM sizes or token counts",
            "too_few_configurations")
    spread = float(np.ptp(points.error))
    if spread <= ZERO_SPREAD * max(1.0, float(np.abs(points.error).max())):
        value = float(np.mean(points.error))
        scored = " every one scored 0 %" if abs(value - 1.0) <= ZERO_SPREAD else ""
        scored = scored or (" every one scored 100 %" if abs(value) <= ZERO_SPREAD else "")
        raise FitInputError(
            f"all {_checkpoints(len(points))} have the same error ({value:.3f}{':' + scored if scored else ''}), so "
            "the law has nothing to explain; train longer or add checkpoints that differ", "zero_spread")


def read_points_csv(path) -> tuple[pd.DataFrame, Points]:
    frame = pd.read_csv(path)
    return frame, points_from_frame(frame)


def paper_table_path() -> Path:
    """The paper's reasoning-suite table (Qwen-1.5 chat + TokenPacker), shipped with the package: the one
    copy (the web side's ``load_published`` loads it as published entries)."""
    return Path(str(resources.files("fitting").joinpath("data", PAPER_CSV)))


def paper_frame() -> pd.DataFrame:
    return pd.read_csv(paper_table_path())
