"""Writes for the leaderboard: the data version, and a checkpoint's suite score as soon as one of
its results is recorded (the coalesced refit recomputes every score and the fits later)."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import fitting
from webapp.fits.selectors import suite_benchmarks
from webapp.leaderboard.models import DataVersion
from webapp.leaderboard.scoring import measured_suite_scores
from webapp.leaderboard.selectors import (
    NO_LATENCY,
    checkpoint_latest_results,
    data_version_forget,
    latest_latencies,
)
from webapp.registry.models import BenchmarkSuite, ScoreSource, SuiteScore


def data_version_bump() -> None:
    """Move the data version; call it inside the transaction of the write it announces, so the
    new version and the new data become visible together. This process stops using its
    remembered version now and again once the write commits."""
    now = timezone.now()
    if not DataVersion.objects.filter(pk=1).update(counter=F("counter") + 1, changed_at=now):
        _, created = DataVersion.objects.get_or_create(pk=1, defaults={"counter": 1, "changed_at": now})
        if not created:  # another transaction created it first
            DataVersion.objects.filter(pk=1).update(counter=F("counter") + 1, changed_at=now)
    data_version_forget()
    transaction.on_commit(data_version_forget)


@transaction.atomic
def checkpoint_suite_score_refresh(checkpoint_id: int, suite: BenchmarkSuite) -> SuiteScore | None:
    """Recompute one checkpoint's measured score on a suite from its newest results, with the same
    function as the refit. A checkpoint that lacks a benchmark of the suite gets no score yet; values
    the normalisation refuses are left for the refit to report. Moves the data version either way."""
    data_version_bump()
    try:
        scores, _ = measured_suite_scores(
            checkpoint_latest_results(suite, checkpoint_id), suite_benchmarks(suite), suite.name
        )
    except fitting.AggregationError:
        return None
    if scores.empty:
        return None
    row = scores.iloc[0]
    score, _ = SuiteScore.objects.update_or_create(
        checkpoint_id=checkpoint_id, suite=suite,
        defaults={
            "error": float(row["error"]), "stderr": float(row["stderr"]), "n_benchmarks": int(row["n_benchmarks"]),
            "benchmark_scores": row["benchmark_scores"], "source": ScoreSource.MEASURED,
            **latest_latencies(suite, [checkpoint_id]).get(checkpoint_id, NO_LATENCY),
        },
    )
    return score
