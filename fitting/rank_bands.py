"""Ranks and frontier badges that respect noise: no order is claimed that the intervals cannot support.

A leaderboard that sorts by point estimate ranks 0.301 above 0.302 even when both are ±0.02.  Here,
as on LMSYS Chatbot Arena, an entry's rank counts only the entries that are better *beyond noise*
(their interval lies entirely on the better side of its own), so entries whose intervals overlap can
share a rank, and each entry carries the band of ranks its interval allows.  The measured Pareto
frontier gets the same treatment: a costlier point is marked as improving on the cheaper frontier only
when its interval separates from theirs.

Intervals are the (low, high) of a 95 % interval around each estimate; "beyond noise" compares them with
strict inequalities, so intervals that touch are not separated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitting.frontier import pareto_order


@dataclass(frozen=True)
class RankBand:
    """One entry's rank and band.  ``rank`` = ``best`` = 1 + the entries better beyond noise; ``worst`` = the
    entries not worse beyond noise (itself included); ``tied``: another entry has the same rank."""

    id: object
    estimate: float
    low: float
    high: float
    rank: int
    best: int
    worst: int
    tied: bool


@dataclass(frozen=True)
class FrontierBadges:
    """The measured Pareto frontier (ids, cheapest first), the ids that keep the frontier badge beyond noise,
    and, for each frontier id that lost it, the cheaper frontier ids it could not separate from (cheapest
    first)."""

    frontier: tuple
    badged: tuple
    withheld: dict


def _intervals(rows, width: int, what: str) -> tuple[list, np.ndarray]:
    """Ids and a float array of the remaining columns, checked: unique ids, finite numbers, low <= estimate
    <= high (the last three columns)."""
    rows = list(rows)
    if any(len(row) != width for row in rows):
        raise ValueError(f"each {what} must have {width} fields")
    ids = [row[0] for row in rows]
    if len(set(ids)) != len(ids):
        duplicates = sorted({str(item) for item in ids if ids.count(item) > 1})
        raise ValueError(f"{what} ids must be unique; repeated: {duplicates}")
    values = np.array([row[1:] for row in rows], dtype=float).reshape(len(rows), width - 1)
    for item, row in zip(ids, values):
        if not np.isfinite(row).all():
            raise ValueError(f"{what} {item!r} has a non-finite value: {row.tolist()}")
        estimate, low, high = row[-3:]
        if low > high:
            raise ValueError(f"{what} {item!r}: interval low {low:g} is above high {high:g}")
        if not low <= estimate <= high:
            raise ValueError(f"{what} {item!r}: estimate {estimate:g} lies outside its interval [{low:g}, {high:g}]")
    return ids, values


def band_ranks(low, high, *, lower_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``rank_bands``' rule on arrays, in O(n log n) for leaderboards of 100,000 rows: (rank = best possible
    rank, worst possible rank) of each interval [low[i], high[i]]."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    sorted_low, sorted_high = np.sort(low), np.sort(high)
    if lower_is_better:  # better: other.high < self.low; worse: other.low > self.high
        better = np.searchsorted(sorted_high, low, side="left")
        worse = len(low) - np.searchsorted(sorted_low, high, side="right")
    else:  # better: other.low > self.high; worse: other.high < self.low
        better = len(low) - np.searchsorted(sorted_low, high, side="right")
        worse = np.searchsorted(sorted_high, low, side="left")
    return 1 + better, len(low) - worse


def rank_bands(entries, *, lower_is_better: bool = True) -> list[RankBand]:
    """Rank entries (id, estimate, low, high) so that ranks respect noise (the rule of LMSYS Chatbot Arena).

    Rule: another entry is *better beyond noise* when its interval lies entirely on the better side of this
    entry's interval, strictly: for errors (``lower_is_better``) other.high < self.low; for scores
    other.low > self.high.  *Worse beyond noise* is the mirror image.  Then

    - rank = best possible rank = 1 + the number of entries better beyond noise;
    - worst possible rank = the number of entries not worse beyond noise (itself included).

    Entries whose intervals overlap can share a rank (``tied``).  Returned sorted by (rank, estimate, better
    first), ids as the last tie-break.  Refuses low > high, an estimate outside [low, high], non-finite
    values and repeated ids."""
    ids, values = _intervals(entries, 4, "entry")
    if not ids:
        return []
    estimate, low, high = values.T
    rank, worst = band_ranks(low, high, lower_is_better=lower_is_better)
    counts = np.bincount(rank)
    bands = [RankBand(item, float(e), float(lo), float(hi), int(r), int(r), int(w), bool(counts[r] > 1))
             for item, e, lo, hi, r, w in zip(ids, estimate, low, high, rank, worst)]
    sign = 1.0 if lower_is_better else -1.0
    return sorted(bands, key=lambda band: (band.rank, sign * band.estimate, str(band.id)))


def frontier_beyond_noise(points) -> FrontierBadges:
    """Frontier badges that respect noise, for points (id, flops, error, low, high).

    The measured Pareto frontier is the points with the lowest error at no more FLOPs (``pareto_order``: no
    other point is at most as costly and strictly better).  Walking it from the cheapest point, a point keeps
    its badge only when its error is lower than every cheaper frontier point's beyond noise: its high is below
    each of their lows (strictly).  The cheapest frontier point always keeps it.  A point that loses it is
    listed with the cheaper frontier points whose intervals it could not separate from.  Refuses what
    ``rank_bands`` refuses, and non-positive FLOPs."""
    ids, values = _intervals(points, 5, "point")
    if not ids:
        return FrontierBadges((), (), {})
    flops, error, low, high = values.T
    if (flops <= 0).any():
        raise ValueError(f"FLOPs must be positive; got {flops[flops <= 0].tolist()[:5]}")
    order = pareto_order(flops, error)
    badged, withheld = [], {}
    for position, index in enumerate(order):
        cheaper = order[:position]
        unseparated = [ids[other] for other in cheaper if not high[index] < low[other]]
        if unseparated:
            withheld[ids[index]] = tuple(unseparated)
        else:
            badged.append(ids[index])
    return FrontierBadges(tuple(ids[index] for index in order), tuple(badged), withheld)
