"""The dataset mirror as the API reads it (GET /api/v1/datasets/): per real benchmark whether its hub data are in
FRONTIER_DATASETS_DIR (evaluation.datasets.mirror_status), for every benchmark or a suite's."""

from django.conf import settings

from evaluation.datasets import SOURCE_BY_TASK, mirror_status
from evaluation.suites import BENCHMARK_BY_TASK, BENCHMARKS, suite_tasks
from webapp.core.errors import ServiceError


def dataset_mirror(suite: str | None = None, verify: bool = False) -> dict:
    """{"root", "suite", "verified", "benchmarks": [MirrorRecord.as_dict()], "generated": [benchmark keys]}: the
    records of the real benchmarks (of ``suite``, if given) in table order, and the benchmarks generated locally,
    which need no data. ``verify`` re-hashes every file (slow for large datasets). An unknown suite is a
    ``ServiceError`` (a 400) naming the known ones."""
    if suite:
        try:
            tasks = suite_tasks(suite)
        except ValueError as error:
            raise ServiceError(str(error)) from None
    else:
        tasks = [benchmark.task for benchmark in BENCHMARKS.values()]
    keys = {SOURCE_BY_TASK[task].key for task in tasks if task in SOURCE_BY_TASK}
    generated = [BENCHMARK_BY_TASK[task].key for task in tasks
                 if task not in SOURCE_BY_TASK and task in BENCHMARK_BY_TASK and BENCHMARK_BY_TASK[task].offline]
    records = mirror_status(settings.FRONTIER_DATASETS_DIR, verify=verify, keys=keys)
    return {
        "root": str(settings.FRONTIER_DATASETS_DIR),
        "suite": suite or None,
        "verified": verify,
        "benchmarks": [record.as_dict() for record in records],
        "generated": list(dict.fromkeys(generated)),
    }

