"""The leaderboard's order: every filtered row's checkpoint id in the asked order, one NumPy lexsort kept in
this process per data version (and per cost when the order depends on Q), so each page is a slice of it.

Sort columns are read once per data version, aligned with the cached points: numeric ones as numbers; the
others (text, booleans, dates) as their rank in the database's own order (its collation), read in that
order. Nulls sort last in either direction; ties go to the next key, then to the checkpoint id."""

import numpy as np
from django.db.models import F, FloatField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from webapp.core.versioning import versioned_memo
from webapp.leaderboard.selectors.rows import LeaderboardError, filtered_points, viewer_key, visible_scores

# Sort key → the value's path from SuiteScore.
SORTABLE = {
    "id": "checkpoint_id", "name": "checkpoint__name", "owner": "checkpoint__owner__username",
    "status": "checkpoint__status", "published": "checkpoint__published", "llm": "checkpoint__llm__name",
    "llm_family": "checkpoint__llm__family", "n_params": "checkpoint__llm__n_params",
    "compressor": "checkpoint__compressor__method", "visual_tokens": "checkpoint__visual_tokens",
    "error": "error", "stderr": "stderr", "n_benchmarks": "n_benchmarks", "source": "source",
    "latency_first_token_ms": "latency_first_token_s", "latency_decode_per_token_ms": "latency_decode_per_token_s",
    "updated_at": "updated_at",
}
ALIASES = {
    "family": "llm_family", "n": "n_params", "n_params_b": "n_params", "v": "visual_tokens",
    "latency": "latency_first_token_ms", "decode": "latency_decode_per_token_ms",
}
SORT_KEYS = sorted([*SORTABLE, *ALIASES, "flops", "flops_q0", "on_frontier", "bench:<key>"])
NUMERIC = {"stderr", "n_benchmarks", "latency_first_token_ms", "latency_decode_per_token_ms"}
BY_COST = {"flops", "flops_q0", "on_frontier"}


def sort_name(key: str, benchmark_keys: list[str]) -> str:
    """The key's canonical name (aliases resolved, no '-'), or a LeaderboardError naming the keys there are."""
    name = ALIASES.get(key.lstrip("-"), key.lstrip("-"))
    if name.startswith("bench:") and name.removeprefix("bench:") not in benchmark_keys:
        raise LeaderboardError(
            f"Cannot sort by {name!r}: the suite's benchmarks are {', '.join(benchmark_keys) or 'none'}."
        )
    if not (name in SORTABLE or name in BY_COST or name.startswith("bench:")):
        raise LeaderboardError(f"Cannot sort by {key!r}; sort keys (prefix - for descending): {', '.join(SORT_KEYS)}.")
    return name


def _read(user, suite, rows, name: str) -> np.ndarray:
    """(checkpoint id, value) rows of one sort column: a number, or the rank in the database's order."""
    scores = visible_scores(user, suite, rows)
    if name.startswith("bench:"):
        values = scores.values_list("checkpoint_id", Cast(KT(f"benchmark_scores__{name[6:]}"), FloatField()))
        return np.array(list(values), dtype=float).reshape(-1, 2)
    if name in NUMERIC:
        return np.array(list(scores.values_list("checkpoint_id", SORTABLE[name])), dtype=float).reshape(-1, 2)
    path = SORTABLE[name]
    ordered = scores.order_by(F(path).asc(nulls_last=True), "checkpoint_id").values_list("checkpoint_id", path)
    table, rank, previous = [], -1, object()
    for checkpoint, value in ordered:
        rank += value != previous
        table.append((checkpoint, np.nan if value is None else rank))
        previous = value
    return np.array(table, dtype=float).reshape(-1, 2)


def _column(user, suite, rows, name: str, checkpoints: np.ndarray, version) -> np.ndarray:
    """The column aligned with `checkpoints` (the cached points' ids, sorted); NaN where null or unseen."""
    table = versioned_memo(("column", viewer_key(user), suite.pk, rows, name), lambda: _read(user, suite, rows, name),
                           version)
    if not len(table):
        return np.full(len(checkpoints), np.nan)
    table = table[np.argsort(table[:, 0], kind="stable")]
    at = np.minimum(np.searchsorted(table[:, 0], checkpoints), len(table) - 1)
    return np.where(table[at, 0] == checkpoints, table[at, 1], np.nan)


def sorted_checkpoints(user, suite, query, benchmark_keys: list[str], frontier: frozenset[int], version) -> np.ndarray:
    """Every row of `query.rows` (a LeaderboardQuery), as checkpoint ids in `query.ordering`."""
    names = [sort_name(key, benchmark_keys) for key in query.ordering]

    def compute():
        points = filtered_points(user, suite, query.rows, version)
        keys = [points.checkpoint]
        for key, name in reversed(list(zip(query.ordering, names, strict=True))):
            if name in ("error", "visual_tokens"):
                value = getattr(points, name)
            elif name in ("id", "n_params"):
                value = points.checkpoint.astype(float) if name == "id" else points.llm_params_b
            elif name in ("flops", "flops_q0"):
                value = points.flops(query.cost, 0.0 if name == "flops_q0" else None)
            elif name == "on_frontier":
                value = np.isin(points.checkpoint, np.fromiter(frontier, np.int64, len(frontier))).astype(float)
            else:
                value = _column(user, suite, query.rows, name, points.checkpoint, version)
            missing = np.isnan(value)
            keys += [np.where(missing, 0.0, -value if key.startswith("-") else value), missing]
        return points.checkpoint[np.lexsort(keys)]  # the last key is the primary one

    by_cost = query.cost if BY_COST & set(names) else None
    return versioned_memo(("sorted", viewer_key(user), suite.pk, query.rows, by_cost, query.ordering), compute, version)
