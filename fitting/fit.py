"""Fit a scaling law: exact grid over exponents → bounded least_squares refinement."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from fitting import solver
from fitting.laws import OFFSET, Law, get_law
from fitting.points import FitInputError, Points, check_identifiable, check_points, points_from_frame
from fitting.replicates import Configurations, configurations

LOSSES = ("squared", "huber", "huber_log")
BOUND_TOLERANCE = 1e-6
DEGENERATE_COEFFICIENT_RATIO = 100.0
DEGENERATE_EXPONENT = 1e-3
FIT_METHOD_VERSION = 2
"""2: repeated (N, V) pooled as replicates (fitting.replicates); R² and MAPE undefined (None) rather than
a division by zero."""


def json_safe(value):
    """Plain Python types for json.dumps; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def r_squared(sse: float, total: float) -> float | None:
    """1 − SSE / total sum of squares; None (undefined) when the errors have no spread."""
    return None if not total > 0 else 1.0 - float(sse) / float(total)


def mape_percent(observed: np.ndarray, predicted: np.ndarray) -> tuple[float | None, int]:
    """Mean absolute percentage error over the observations with error > 0 (a percentage of 0 is
    undefined), and how many were left out; None when none is left."""
    defined = observed > 0
    if not defined.any():
        return None, int(len(observed))
    percentage = 100 * np.abs(predicted[defined] - observed[defined]) / observed[defined]
    return float(percentage.mean()), int((~defined).sum())


@dataclass
class FitResult:
    """A fitted law.  Residuals are observed − predicted, per checkpoint; MAPE values are in
    percent.  `r2` is None when the errors have no spread, `mape` when every error is 0."""

    law: Law
    params: dict[str, float]
    sse: float
    rmse: float
    r2: float | None
    mape: float | None
    points: Points
    predicted: np.ndarray
    residuals: np.ndarray
    active_bounds: list[str]
    warnings: list[str]
    loss: str
    loso_mape: float | None = None
    loso_mape_by_size: dict[float, float] = field(default_factory=dict)
    seconds: float = 0.0
    configurations: Configurations | None = None

    @property
    def method(self) -> dict:
        """How the fit was made: the method version, loss, and how repeated (N, V) were combined."""
        table = self.configurations or configurations(self.points)
        return {"version": FIT_METHOD_VERSION, "loss": self.loss, **table.summary()}

    def predict(self, n_params_b, visual_tokens) -> np.ndarray:
        return self.law.predict(self.params, n_params_b, visual_tokens)

    def residual_rows(self, max_rows: int | None = None) -> list[dict]:
        """One row per checkpoint (N, V, error, predicted, residual); past `max_rows` checkpoints one row per
        configuration instead, at its mean error, with its number of checkpoints (a plot of 100,000 points
        shows nothing 30 configuration means do not, and costs megabytes per fit)."""
        if max_rows is None or len(self.points) <= max_rows:
            return [
                {"llm_params_b": n, "visual_tokens": v, "error": e, "predicted": p, "residual": r}
                for n, v, e, p, r in zip(self.points.n_params_b, self.points.visual_tokens,
                                         self.points.error, self.predicted, self.residuals)
            ]
        table = self.configurations or configurations(self.points)
        predicted = self.predict(table.n_params_b, table.visual_tokens)
        return [
            {"llm_params_b": n, "visual_tokens": v, "error": e, "predicted": p, "residual": e - p, "checkpoints": int(c)}
            for n, v, e, p, c in zip(table.n_params_b, table.visual_tokens, table.mean_error, predicted, table.count)
        ]

    def to_dict(self, max_points: int | None = None) -> dict:
        """Everything about the fit as JSON-safe values; ``points`` as ``residual_rows(max_points)``."""
        return json_safe({
            "law": self.law.name,
            "formula": self.law.formula,
            "loss": self.loss,
            "params": self.params,
            "sse": self.sse,
            "rmse": self.rmse,
            "r2": self.r2,
            "mape": self.mape,
            "active_bounds": self.active_bounds,
            "warnings": self.warnings,
            "loso_mape": self.loso_mape,
            "loso_mape_by_size": {f"{size:g}": value for size, value in self.loso_mape_by_size.items()},
            "points": self.residual_rows(max_points),
            "method": self.method,
            "seconds": self.seconds,
        })


def as_points(data) -> Points:
    """Validated points from a table or Points (checked the same way)."""
    if isinstance(data, Points):
        check_points(data)
        return data
    return points_from_frame(pd.DataFrame(data))


