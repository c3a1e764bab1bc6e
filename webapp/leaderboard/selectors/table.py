"""The leaderboard: a sorted, filtered page of rows: the order and the frontier from columns kept per data
version (selectors.sorting, selectors.rows), then one query for the page's rows."""

from dataclasses import dataclass, field

import numpy as np

from evaluation.suites import benchmark_normalisation

from webapp.core.versioning import data_version, versioned_cache
from webapp.leaderboard.selectors.rows import (
    Cost,
    LeaderboardError,
    RowFilter,
    count_and_frontier,
    rank_bands_of,
    suite_with_benchmark_keys,
)
from webapp.leaderboard.selectors.sorting import sorted_checkpoints
from webapp.leaderboard.selectors.suite_scores import judge_mix
from webapp.registry.hub import checkpoint_hub_url, llm_hub_url
from webapp.registry.models import SuiteScore
from webapp.registry.selectors.stale import benchmarks_stale, current_identity


@dataclass(frozen=True)
class LeaderboardQuery:
    rows: RowFilter
    cost: Cost = field(default_factory=Cost)
    ordering: tuple[str, ...] = ("error",)
    page: int = 1
    page_size: int | None = 50  # None: every filtered row on one page (exports)


ROW_VALUES = (
    "checkpoint_id", "checkpoint__name", "checkpoint__owner__username", "checkpoint__status",
    "checkpoint__visibility", "checkpoint__published", "checkpoint__citation", "checkpoint__source_url",
    "checkpoint__llm__name", "checkpoint__llm__family", "checkpoint__llm__n_params",
    "checkpoint__compressor__method", "checkpoint__compressor__version", "checkpoint__visual_tokens",
    "error", "stderr", "n_benchmarks", "source", "benchmark_scores", "benchmark_identities",
    "latency_first_token_s", "latency_decode_per_token_s", "latency_device", "updated_at",
    "checkpoint__reference", "checkpoint__llm__source", "checkpoint__llm__revision",
    "checkpoint__llm__n_params_nominal", "checkpoint__llm__n_params_counted",
)
# Rows read by id at a time: an export of every row stays under any database's parameter limit.
ROWS_PER_READ = 1000


def _milliseconds(seconds):
    return None if seconds is None else seconds * 1000.0


def _flops_or_none(values: np.ndarray, known: np.ndarray) -> list:
    return [float(value) if ok else None for value, ok in zip(values, known, strict=True)]


def _page_checkpoints(user, suite, query: LeaderboardQuery, benchmark_keys, frontier, start, size, version) -> list:
    return sorted_checkpoints(user, suite, query, benchmark_keys, frontier, version)[start:start + size].tolist()


def _rows(suite, page_ids: list[int], version: str) -> dict[int, dict]:
    """The page's rows by checkpoint id; a page (not an export) cached per data version, so the same rows at
    another Q (only FLOPs and the frontier badge change) cost no query. In Django's cache, pickled: thousands
    of pages of small dicts kept as objects would slow every garbage collection of the process."""

    def compute():
        by_id = {}
        for first in range(0, len(page_ids), ROWS_PER_READ):
            chunk = SuiteScore.objects.filter(suite=suite, checkpoint_id__in=page_ids[first:first + ROWS_PER_READ])
            by_id.update((row["checkpoint_id"], row) for row in chunk.values(*ROW_VALUES))
        return by_id

    if len(page_ids) > ROWS_PER_READ:
        return compute()
    return versioned_cache(("rows", suite.pk, tuple(page_ids)), compute, version)


RANK_RULE = ("A row ranks below another only when their 95 % intervals (error ± 1.96·stderr) separate, as on "
             "Chatbot Arena: rank = 1 + the rows whose interval lies wholly below its own; rows whose intervals "
             "overlap can share a rank (tied); rank_worst is the lowest rank its interval allows.")


def _rank_fields(band: dict | None) -> dict:
    band = band or {}
    return {"rank": band.get("rank"), "rank_worst": band.get("worst"), "rank_tied": band.get("tied")}


