"""Input tables → validated (N, V, error) points, with errors that name the bad rows."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from fitting.laws import Law

N_COLUMN = "llm_params_b"
V_COLUMN = "visual_tokens"
SCORE_COLUMN = "avg_score"
ERROR_COLUMN = "error"
PAPER_CSV = "paper_reasoning_scores.csv"


class FitInputError(ValueError):
    """Input that cannot be fitted; the message names the problem and the rows."""


@dataclass(frozen=True)
class Points:
    """Observations: N in billions of parameters, V visual tokens, error in [0, 1]."""

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


def _rows(frame: pd.DataFrame, mask) -> str:
    labels = frame.index[np.asarray(mask)].tolist()
    shown = ", ".join(str(label) for label in labels[:10])
    return f"rows [{shown}{', …' if len(labels) > 10 else ''}]"


def points_from_frame(frame: pd.DataFrame) -> Points:
    """Validate a table with llm_params_b, visual_tokens and avg_score (or error) columns.

    error = 1 − avg_score unless an `error` column is given.  Row names in messages are
    the frame's index labels (0-based data rows for a CSV read with pandas).
    """
    value_column = ERROR_COLUMN if ERROR_COLUMN in frame.columns else SCORE_COLUMN
    missing = [c for c in (N_COLUMN, V_COLUMN, value_column) if c not in frame.columns]
    if missing:
        raise FitInputError(
            f"missing column(s) {', '.join(missing)}; need {N_COLUMN}, {V_COLUMN} and "
            f"{SCORE_COLUMN} (or {ERROR_COLUMN}); got {', '.join(map(str, frame.columns))}")
    columns = frame[[N_COLUMN, V_COLUMN, value_column]].apply(pd.to_numeric, errors="coerce")
    not_a_number = columns.isna()
    if not_a_number.any(axis=None):
        bad = not_a_number.any(axis=1)
        names = ", ".join(columns.columns[not_a_number.any(axis=0)])
        raise FitInputError(f"missing or non-numeric values (NaN) in {names}: {_rows(frame, bad)}")
    for column in (N_COLUMN, V_COLUMN):
        bad = columns[column] <= 0
        if bad.any():
            raise FitInputError(
                f"{column} must be > 0: {_rows(frame, bad)} have "
                f"{', '.join(f'{v:g}' for v in columns[column][bad].head(10))}")
    bad = (columns[value_column] < 0) | (columns[value_column] > 1)
    if bad.any():
        raise FitInputError(
            f"{value_column} must lie in [0, 1] (percent scores must be divided by 100): "
            f"{_rows(frame, bad)} have {', '.join(f'{v:g}' for v in columns[value_column][bad].head(10))}")
    duplicated = columns.duplicated([N_COLUMN, V_COLUMN], keep=False)
    if duplicated.any():
        raise FitInputError(
            f"duplicate ({N_COLUMN}, {V_COLUMN}) pairs: {_rows(frame, duplicated)}; "
            "fit one compressor / task group at a time")
    values = columns[value_column].to_numpy(float)
    return Points(
        n_params_b=columns[N_COLUMN].to_numpy(float),
        visual_tokens=columns[V_COLUMN].to_numpy(float),
        error=values if value_column == ERROR_COLUMN else 1.0 - values,
    )


def check_identifiable(points: Points, law: Law) -> None:
    """Raise unless the law's parameters can be identified from these points."""
    n_parameters = len(law.parameter_names)
    if len(points) < n_parameters:
        raise FitInputError(
            f"{len(points)} points for the {n_parameters} parameters "
            f"({', '.join(law.parameter_names)}) of the {law.name} law: need at least {n_parameters}")
    columns = {"N": (N_COLUMN, points.n_params_b), "V": (V_COLUMN, points.visual_tokens)}
    for exponent, variable in law.exponent_variable.items():
        column, values = columns[variable]
        distinct = np.unique(values)
        if len(distinct) < 2:
            raise FitInputError(
                f"every point has the same {column} = {distinct[0]:g}: the exponent {exponent} "
                f"cannot be identified; need at least two distinct {column} values")


def read_points_csv(path) -> tuple[pd.DataFrame, Points]:
    frame = pd.read_csv(path)
    return frame, points_from_frame(frame)


def paper_frame() -> pd.DataFrame:
    """The paper's reasoning-suite table (Qwen-1.5 chat + TokenPacker), shipped with the package."""
    with resources.files("fitting").joinpath("data", PAPER_CSV).open() as handle:
        return pd.read_csv(handle)
