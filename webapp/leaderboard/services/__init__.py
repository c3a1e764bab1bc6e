"""Writes of the leaderboard app: ``scores`` (results as they land, every suite score,
published scores: the one writer of SuiteScore) and ``refit`` (measured scores and scaling-law fits of
every suite, skipped where the input has not changed)."""

from webapp.leaderboard.services.refit import BOOTSTRAP_SEED, fingerprint, measured_scores, refit_all
from webapp.leaderboard.services.scores import (
    PAPER_CITATION,
    PAPER_URL,
    ScoresError,
    benchmark_result_reuse,
    benchmark_results_record,
    checkpoint_suite_score_refresh,
    measured_suite_scores_replace,
    published_scores_load,
)

__all__ = [
    "BOOTSTRAP_SEED", "PAPER_CITATION", "PAPER_URL", "ScoresError", "benchmark_result_reuse",
    "benchmark_results_record", "checkpoint_suite_score_refresh", "fingerprint", "measured_scores",
    "measured_suite_scores_replace", "published_scores_load", "refit_all",
]
