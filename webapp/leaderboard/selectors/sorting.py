"""The leaderboard's order: every filtered row's checkpoint id in the asked order, one NumPy lexsort kept in
this process per data version (and per cost, Q and FLOPs formula, when the order depends on it), so each page is a
slice of it.

The sort columns: N, V, error and the score's other numbers come with the cached points; a benchmark's
score, or a text, boolean or date column as its rank in the database's own order (its collation), is read
once per data version for every score of the suite, whoever asks, and aligned with the points. Nulls sort
last in either direction; ties go to the next key, then to the checkpoint id."""

import numpy as np
from django.db.models import F, FloatField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from webapp.core.versioning import versioned_memo
from webapp.leaderboard.selectors.rows import LeaderboardError, fetch_rows, filtered_points, viewer_key
from webapp.registry.models import SuiteScore

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


def _read(suite, name: str) -> np.ndarray:
    """(checkpoint id, value) of every score on the suite, by checkpoint id: a benchmark's score, or a text,
    boolean or date column as its rank in the database's order. Every row of the suite, whoever asks and
    whatever the filter (only the order of the rows a reader may see is taken from it): one read serves all."""
    scores = SuiteScore.objects.filter(suite=suite)
    if name.startswith("bench:"):
        values = scores.values_list("checkpoint_id", Cast(KT(f"benchmark_scores__{name[6:]}"), FloatField()))
        table = np.array(fetch_rows(values), dtype=float).reshape(-1, 2)
    else:
        path = SORTABLE[name]
        ordered = scores.order_by(F(path).asc(nulls_last=True), "checkpoint_id").values_list("checkpoint_id", path)
        rows, rank, previous = [], -1, object()
        for checkpoint, value in fetch_rows(ordered):
            rank += value != previous
            rows.append((checkpoint, np.nan if value is None else rank))
            previous = value
        table = np.array(rows, dtype=float).reshape(-1, 2)
    return table[np.argsort(table[:, 0], kind="stable")]  # by checkpoint id, once: every alignment searches it


def _column(suite, name: str, points, version) -> np.ndarray:
    """The sort column aligned with the cached points (NaN where null)."""
    if name in NUMERIC:
        return points.numbers[SORTABLE[name]]
    table = versioned_memo(("column", suite.pk, name), lambda: _read(suite, name), version)
    if not len(table):
        return np.full(len(points.checkpoint), np.nan)
    at = np.minimum(np.searchsorted(table[:, 0], points.checkpoint), len(table) - 1)
    return np.where(table[at, 0] == points.checkpoint, table[at, 1], np.nan)


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
                value = _column(suite, name, points, version)
            missing = np.isnan(value)
            keys += [np.where(missing, 0.0, -value if key.startswith("-") else value), missing]
        return points.checkpoint[np.lexsort(keys)]  # the last key is the primary one

    by_cost = query.cost if BY_COST & set(names) else None
    return versioned_memo(("sorted", viewer_key(user), suite.pk, query.rows, by_cost, query.ordering), compute, version)
