"""Exact least-squares machinery, vectorised over exponent grids and weight vectors.

For fixed exponents the law is linear in its coefficients (c_k ≥ 0) and floor
(0 ≤ D ≤ min error), so the best coefficients solve a tiny box-constrained least-squares
problem (a convex QP).  Its optimum is the unconstrained solution on one face of the box:
we solve the faces (each coefficient free or 0; D free, 0 or at its upper bound) in closed
form for the whole batch at once, keep the best feasible candidate, and stop early once
every batch element has a candidate satisfying the KKT conditions (then it is optimal).
A weight vector per row turns the same code into bootstrap resamples (counts) or
held-out fits (0/1 weights); the errors may be shared by every weight row (n,) or given per
row (R, n), as when a resample's configurations have their own mean errors
(fitting.replicates).
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from fitting.laws import Law

DEFAULT_EXPONENT_GRID = np.linspace(0.0, np.sqrt(2.0), 17) ** 2
"""Exponent values tried per exponent: [0, 2], denser near 0 where scaling exponents sit."""

MAX_EXPONENT = 10.0
"""Largest exponent the local refinement explores (scaling exponents are O(0.01–1))."""
_RIDGE = 1e-13  # relative diagonal loading: singular faces (exponent 0 ≡ constant column) stay solvable
_KKT_TOLERANCE = 1e-12


def _solve_spd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched Cholesky solve of small symmetric positive semi-definite systems."""
    size = rhs.shape[-1]
    if size == 1:
        return rhs / (matrix[:, 0] * (1 + _RIDGE) + 1e-300)
    if size == 2:
        a, b, d = matrix[:, 0, 0] * (1 + _RIDGE), matrix[:, 0, 1], matrix[:, 1, 1] * (1 + _RIDGE)
        determinant = a * d - b * b + 1e-300
        return np.stack([d * rhs[:, 0] - b * rhs[:, 1], a * rhs[:, 1] - b * rhs[:, 0]], axis=1) / determinant[:, None]
    lower = np.zeros_like(matrix)
    for j in range(size):
        pivot = matrix[:, j, j] * (1 + _RIDGE) - np.einsum("bk,bk->b", lower[:, j, :j], lower[:, j, :j])
        lower[:, j, j] = np.sqrt(np.maximum(pivot, 1e-300))
        lower[:, j + 1:, j] = (matrix[:, j + 1:, j] - np.einsum("bik,bk->bi", lower[:, j + 1:, :j], lower[:, j, :j])) / lower[:, j, j, None]
    forward = np.zeros_like(rhs)
    for i in range(size):
        forward[:, i] = (rhs[:, i] - np.einsum("bk,bk->b", lower[:, i, :i], forward[:, :i])) / lower[:, i, i]
    solution = np.zeros_like(rhs)
    for i in reversed(range(size)):
        solution[:, i] = (forward[:, i] - np.einsum("bk,bk->b", lower[:, i + 1:, i], solution[:, i + 1:])) / lower[:, i, i]
    return solution


@lru_cache(maxsize=None)
def _faces(size: int) -> list[tuple[tuple[int, ...], bool]]:
    """(free indices, D at its upper bound) per face, likeliest first: all free, then D at
    a bound, then ever more coefficients at 0."""
    faces = []
    for n_zero in range(size):
        for zero in itertools.combinations(range(size - 1), n_zero):
            coefficients = tuple(i for i in range(size - 1) if i not in zero)
            faces += [(coefficients + (size - 1,), False), (coefficients, False), (coefficients, True)]
    return sorted(faces, key=lambda face: size - len(face[0]))


def bounded_linear_fit(gram, moment, weighted_square_sum, offset_upper):
    """Minimise Σ w (y − X c)² over c = (c_1..c_K ≥ 0, 0 ≤ D ≤ offset_upper), batched.

    gram: (B, m, m) = XᵀWX with D's column last; moment: (B, m) = XᵀWy;
    weighted_square_sum: (B,) = yᵀWy; offset_upper: (B,).  Returns (c (B, m), sse (B,)).
    """
    batch, size = moment.shape
    best_sse = np.full(batch, np.inf)
    best = np.zeros((batch, size))
    certified = np.zeros(batch, dtype=bool)
    scale = np.abs(moment).max(axis=1) + 1e-300
    for free, offset_at_upper in _faces(size):
        candidate = np.zeros((batch, size))
        if offset_at_upper:
            candidate[:, -1] = offset_upper
        if free:
            free = list(free)
            rhs = moment[:, free] - gram[:, free, -1] * candidate[:, -1, None]
            candidate[:, free] = _solve_spd(gram[:, free][:, :, free], rhs)
        feasible = np.all(candidate >= 0, axis=1) & (candidate[:, -1] <= offset_upper)
        gradient = np.einsum("bij,bj->bi", gram, candidate) - moment
        sse = weighted_square_sum - np.einsum("bi,bi->b", candidate, moment - gradient)
        # KKT: variables held at 0 must not want to grow; D held at its upper bound must not want to shrink.
        pushing = np.where(candidate > 0, 0.0, -gradient)
        if offset_at_upper:
            pushing[:, -1] = gradient[:, -1]
        if free:
            pushing[:, free] = 0.0
        kkt = feasible & np.all(pushing <= _KKT_TOLERANCE * scale[:, None], axis=1)
        better = feasible & (sse < best_sse)
        best_sse = np.where(better, sse, best_sse)
        best[better] = candidate[better]
        certified |= kkt
        if certified.all():
            break
    return best, np.maximum(best_sse, 0.0)