def floor_cap(points: Points) -> float:
    """Upper bound of the floor D: the lowest mean error of a configuration (with one checkpoint
    per configuration, the lowest error)."""
    return float(configurations(points).mean_error.min())


def _refine(law: Law, points: Points, start, loss: str, huber_delta: float, table: Configurations | None = None):
    """Bounded scipy least_squares over the checkpoints from `start`; on log errors for
    loss="huber_log".  For the squared loss this is the weighted fit on configurations, and with their
    `table` it is solved there (each configuration's residual scaled by √count: the same sum of squares
    less the spread within configurations, a constant), so 100,000 checkpoints cost what 30 configurations do."""
    table = table if table is not None else configurations(points)
    upper = np.full(len(start), np.inf)
    upper[-1] = max(float(table.mean_error.min()), 1e-12)
    start = np.clip(start, 0.0, upper)
    if loss == "squared":
        n, v, target, scale = table.n_params_b, table.visual_tokens, table.mean_error, np.sqrt(table.count)
        log_variables = table.log_variables
    else:
        n, v, target, scale = points.n_params_b, points.visual_tokens, points.error, None
        log_variables = points.log_variables

    def residuals(parameters):
        predicted = law.predict(parameters, n, v)
        if loss == "huber_log":
            return np.log(np.maximum(predicted, 1e-300)) - np.log(target)
        return predicted - target if scale is None else scale * (predicted - target)

    def jacobian(parameters):
        derivative = law.jacobian(parameters, log_variables)
        if loss == "huber_log":
            predicted = law.predict(parameters, n, v)
            return derivative / np.maximum(predicted, 1e-300)[:, None]
        return derivative if scale is None else derivative * scale[:, None]

    result = least_squares(
        residuals, start, jac=jacobian, bounds=(np.zeros(len(start)), upper), method="trf",
        loss="linear" if loss == "squared" else "huber", f_scale=huber_delta,
        x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12)
    return result.x


def _bounds_and_warnings(law: Law, params: dict[str, float], error: np.ndarray, floor_cap: float):
    active, warnings = [], []
    scale = error.max()
    for term in law.terms:
        name = term.coefficient
        exponents = ", ".join(exponent for exponent, _ in term.powers)
        if params[name] <= BOUND_TOLERANCE * scale:
            active.append(f"{name}=0")
            warnings.append(f"{name} is at its lower bound 0: its term vanishes and {exponents} are not identified")
        elif (params[name] > DEGENERATE_COEFFICIENT_RATIO * scale
              and all(params[exponent] < DEGENERATE_EXPONENT for exponent, _ in term.powers)):
            warnings.append(
                f"{name} = {params[name]:.3g} exceeds {DEGENERATE_COEFFICIENT_RATIO:g}× the largest error: "
                f"the law is degenerating (exponents {exponents} → 0 while {name} explodes); "
                "its parameters are not individually identified")
    for name in law.exponent_names:
        if params[name] <= BOUND_TOLERANCE:
            active.append(f"{name}=0")
            warnings.append(f"{name} is at its lower bound 0: the fit finds no dependence on "
                            f"{law.exponent_variable[name]}")
    if params[OFFSET] <= BOUND_TOLERANCE * floor_cap:
        active.append(f"{OFFSET}=0")
        warnings.append(f"{OFFSET} is at its lower bound 0: the data do not pin the irreducible error "
                        "(unconstrained, the floor would go negative)")
    elif params[OFFSET] >= floor_cap * (1 - BOUND_TOLERANCE):
        active.append(f"{OFFSET}=min(error)")
        warnings.append(f"{OFFSET} is at its upper bound min(error) = {floor_cap:.4g} (the lowest mean error of a "
                        "configuration): the law leaves no reducible error at the best point")
    return active, warnings


def _snap_to_bounds(params: dict[str, float], active: list[str], floor_cap: float) -> dict[str, float]:
    """Report parameters found within BOUND_TOLERANCE of a bound exactly on it."""
    snapped = dict(params)
    for bound in active:
        name, value = bound.split("=")
        snapped[name] = floor_cap if value == "min(error)" else 0.0
    return snapped


def _size_holdouts(law: Law, points: Points, table: Configurations):
    """(size, held-out mask over points) for every LLM size whose removal leaves an identifiable
    fit: enough configurations, two sizes and two token counts."""
    holdouts = []
    for size in np.unique(table.n_params_b):
        kept = table.n_params_b != size
        if (kept.sum() >= len(law.parameter_names) and len(np.unique(table.n_params_b[kept])) >= 2
                and len(np.unique(table.visual_tokens[kept])) >= 2):
            holdouts.append((float(size), points.n_params_b == size))
    return holdouts


