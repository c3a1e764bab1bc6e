"""Repeated configurations: checkpoints that share one (N, V) are replicates, not an error.

Two seeds of one configuration, two compressors or two LLM families of one size give several
errors at the same (N, V).  Each checkpoint counts once in the least squares.  Because the law
predicts one value per configuration, that is exactly one point per configuration at its mean
error, weighted by its number of checkpoints (the sum of squares over checkpoints is the
weighted one over means plus the spread within configurations, which no law can reduce).  The
solvers therefore work on configurations, whatever the number of checkpoints; statistics
(SSE, R², MAPE, residuals) are reported over checkpoints; and the bootstrap resamples
checkpoints, so the spread between seeds widens the intervals.

Why not weight by item counts: a checkpoint's error varies with its training seed as well as
with the items it was scored on, and more items do not remove the seed's share, so weights
proportional to item counts would overstate how sure a large evaluation is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitting.points import Points, pair_groups

POOLING = (
    "replicates pooled: checkpoints with the same (N, V) each count once (least squares over checkpoints = "
    "one point per configuration at its mean error, weighted by its number of checkpoints); the bootstrap "
    "resamples checkpoints"
)


@dataclass(frozen=True)
class Configurations:
    """The distinct (N, V) of some points: count, mean error and standard deviation (NaN for a
    single checkpoint) per configuration, and `index`, the configuration of each point."""

    n_params_b: np.ndarray
    visual_tokens: np.ndarray
    count: np.ndarray
    mean_error: np.ndarray
    sd: np.ndarray
    index: np.ndarray
    within_sse: float

    def __len__(self) -> int:
        return len(self.count)

    @property
    def log_variables(self) -> np.ndarray:
        return np.log(np.stack([self.n_params_b, self.visual_tokens]))

    @property
    def n_checkpoints(self) -> int:
        return int(self.count.sum())

    @property
    def within_sd(self) -> float | None:
        """Pooled standard deviation of a checkpoint around its configuration's mean; None
        without repeated configurations (no degrees of freedom)."""
        freedom = self.n_checkpoints - len(self)
        return float(np.sqrt(self.within_sse / freedom)) if freedom > 0 else None

    def summary(self) -> dict:
        return {
            "repeats": POOLING,
            "checkpoints": self.n_checkpoints,
            "configurations": len(self),
            "repeated_configurations": int((self.count > 1).sum()),
            "most_repeats": int(self.count.max()) if len(self) else 0,
            "within_configuration_sse": self.within_sse,
            "within_configuration_sd": self.within_sd,
        }

    def sums(self, weights: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of point weights (R, n): each configuration's total weight and weighted mean of
        `values` (0 where its weight is 0).  Returns two (R, n_configurations) arrays."""
        weights = np.atleast_2d(weights)
        order = np.argsort(self.index, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(self.index[order]) != 0])
        total = np.add.reduceat(weights[:, order], starts, axis=1)
        weighted = np.add.reduceat(weights[:, order] * values[order], starts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(total > 0, weighted / np.where(total > 0, total, 1.0), 0.0)
        return total, mean


def configurations(points: Points) -> Configurations:
    """Group points by (N, V), configurations in (N, V) order. Hashed, not sorted: O(n)."""
    pairs, index = pair_groups(points.n_params_b, points.visual_tokens)
    keys = pairs.T.astype(float)
    count = np.bincount(index, minlength=len(keys)).astype(float)
    mean = np.bincount(index, weights=points.error, minlength=len(keys)) / count
    deviation = points.error - mean[index]
    squares = np.bincount(index, weights=deviation**2, minlength=len(keys))
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(count > 1, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan)
    return Configurations(
        n_params_b=keys[:, 0], visual_tokens=keys[:, 1], count=count, mean_error=mean, sd=sd, index=index,
        within_sse=float(squares.sum()),
    )
