"""Reads behind the leaderboard, frontier, compressor and deploy APIs, one module per question:

- ``suite_scores``: what SuiteScore denormalises (newest latency, newest results);
- ``rows``: which rows a reader sees, how FLOPs are counted, the filtered count and Pareto frontier;
- ``table``: the leaderboard page; ``fits``: the fit for a Q and scope, and its decisions;
- ``frontier``: the chart; ``compressors``: the α/β table; ``deploy``: what to deploy within a budget.

Everything a page of leaderboard rows needs sits on SuiteScore (per-benchmark scores and the newest
latency are denormalised there), so a page is two queries at any size (the sorted ids of the page,
then its rows); what reads every filtered row (the count and the measured Pareto frontier) is cached
under the data version (webapp.core.versioning), and so is each rendered response (api/views.py)."""

from webapp.leaderboard.selectors.compressors import compressor_table
from webapp.leaderboard.selectors.deploy import DeployQuery, deploy_recommendation
from webapp.leaderboard.selectors.fits import fit_at, fit_decisions, scope_matches
from webapp.leaderboard.selectors.frontier import frontier_chart
from webapp.leaderboard.selectors.rows import (
    SCOPES,
    Cost,
    LeaderboardError,
    NoFitYet,
    RowFilter,
    count_and_frontier,
    points_frame,
    suite_with_benchmark_keys,
    viewer_key,
    visible_scores,
)
from webapp.leaderboard.selectors.sorting import SORT_KEYS
from webapp.leaderboard.selectors.suite_scores import (
    NO_LATENCY,
    checkpoint_latency,
    checkpoint_latest_results,
    latest_identities,
    latest_latencies,
)
from webapp.leaderboard.selectors.table import LeaderboardQuery, leaderboard_page

__all__ = [
    "NO_LATENCY", "SCOPES", "SORT_KEYS", "Cost", "DeployQuery", "LeaderboardError", "LeaderboardQuery", "NoFitYet",
    "RowFilter", "checkpoint_latency", "checkpoint_latest_results", "compressor_table", "count_and_frontier",
    "deploy_recommendation", "fit_at", "fit_decisions", "frontier_chart", "latest_identities", "latest_latencies",
    "leaderboard_page", "points_frame", "scope_matches", "suite_with_benchmark_keys", "viewer_key", "visible_scores",
]