@lru_cache(maxsize=None)
def _pairs(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays for the unique (i ≤ j) entries of a symmetric size×size matrix."""
    first, second = np.triu_indices(size)
    lookup = np.zeros((size, size), dtype=int)
    lookup[first, second] = lookup[second, first] = np.arange(len(first))
    return first, second, lookup


def profile(law: Law, log_variables, error, weights, exponents):
    """Best bounded coefficients for each exponent vector and each weight vector.

    exponents: (G, P) shared by all weight vectors, or (R, G, P) one set per weight vector;
    weights: (R, n); error: (n,) or (R, n).  Returns parameters (R, G, n_parameters) and
    weighted SSE (R, G).
    """
    n_resamples, n_points = weights.shape
    bases = np.exp(law.log_bases(exponents, log_variables)).swapaxes(-1, -2)
    design = np.concatenate([bases, np.ones(bases.shape[:-2] + (1, n_points))], axis=-2)  # (..., m, n)
    size, n_grid = design.shape[-2], exponents.shape[-2]
    if exponents.ndim == 2:
        first, second, lookup = _pairs(size)
        products = design[..., first, :] * design[..., second, :]
        pair_sums = np.tensordot(weights, products, axes=([1], [2]))
        moment = np.tensordot(weights * error, design, axes=([1], [2]))
        exponents = np.broadcast_to(exponents, (n_resamples,) + exponents.shape)
        gram = pair_sums[..., lookup]
    else:  # one exponent set per weight vector: batched matrix products, no (R, G, pairs, n) array
        weighted = design * weights[:, None, None, :]
        gram = weighted @ design.swapaxes(-1, -2)
        moment = (design @ (weights * error)[:, None, :, None])[..., 0]
    square_sum = np.repeat(np.sum(weights * error**2, axis=-1), n_grid)
    upper = np.repeat(np.where(weights > 0, error, np.inf).min(axis=1), n_grid)
    linear, sse = bounded_linear_fit(gram.reshape(-1, size, size), moment.reshape(-1, size), square_sum, upper)
    linear = linear.reshape(n_resamples, n_grid, size)
    parameters = np.concatenate([linear[..., :-1], exponents, linear[..., -1:]], axis=-1)
    return parameters, sse.reshape(n_resamples, n_grid)


def grid_search(law: Law, log_variables, error, weights, grid=DEFAULT_EXPONENT_GRID):
    """Best point of the full exponent grid (every exponent over `grid`) per weight vector."""
    exponents = np.array(list(itertools.product(grid, repeat=len(law.exponent_names))))
    parameters, sse = profile(law, log_variables, error, weights, exponents)
    best = np.argmin(sse, axis=1)
    rows = np.arange(len(best))
    return parameters[rows, best], sse[rows, best]


@lru_cache(maxsize=None)
def _difference_stencil(n_exponents: int):
    """3^P stencil offsets and, for central differences, the indices of ±e_i and ±e_i±e_j."""
    stencil = np.array(list(itertools.product((-1, 0, 1), repeat=n_exponents)))
    index = {tuple(row): k for k, row in enumerate(stencil)}

    def at(**offsets):
        point = [0] * n_exponents
        for axis, sign in offsets.values():
            point[axis] += sign
        return index[tuple(point)]

    pairs = {}
    for i, j in itertools.product(range(n_exponents), repeat=2):
        if i != j:
            pairs[i, j] = [at(a=(i, a), b=(j, b)) for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    axes = [(at(a=(i, 1)), at(a=(i, -1))) for i in range(n_exponents)]
    return stencil.astype(float), index[(0,) * n_exponents], axes, pairs


def _derivatives(sse, spacing, centre, axes, pairs):
    """Central-difference gradient and Hessian of the SSE on the stencil."""
    n_exponents = len(axes)
    gradient = np.stack([(sse[:, p] - sse[:, m]) / (2 * spacing[:, i]) for i, (p, m) in enumerate(axes)], axis=1)
    hessian = np.empty((len(sse), n_exponents, n_exponents))
    for i, (p, m) in enumerate(axes):
        hessian[:, i, i] = (sse[:, p] - 2 * sse[:, centre] + sse[:, m]) / spacing[:, i] ** 2
    for (i, j), (pp, pm, mp, mm) in pairs.items():
        hessian[:, i, j] = (sse[:, pp] - sse[:, pm] - sse[:, mp] + sse[:, mm]) / (4 * spacing[:, i] * spacing[:, j])
    return gradient, hessian


def newton_refine(law: Law, log_variables, error, weights, start, radius=0.03, tolerance=1e-7,
                  max_iterations=60):
    """Minimise the exact profile SSE over the exponents by trust-region Newton, per weight vector.

    Exponents are written θ = u² so the bound θ ≥ 0 needs no special case, and searched up to
    MAX_EXPONENT.  Gradient and Hessian in u come from central differences on a 3^P stencil,
    evaluated for all unfinished weight vectors in one `profile` call; a step is kept only if
    it lowers the SSE, else the trust radius shrinks.  start: (R, n_parameters) parameter
    vectors; error: (n,) or (R, n).  Returns parameters (R, ·) and SSE (R,).
    """
    error = np.asarray(error, dtype=float)
    n_exponents = len(law.exponent_names)
    stencil, centre, axes, pairs = _difference_stencil(n_exponents)
    identity = np.eye(n_exponents)
    best_parameters = np.array(start, dtype=float)
    _, exponents, _ = law.split(best_parameters)
    n_rows = len(best_parameters)
    best_u = np.sqrt(exponents)
    best_sse = np.full(n_rows, np.inf)
    gradient = np.zeros((n_rows, n_exponents))
    hessian = np.tile(identity, (n_rows, 1, 1))
    radii = np.full(n_rows, float(radius))
    candidate_u = best_u.copy()
    active = np.arange(n_rows)
    u_limit = np.sqrt(MAX_EXPONENT)
    for _ in range(max_iterations):
        u = candidate_u[active]
        spacing = 1e-4 * np.maximum(1.0, np.abs(u))
        errors = error[active] if error.ndim == 2 else error
        parameters, sse = profile(law, log_variables, errors, weights[active], (u[:, None, :] + spacing[:, None, :] * stencil) ** 2)
        sse = np.where(np.isfinite(sse), sse, np.inf)
        improved = sse[:, centre] < best_sse[active]
        rows = active[improved]
        best_u[rows] = u[improved]
        best_sse[rows] = sse[improved, centre]
        best_parameters[rows] = parameters[improved, centre]
        new_gradient, new_hessian = _derivatives(sse[improved], spacing[improved], centre, axes, pairs)
        usable = np.all(np.isfinite(new_gradient), axis=1) & np.all(np.isfinite(new_hessian), axis=(1, 2))
        gradient[rows[usable]] = new_gradient[usable]
        hessian[rows[usable]] = new_hessian[usable]
        radii[active] = np.where(improved, np.minimum(radii[active] * 2, 1.0), radii[active] / 4)
        # Levenberg shift keeps the local model convex; the step is clipped to the trust radius.
        local_hessian = hessian[active]
        smallest = np.linalg.eigvalsh(local_hessian)[:, 0]
        shift = np.maximum(0.0, 1e-12 * np.abs(local_hessian).max(axis=(1, 2)) - smallest) + 1e-300
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            step = -np.linalg.solve(local_hessian + shift[:, None, None] * identity, gradient[active][..., None])[..., 0]
        # A flat direction (degenerate data) makes the Newton step overflow: go downhill instead.
        unusable = ~np.isfinite(step).all(axis=1)
        step[unusable] = -gradient[active][unusable]
        largest = np.abs(step).max(axis=1)
        length = largest * np.linalg.norm(step / np.maximum(largest, 1e-300)[:, None], axis=1)
        step *= np.minimum(1.0, radii[active] / np.maximum(length, 1e-300))[:, None]
        unfinished = (np.minimum(length, radii[active]) >= tolerance)
        active = active[unfinished]
        if len(active) == 0:
            break
        candidate_u[active] = np.clip(best_u[active] + step[unfinished], -u_limit, u_limit)
    return best_parameters, best_sse


def exact_fits(law: Law, log_variables, error, weights, grid=DEFAULT_EXPONENT_GRID):
    """Global constrained least-squares fit per weight vector: full grid, then local refinement."""
    start, _ = grid_search(law, log_variables, error, weights, grid)
    return newton_refine(law, log_variables, error, weights, start)