def _holdout_errors(law: Law, points: Points, holdouts, fitted):
    """MAPE (percent) per held-out size and over all held-out points (errors of 0 left out);
    None where no held-out error is above 0."""
    by_size, observed, predictions = {}, [], []
    for (size, held_out), parameters in zip(holdouts, fitted):
        predicted = law.predict(parameters, points.n_params_b[held_out], points.visual_tokens[held_out])
        by_size[size], _ = mape_percent(points.error[held_out], predicted)
        observed.append(points.error[held_out])
        predictions.append(predicted)
    overall, _ = mape_percent(np.concatenate(observed), np.concatenate(predictions))
    return overall, by_size


def fit(data, law: str | Law = "multiplicative", *, loss: str = "squared", huber_delta: float = 1e-3,
        leave_one_size_out: bool = True, exponent_grid=solver.DEFAULT_EXPONENT_GRID) -> FitResult:
    """Fit `law` to a table (DataFrame/dict with llm_params_b, visual_tokens, avg_score) or Points.

    Input the law cannot be fitted to raises FitInputError ("cannot fit: <reason>").
    Checkpoints with the same (N, V) are replicates (fitting.replicates): the exact solver
    works on configurations weighted by their number of checkpoints.  The exact constrained
    least-squares optimum (exponent grid with closed-form coefficients, refined locally)
    starts a bounded scipy least_squares over the checkpoints.  loss: "squared", "huber" (on
    errors) or "huber_log" (on log errors, Chinchilla-style), robust ones started from the
    exact solution.  leave_one_size_out: refit without each LLM size (same loss) and predict
    it; those fits share the vectorised exact solver with the main fit.
    """
    started = time.perf_counter()
    law = get_law(law)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    points = as_points(data)
    check_identifiable(points, law)
    if loss == "huber_log" and np.any(points.error <= 0):
        raise FitInputError("the huber_log loss needs every error > 0 (a score of 1 has no log error); "
                            "use the squared or huber loss", "log_needs_positive")
    table = configurations(points)
    holdouts = _size_holdouts(law, points, table) if leave_one_size_out else []
    weight_rows = np.array([table.count] + [table.count * (table.n_params_b != size) for size, _ in holdouts])
    exact, _ = solver.exact_fits(law, table.log_variables, table.mean_error, weight_rows, exponent_grid)

    def checkpoint_sse(parameters) -> float:
        return float(np.sum((law.predict(parameters, points.n_params_b, points.visual_tokens) - points.error) ** 2))

    parameters = _refine(law, points, exact[0], loss, huber_delta, table)
    if loss == "squared" and checkpoint_sse(exact[0]) < checkpoint_sse(parameters):
        parameters = exact[0]
    params = dict(zip(law.parameter_names, map(float, parameters)))
    cap = float(table.mean_error.min())
    active, warnings = _bounds_and_warnings(law, params, points.error, cap)
    params = _snap_to_bounds(params, active, cap)
    predicted = law.predict(params, points.n_params_b, points.visual_tokens)
    residuals = points.error - predicted
    sse = float(np.sum(residuals**2))
    mape, left_out = mape_percent(points.error, predicted)
    if left_out:
        warnings.append(f"MAPE leaves out {left_out} checkpoint{'s' if left_out != 1 else ''} with error 0 "
                        "(a percentage of 0 is undefined)")
    loso_mape, loso_by_size = None, {}
    if holdouts:
        held_out_fits = exact[1:]
        if loss != "squared":
            held_out_fits = [_refine(law, points.subset(~held_out), x, loss, huber_delta)
                             for (_, held_out), x in zip(holdouts, held_out_fits)]
        loso_mape, loso_by_size = _holdout_errors(law, points, holdouts, held_out_fits)
    elif leave_one_size_out:
        warnings.append("leave-one-size-out skipped: removing any LLM size leaves too few sizes, token counts "
                        "or configurations")
    return FitResult(
        law=law, params=params, sse=sse, rmse=math.sqrt(sse / len(points)),
        r2=r_squared(sse, float(np.sum((points.error - points.error.mean()) ** 2))), mape=mape,
        points=points, predicted=predicted, residuals=residuals,
        active_bounds=active, warnings=warnings, loss=loss,
        loso_mape=loso_mape, loso_mape_by_size=loso_by_size,
        seconds=time.perf_counter() - started, configurations=table,
    )
