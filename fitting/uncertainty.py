"""Seeded bootstrap intervals for law parameters and for the decisions drawn from them."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from fitting import solver
from fitting.fit import FitResult, as_points, fit, json_safe
from fitting.frontier import SearchSpace, allocate, token_optimum
from fitting.laws import Law, get_law
from fitting.replicates import configurations

UNITS = ("points", "sizes")
RESAMPLED = {"points": "checkpoints", "sizes": "LLM sizes"}
DEFAULT_SPACE = SearchSpace()
HUGE = 1e300
CHUNK_CELLS = 4_000_000
"""Resamples are drawn and pooled in chunks of at most this many (resample, checkpoint) cells
(32 MB of float64), so memory stays bounded whatever the number of checkpoints."""
EXACT_UP_TO = 1000
"""A configuration with more checkpoints than this is resampled through its mean's normal limit (see
``_pooled_by_configuration``): the bootstrap then costs O(resamples × configurations), not × checkpoints."""
RESAMPLE_TOLERANCE = 1e-6
"""Newton step (in √exponent) at which a resample's refit stops: 10x coarser than the point estimate's, a third
less time, and intervals equal to 5 significant digits (far below the bootstrap's own Monte-Carlo error)."""
SCHEME_EXACT = "checkpoints drawn with replacement"
SCHEME_LARGE = (
    "checkpoints drawn with replacement: how many from each configuration exactly (multinomial); which ones "
    "exactly in configurations of at most {limit} checkpoints, while in larger ones the resampled mean is drawn "
    "from its normal limit (mean, sd/sqrt(count))"
)


@dataclass
class BootstrapResult:
    """Point estimates (full data), draws per resample and percentile intervals."""

    law: Law
    unit: str
    seed: int
    n_resamples: int
    n_valid: int
    confidence: float
    estimate: dict[str, float]
    draws: pd.DataFrame
    intervals: dict[str, tuple[float, float]]
    seconds: float
    scheme: str = SCHEME_EXACT

    def to_dict(self) -> dict:
        return json_safe({
            "law": self.law.name, "unit": self.unit, "resampled": RESAMPLED[self.unit], "seed": self.seed,
            "n_resamples": self.n_resamples, "n_valid": self.n_valid, "confidence": self.confidence,
            "estimate": self.estimate, "intervals": self.intervals, "seconds": self.seconds, "scheme": self.scheme,
        })


def budget_label(quantity: str, budget: float, query_tokens: float) -> str:
    return f"{quantity}(C={budget:.3g},Q={query_tokens:g})"


def derived_quantities(law: Law, parameters: np.ndarray, query_tokens=(0.0, 50.0), budgets=(),
                       space: SearchSpace = DEFAULT_SPACE) -> dict[str, np.ndarray]:
    """Decisions per parameter row (R, n_parameters): α/β, V*(Q) where it has a closed form,
    and the optimal N*, V* and error at each (budget, Q)."""
    parameters = np.atleast_2d(parameters)
    named = dict(zip(law.parameter_names, parameters.T, strict=True))
    quantities = {}
    if {"alpha", "beta"} <= named.keys():
        with np.errstate(divide="ignore", invalid="ignore"):
            quantities["alpha/beta"] = named["alpha"] / named["beta"]
    for query in query_tokens:
        if law.single_product_term:
            quantities[f"V*(Q={query:g})"] = token_optimum(law, parameters, query + space.generated_tokens,
                                                           space.token_range)
        for budget in budgets:
            n, v, predicted = allocate(law, parameters, budget, replace(space, query_tokens=query))
            quantities[budget_label("N*", budget, query)] = n
            quantities[budget_label("V*", budget, query)] = v
            quantities[budget_label("error*", budget, query)] = predicted
    return quantities


@dataclass(frozen=True)
class Resamples:
    """Resampled configurations before any law looks at them: per resample, each (N, V) configuration's
    checkpoint count and mean error ((n_resamples, configurations) each), and how they were drawn. Two laws
    bootstrapped on the same points with the same seed draw the same resamples: draw them once (``resample``)."""

    counts: np.ndarray
    means: np.ndarray
    scheme: str
    seed: int
    unit: str
    n_points: int


def resample(data, *, n_resamples: int = 1000, seed: int = 0, unit: str = "points",
             exact_up_to: int = EXACT_UP_TO, table=None) -> Resamples:
    """The resamples ``bootstrap`` refits (see there); ``table``: the points' configurations, if known."""
    if unit not in UNITS:
        raise ValueError(f"unknown bootstrap unit {unit!r}; choose one of {', '.join(UNITS)}")
    points = as_points(data)
    table = configurations(points) if table is None else table
    rng = np.random.default_rng(seed)
    if unit == "points" and len(table) and table.count.max() > exact_up_to:
        counts, means = _pooled_by_configuration(rng, table, points.error, n_resamples, exact_up_to)
        return Resamples(counts, means, SCHEME_LARGE.format(limit=exact_up_to), seed, unit, len(points))
    chunk = max(1, CHUNK_CELLS // max(len(points), 1))
    pooled_counts, pooled_means = [np.zeros((0, len(table)))], [np.zeros((0, len(table)))]
    for first in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - first)
        if unit == "points":
            counts, means = _pooled_draws(rng, table, points.error, rows)
        else:
            counts, means = table.sums(_resample_weights(rng, points.n_params_b, rows, unit), points.error)
        pooled_counts.append(counts)
        pooled_means.append(means)
    return Resamples(np.concatenate(pooled_counts), np.concatenate(pooled_means), SCHEME_EXACT, seed, unit,
                     len(points))


def _resample_weights(rng, n_params_b: np.ndarray, n_resamples: int, unit: str) -> np.ndarray:
    """Multiplicity of each point (checkpoint) in each resample: (n_resamples, n_points).

    Draws with replacement counted by one flat bincount: O(resamples × points) time and memory."""
    if unit == "points":
        return _counts(rng.integers(0, len(n_params_b), size=(n_resamples, len(n_params_b))), len(n_params_b))
    sizes, size_of_point = np.unique(n_params_b, return_inverse=True)
    size_counts = _counts(rng.integers(0, len(sizes), size=(n_resamples, len(sizes))), len(sizes))
    return size_counts[:, np.asarray(size_of_point).ravel()]


def _pooled_draws(rng, table, errors: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """`rows` resamples of the points drawn with replacement (the very draws ``_resample_weights`` counts),
    pooled per configuration straight from the drawn indices: each configuration's count and mean error,
    (rows, configurations) each, without a (rows, points) multiplicity array."""
    n, size = len(errors), len(table)
    drawn = rng.integers(0, n, size=(rows, n))
    cell = (table.index[drawn] + size * np.arange(rows)[:, None]).ravel()
    counts = np.bincount(cell, minlength=rows * size).reshape(rows, size).astype(float)
    sums = np.bincount(cell, weights=errors[drawn].ravel(), minlength=rows * size).reshape(rows, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), 0.0)


def _pooled_by_configuration(rng, table, errors: np.ndarray, n_resamples: int,
                             exact_up_to: int) -> tuple[np.ndarray, np.ndarray]:
    """Checkpoint resamples pooled per configuration without a (resample × checkpoint) array: each
    configuration's count in a resample of n checkpoints is multinomial(n, its share), exactly as when the
    checkpoints are drawn one by one. Which checkpoints those are is drawn exactly (multinomial over the
    configuration's members) when it has at most `exact_up_to`; for larger ones the mean of k draws is taken
    from its normal limit, its mean and plug-in sd / sqrt(k), whose distance to the exact one shrinks as
    1/sqrt(k). Returns (counts, means), each (n_resamples, configurations)."""
    n = len(errors)
    counts = rng.multinomial(n, table.count / n, size=n_resamples)
    means = np.zeros(counts.shape)
    order = np.argsort(table.index, kind="stable")
    bounds = np.r_[0, np.cumsum(table.count.astype(np.int64))]
    for column in range(len(table)):
        members = errors[order[bounds[column]:bounds[column + 1]]]
        k = counts[:, column]
        if len(members) <= exact_up_to:
            picked = rng.multinomial(k, np.full(len(members), 1.0 / len(members)))
            means[:, column] = picked @ members / np.maximum(k, 1)
        else:
            noise = rng.standard_normal(n_resamples) * members.std() / np.sqrt(np.maximum(k, 1))
            means[:, column] = np.where(k > 0, members.mean() + noise, 0.0)
    return counts.astype(float), means


def _counts(drawn: np.ndarray, n: int) -> np.ndarray:
    """How often each of 0..n-1 occurs in each row of `drawn`, as floats."""
    rows = drawn.shape[0]
    flat = (drawn + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)


def _identifiable(law: Law, table, weights: np.ndarray) -> np.ndarray:
    """Resamples (weights per configuration) with at least as many configurations as the law has
    parameters and two values of every fitted variable."""
    present = weights > 0
    values = {"N": table.n_params_b, "V": table.visual_tokens}
    ok = present.sum(axis=1) >= len(law.parameter_names)
    for variable in set(law.exponent_variable.values()):
        masked = np.where(present, values[variable], np.nan)
        with np.errstate(invalid="ignore"):
            ok &= np.fmax.reduce(masked, axis=1) > np.fmin.reduce(masked, axis=1)
    return ok


def _percentiles(values: np.ndarray, tails) -> tuple[float, float]:
    """Percentile interval over the draws that are not NaN; (NaN, NaN) when there are none."""
    values = np.asarray(values, dtype=float)
    known = values[~np.isnan(values)]
    if known.size == 0:
        return (math.nan, math.nan)
    # ±inf draws (e.g. α/β with β = 0) stay ±inf; interpolating between two of them gives NaN
    low, high = np.quantile(np.clip(known, -HUGE, HUGE), tails)
    return tuple(float(np.sign(x) * math.inf) if abs(x) >= HUGE else float(x) for x in (low, high))


def bootstrap(data, law: str | Law = "multiplicative", *, n_resamples: int = 1000, seed: int = 0,
              unit: str = "points", confidence: float = 0.95, query_tokens=(0.0, 50.0), budgets=(),
              space: SearchSpace = DEFAULT_SPACE, full_fit: FitResult | None = None,
              exact_up_to: int = EXACT_UP_TO, resamples: Resamples | None = None) -> BootstrapResult:
    """Percentile intervals from refits on resamples, warm-started at the full-data optimum.

    unit="points" resamples rows (checkpoints: several at one (N, V), e.g. seeds, are drawn
    independently, so their spread widens the intervals); unit="sizes" resamples whole LLM
    sizes (all V of a size together).  Each resample is pooled into configurations
    (fitting.replicates) and all of them are solved at once by the vectorised exact solver.
    A configuration with more than ``exact_up_to`` checkpoints is resampled through its mean's normal limit
    (``_pooled_by_configuration``; ``scheme`` says so), which keeps 100,000 checkpoints as cheap as 30,000.
    Resamples that cannot identify the law (e.g. a single size) are dropped and counted in
    n_valid; with none left, every interval is (NaN, NaN).  Input the law cannot be fitted to
    raises FitInputError, as fit() does. ``resamples``: drawn beforehand by ``resample`` for these points,
    seed, unit and number (another law's bootstrap on the same points reuses them: the same draws).
    """
    started = time.perf_counter()
    law = get_law(law)
    if unit not in UNITS:
        raise ValueError(f"unknown bootstrap unit {unit!r}; choose one of {', '.join(UNITS)}")
    points = as_points(data)
    full_fit = full_fit or fit(points, law, leave_one_size_out=False)
    estimate_vector = law.vector(full_fit.params)
    same = (len(full_fit.points) == len(points) and np.array_equal(full_fit.points.error, points.error)
            and np.array_equal(full_fit.points.n_params_b, points.n_params_b)
            and np.array_equal(full_fit.points.visual_tokens, points.visual_tokens))
    table = full_fit.configurations if same and full_fit.configurations is not None else configurations(points)
    if resamples is None:
        resamples = resample(points, n_resamples=n_resamples, seed=seed, unit=unit, exact_up_to=exact_up_to,
                             table=table)
    elif (resamples.seed, resamples.unit, resamples.n_points, len(resamples.counts), resamples.counts.shape[1]) != (
            seed, unit, len(points), n_resamples, len(table)):
        raise ValueError("these resamples were drawn for other points, seed, unit or number of resamples")
    kept = _identifiable(law, table, resamples.counts)
    weights, errors, scheme = resamples.counts[kept], resamples.means[kept], resamples.scheme
    parameters = np.empty((0, len(law.parameter_names)))
    if len(weights):
        start = np.tile(estimate_vector, (len(weights), 1))
        parameters, _ = solver.newton_refine(law, table.log_variables, errors, weights, start,
                                             tolerance=RESAMPLE_TOLERANCE)
    draws = dict(zip(law.parameter_names, parameters.T, strict=True))
    draws.update(derived_quantities(law, parameters, query_tokens, budgets, space))
    estimate = dict(full_fit.params)
    estimate.update({name: float(values[0]) for name, values in
                     derived_quantities(law, estimate_vector, query_tokens, budgets, space).items()})
    tails = [(1 - confidence) / 2, (1 + confidence) / 2]
    intervals = {name: _percentiles(values, tails) for name, values in draws.items()}
    return BootstrapResult(
        law=law, unit=unit, seed=seed, n_resamples=n_resamples, n_valid=len(weights), confidence=confidence,
        estimate=estimate, draws=pd.DataFrame(draws), intervals=intervals,
        seconds=time.perf_counter() - started, scheme=scheme,
    )


def predicted_error_interval(law: str | Law, parameter_draws, n_params_b, visual_tokens,
                             confidence: float = 0.95):
    """Percentile interval of the law's predicted error at (N in billions, V) over bootstrap
    parameter draws (rows in `law.parameter_names` order, e.g. `BootstrapResult.draws`): the
    uncertainty of the fitted curve there, not the spread of a single measurement.

    Returns (low, high) as floats for a scalar N and V, as arrays for arrays of them, and None
    when there are no draws.
    """
    law = get_law(law)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    draws = np.asarray(parameter_draws, dtype=float)
    if draws.size == 0:
        return None
    if draws.ndim != 2 or draws.shape[1] != len(law.parameter_names):
        raise ValueError(
            f"parameter draws of the {law.name} law must be rows of {len(law.parameter_names)} values "
            f"({', '.join(law.parameter_names)}); got an array of shape {draws.shape}"
        )
    predicted = law.predict(draws, n_params_b, visual_tokens)  # (draws, *broadcast shape of N and V)
    low, high = np.nanquantile(predicted, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high