def leaderboard_page(user, query: LeaderboardQuery) -> dict:
    """One page of leaderboard rows (sorted, filtered), with the on-frontier badge computed over
    every filtered row, not just the page."""
    suite, benchmark_keys = suite_with_benchmark_keys(query.rows.suite)
    version = data_version()  # once: every cached piece of the answer is of the same data
    count, frontier = count_and_frontier(user, suite, query.rows, query.cost, version)
    page_size = query.page_size or max(count, 1)
    pages = max(1, -(-count // page_size))
    if query.page > pages:
        raise LeaderboardError(f"page {query.page} is past the last page ({pages}) of {count} rows.")
    start = (query.page - 1) * page_size
    # Sort narrow (cached columns), then read the page's wide rows by checkpoint.
    page_ids = _page_checkpoints(user, suite, query, benchmark_keys, frontier, start, page_size, version)
    by_id = _rows(suite, page_ids, version)
    values = [by_id[pk] for pk in page_ids]
    identity = current_identity()  # per process: installed task files, the mirror's revisions
    bands = rank_bands_of(user, suite, query.rows, page_ids, version)  # among every filtered row

    n_params = np.array([row["checkpoint__llm__n_params"] or 0 for row in values], dtype=float) / 1e9
    tokens = np.array([row["checkpoint__visual_tokens"] or 0 for row in values], dtype=float)
    methods = np.array([row["checkpoint__compressor__method"] or "" for row in values], dtype=object)
    known = (n_params > 0) & (tokens > 0)
    flops = _flops_or_none(query.cost.flops(n_params, tokens, methods=methods), known)
    flops_q0 = _flops_or_none(query.cost.flops(n_params, tokens, query_tokens=0.0, methods=methods), known)
    results = [
        {
            "id": row["checkpoint_id"],
            "name": row["checkpoint__name"],
            "owner": row["checkpoint__owner__username"],
            "status": row["checkpoint__status"],
            "visibility": row["checkpoint__visibility"],
            "published": row["checkpoint__published"],
            "citation": row["checkpoint__citation"],
            "source_url": row["checkpoint__source_url"],
            "hub_url": checkpoint_hub_url(row["checkpoint__reference"]),
            "llm": row["checkpoint__llm__name"],
            "llm_family": row["checkpoint__llm__family"],
            "llm_hub_url": llm_hub_url(
                row["checkpoint__llm__name"], row["checkpoint__llm__source"], row["checkpoint__llm__revision"]
            ),
            "n_params": row["checkpoint__llm__n_params"],
            "n_params_b": row["checkpoint__llm__n_params"] and row["checkpoint__llm__n_params"] / 1e9,
            "n_params_nominal": row["checkpoint__llm__n_params_nominal"],
            "n_params_counted": row["checkpoint__llm__n_params_counted"],
            "compressor": row["checkpoint__compressor__method"],
            "compressor_version": row["checkpoint__compressor__version"],
            "visual_tokens": row["checkpoint__visual_tokens"],
            "flops_q0": flops_q0[index],
            "flops": flops[index],
            "latency_first_token_ms": _milliseconds(row["latency_first_token_s"]),
            "latency_decode_per_token_ms": _milliseconds(row["latency_decode_per_token_s"]),
            "latency_device": row["latency_device"],
            "scores": row["benchmark_scores"],
            "error": row["error"],
            "stderr": row["stderr"],
            "n_benchmarks": row["n_benchmarks"],
            "source": row["source"],
            "on_frontier": row["checkpoint_id"] in frontier,
            # Rank band (RANK_RULE): rank = 1 + the rows better beyond noise; rank_worst = the rows not worse beyond it
            **_rank_fields(bands.get(row["checkpoint_id"])),
            # {benchmark key: why its result is stale}: task files or dataset revision changed since; empty: current
            "stale": benchmarks_stale(row["benchmark_identities"], identity),
            # {benchmark key: {"from", "to", "reason"}}: results computed with a batch size halved after running out
            # of memory (scores can move with the batch size)
            "batch_changed": {key: found["batch_size_changed"] for key, found in
                              (row["benchmark_identities"] or {}).items() if (found or {}).get("batch_size_changed")},
            # {benchmark key: judge label} of its LLM-judged benchmarks ("rule-based" without a judge)
            "judges": {key: found["judge"] for key, found in (row["benchmark_identities"] or {}).items()
                       if (found or {}).get("judge")},
            "updated_at": row["updated_at"],
        }
        for index, row in enumerate(values)
    ]
    return {
        "suite": suite.name,
        "benchmarks": benchmark_keys,
        # How each benchmark's result becomes its normalised score (error = 1 − score), e.g. MME's sum / 2800.
        "normalisations": {key: benchmark_normalisation(key) for key in benchmark_keys},
        # Judged benchmarks whose scores come from different judges: {key: {judge label: checkpoints}}.
        "mixed_judges": judge_mix(suite, benchmark_keys, version),
        **query.cost.as_dict(),
        "ordering": list(query.ordering),
        "count": count,
        "page": query.page,
        "page_size": query.page_size or count,
        "pages": pages,
        "frontier_size": len(frontier),
        "rank_rule": RANK_RULE,
        "results": results,
    }
