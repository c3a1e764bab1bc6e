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
from fitting.points import FitInputError, Points, check_identifiable, points_from_frame

LOSSES = ("squared", "huber", "huber_log")
BOUND_TOLERANCE = 1e-6
DEGENERATE_COEFFICIENT_RATIO = 100.0
DEGENERATE_EXPONENT = 1e-3


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


@dataclass
class FitResult:
    """A fitted law.  Residuals are observed − predicted; MAPE values are in percent."""

    law: Law
    params: dict[str, float]
    sse: float
    rmse: float
    r2: float
    mape: float
    points: Points
    predicted: np.ndarray
    residuals: np.ndarray
    active_bounds: list[str]
    warnings: list[str]
    loss: str
    loso_mape: float | None = None
    loso_mape_by_size: dict[float, float] = field(default_factory=dict)
    seconds: float = 0.0

    def predict(self, n_params_b, visual_tokens) -> np.ndarray:
        return self.law.predict(self.params, n_params_b, visual_tokens)

    def to_dict(self) -> dict:
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
            "points": [
                {"llm_params_b": n, "visual_tokens": v, "error": e, "predicted": p, "residual": r}
                for n, v, e, p, r in zip(self.points.n_params_b, self.points.visual_tokens,
                                         self.points.error, self.predicted, self.residuals)
            ],
            "seconds": self.seconds,
        })


def as_points(data) -> Points:
    return data if isinstance(data, Points) else points_from_frame(pd.DataFrame(data))


def _refine(law: Law, points: Points, start, loss: str, huber_delta: float):
    """Bounded scipy least_squares from `start`; on log errors for loss="huber_log"."""
    upper = np.full(len(start), np.inf)
    upper[-1] = max(points.error.min(), 1e-12)
    start = np.clip(start, 0.0, upper)
    log_variables = points.log_variables

    def residuals(parameters):
        predicted = law.predict(parameters, points.n_params_b, points.visual_tokens)
        if loss == "huber_log":
            return np.log(np.maximum(predicted, 1e-300)) - np.log(points.error)
        return predicted - points.error

    def jacobian(parameters):
        derivative = law.jacobian(parameters, log_variables)
        if loss == "huber_log":
            predicted = law.predict(parameters, points.n_params_b, points.visual_tokens)
            return derivative / np.maximum(predicted, 1e-300)[:, None]
        return derivative

    result = least_squares(
        residuals, start, jac=jacobian, bounds=(np.zeros(len(start)), upper), method="trf",
        loss="linear" if loss == "squared" else "huber", f_scale=huber_delta,
        x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12)
    return result.x


def _bounds_and_warnings(law: Law, params: dict[str, float], error: np.ndarray):
    active, warnings = [], []
    scale, floor_cap = error.max(), error.min()
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
        warnings.append(f"{OFFSET} is at its upper bound min(error) = {floor_cap:.4g}: the law leaves "
                        "no reducible error at the best point")
    return active, warnings


def _snap_to_bounds(params: dict[str, float], active: list[str], floor_cap: float) -> dict[str, float]:
    """Report parameters found within BOUND_TOLERANCE of a bound exactly on it."""
    snapped = dict(params)
    for bound in active:
        name, value = bound.split("=")
        snapped[name] = floor_cap if value == "min(error)" else 0.0
    return snapped


def _size_holdouts(law: Law, points: Points):
    """(size, held-out mask) for every LLM size whose removal leaves an identifiable fit."""
    holdouts = []
    for size in np.unique(points.n_params_b):
        held_out = points.n_params_b == size
        kept = points.n_params_b[~held_out]
        if (~held_out).sum() >= len(law.parameter_names) and len(np.unique(kept)) >= 2:
            holdouts.append((float(size), held_out))
    return holdouts


def _holdout_errors(law: Law, points: Points, holdouts, fitted):
    """MAPE (percent) per held-out size and over all held-out points."""
    by_size, errors = {}, []
    for (size, held_out), parameters in zip(holdouts, fitted):
        predicted = law.predict(parameters, points.n_params_b[held_out], points.visual_tokens[held_out])
        percentage = 100 * np.abs(predicted - points.error[held_out]) / points.error[held_out]
        by_size[size] = float(percentage.mean())
        errors.append(percentage)
    return float(np.concatenate(errors).mean()), by_size


def fit(data, law: str | Law = "multiplicative", *, loss: str = "squared", huber_delta: float = 1e-3,
        leave_one_size_out: bool = True, exponent_grid=solver.DEFAULT_EXPONENT_GRID) -> FitResult:
    """Fit `law` to a table (DataFrame/dict with llm_params_b, visual_tokens, avg_score) or Points.

    The exact constrained least-squares optimum (exponent grid with closed-form coefficients,
    refined locally) starts a bounded scipy least_squares.  loss: "squared", "huber" (on
    errors) or "huber_log" (on log errors, Chinchilla-style), robust ones started from the
    exact solution.  leave_one_size_out: refit without each LLM size (same loss) and predict it;
    those fits share the vectorised exact solver with the main fit.
    """
    started = time.perf_counter()
    law = get_law(law)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    points = as_points(data)
    check_identifiable(points, law)
    if loss == "huber_log" and np.any(points.error <= 0):
        raise FitInputError("huber_log needs every error > 0 (a score of 1 has no log error)")
    holdouts = _size_holdouts(law, points) if leave_one_size_out else []
    weight_rows = np.array([np.ones(len(points))] + [(~held_out).astype(float) for _, held_out in holdouts])
    exact, exact_sse = solver.exact_fits(law, points.log_variables, points.error, weight_rows, exponent_grid)
    parameters = _refine(law, points, exact[0], loss, huber_delta)
    predicted = law.predict(parameters, points.n_params_b, points.visual_tokens)
    if loss == "squared" and exact_sse[0] < np.sum((predicted - points.error) ** 2):
        parameters = exact[0]
        predicted = law.predict(parameters, points.n_params_b, points.visual_tokens)
    params = dict(zip(law.parameter_names, map(float, parameters)))
    active, warnings = _bounds_and_warnings(law, params, points.error)
    params = _snap_to_bounds(params, active, points.error.min())
    predicted = law.predict(params, points.n_params_b, points.visual_tokens)
    residuals = points.error - predicted
    sse = float(np.sum(residuals**2))
    loso_mape, loso_by_size = None, {}
    if holdouts:
        held_out_fits = exact[1:]
        if loss != "squared":
            held_out_fits = [_refine(law, points.subset(~held_out), x, loss, huber_delta)
                             for (_, held_out), x in zip(holdouts, held_out_fits)]
        loso_mape, loso_by_size = _holdout_errors(law, points, holdouts, held_out_fits)
    elif leave_one_size_out:
        warnings.append("leave-one-size-out skipped: removing any LLM size leaves too few sizes or points")
    return FitResult(
        law=law, params=params, sse=sse, rmse=math.sqrt(sse / len(points)),
        r2=1 - sse / float(np.sum((points.error - points.error.mean()) ** 2)),
        mape=float(100 * np.mean(np.abs(residuals) / points.error)),
        points=points, predicted=predicted, residuals=residuals,
        active_bounds=active, warnings=warnings, loss=loss,
        loso_mape=loso_mape, loso_mape_by_size=loso_by_size,
        seconds=time.perf_counter() - started,
    )
