"""Re-evaluating stale results in one action (staff: ``manage.py reevaluate_stale``, or POST
``/api/v1/results/stale/reevaluate/``): one evaluation run per (checkpoint, suite, item limit) with the stale
benchmarks only, queued through ``run_start``. A benchmark whose re-evaluation is already queued or running is
skipped, so a second call queues nothing new; once the new result lands, the old one is no longer the newest."""

from collections import defaultdict

from django.db import transaction

from webapp.jobs.models import JobState
from webapp.registry.models import Benchmark, BenchmarkJob, BenchmarkSuite, Checkpoint
from webapp.registry.selectors.stale import stale_results
from webapp.registry.services.common import RegistryError
from webapp.registry.services.runs import run_start


def _pending(checkpoint_ids) -> set[tuple[int, int]]:
    """(checkpoint, benchmark) pairs with an evaluation job queued or running."""
    return set(
        BenchmarkJob.objects.filter(
            run__checkpoint_id__in=checkpoint_ids, job__state__in=[JobState.QUEUED, JobState.RUNNING]
        ).values_list("run__checkpoint_id", "benchmark_id")
    )


@transaction.atomic
def stale_results_reevaluate(*, benchmark_key: str | None = None, dry_run: bool = False, by=None) -> dict:
    """Queue the re-evaluation of every stale result (of one benchmark key, if given). Returns
    {"stale": how many stale results, "already_queued": how many of them have a run going, "runs": [{checkpoint,
    suite, benchmarks, limit, run (None on a dry run), reasons}], "refused": [{checkpoint, suite, detail}]}."""
    stale = stale_results(benchmark_key=benchmark_key)
    checkpoint_ids = sorted({row["checkpoint_id"] for row in stale})
    # Locks the checkpoints: two calls at once queue each re-evaluation once.
    list(Checkpoint.objects.select_for_update().filter(pk__in=checkpoint_ids).order_by("pk").values_list("pk"))
    pending = _pending(checkpoint_ids)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    already = 0
    for row in stale:
        if (row["checkpoint_id"], row["benchmark_id"]) in pending:
            already += 1
        else:
            groups[(row["checkpoint_id"], row["suite_id"], row["limit"])].append(row)
    runs, refused = [], []
    checkpoints = Checkpoint.objects.in_bulk(checkpoint_ids)
    suites = BenchmarkSuite.objects.in_bulk({suite_id for _, suite_id, _ in groups})
    for (checkpoint_id, suite_id, limit), rows in sorted(groups.items(), key=lambda item: item[0][:2]):
        benchmarks = list(Benchmark.objects.filter(pk__in=[row["benchmark_id"] for row in rows]).order_by("key"))
        entry = {
            "checkpoint": checkpoint_id, "suite": suites[suite_id].name, "limit": limit,
            "benchmarks": [benchmark.key for benchmark in benchmarks], "run": None,
            "reasons": {row["benchmark"]: row["reasons"] for row in rows},
        }
        if not dry_run:
            try:
                with transaction.atomic():
                    run = run_start(checkpoint=checkpoints[checkpoint_id], suite=suites[suite_id], created_by=by,
                                    limit=limit, benchmarks=benchmarks)
            except RegistryError as error:
                refused.append({"checkpoint": checkpoint_id, "suite": suites[suite_id].name, "detail": str(error)})
                continue
            entry["run"] = run.pk
        runs.append(entry)
    return {"stale": len(stale), "already_queued": already, "dry_run": dry_run, "runs": runs, "refused": refused}
