"""Queuing a dataset prefetch (staff, POST /api/v1/datasets/prefetch/): the web twin of ``python -m evaluation
datasets prefetch`` and ``manage.py datasets prefetch``. It checks the request the way they do
(``evaluation.prefetch.sources_for``) and queues one job, ``workers.tasks.prefetch_datasets`` on the cpu queue,
which fetches each dataset into FRONTIER_DATASETS_DIR. While a prefetch of the same datasets (and revision) is
queued or running, asking again returns that job instead of queuing another."""

import hashlib

from django.db import transaction

from evaluation.prefetch import PrefetchError, sources_for
from evaluation.suites import suite_tasks
from webapp.jobs.models import Job, JobState
from webapp.jobs.services import job_submit
from webapp.jobs.task_names import PREFETCH_DATASETS
from webapp.registry.services.common import RegistryError

COALESCE_PREFIX = "datasets-prefetch:"


def _coalesce_key(keys: list[str], revision: str) -> str:
    """One key per (set of datasets, revision); a long one is hashed to fit the column (200 characters)."""
    key = f"{COALESCE_PREFIX}{','.join(sorted(keys))}@{revision or 'default'}"
    return key if len(key) <= 200 else COALESCE_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def datasets_prefetch_queue(*, suite: str = "", tasks: list[str] | None = None, revision: str = "",
                            by=None) -> tuple[Job, bool]:
    """Queue the prefetch of a suite's real benchmarks or of ``tasks`` (lmms-eval task names or benchmark keys),
    ``revision`` only with one dataset. Returns (job, coalesced): coalesced is True when the job is one already
    queued or running for the same datasets. Raises ``RegistryError`` (a 400) naming what is valid."""
    if bool(suite) == bool(tasks):
        raise RegistryError('Give either "suite" (e.g. "reasoning") or "tasks" (e.g. ["pope", "mme"]), not both.')
    try:
        if suite:
            suite_tasks(suite)  # an unknown suite names the known ones (sources_for would take it for a task)
        sources = sources_for(suite or None, list(tasks or []))
    except (PrefetchError, ValueError) as error:
        raise RegistryError(str(error)) from None
    asked = f"suite {suite}" if suite else f"tasks {', '.join(tasks)}"
    if not sources:
        raise RegistryError(f"Nothing to prefetch: the benchmarks of {asked} are generated locally and need no "
                            f"download. Name a suite or tasks with hub datasets (GET /api/v1/datasets/ lists them).")
    if revision and len(sources) != 1:
        raise RegistryError(
            f'"revision" names one dataset\'s revision, but {asked} needs {len(sources)} datasets '
            f'({", ".join(source.task for source in sources)}): give it with one task, e.g. '
            f'{{"tasks": ["{sources[0].task}"], "revision": "{revision}"}}.'
        )
    key = _coalesce_key([source.key for source in sources], revision)
    params = {"suite": suite or "", "tasks": [source.task for source in sources], "revision": revision or ""}
    with transaction.atomic():
        pending = Job.objects.filter(coalesce_key=key, state__in=[JobState.QUEUED, JobState.RUNNING]).first()
        if pending is not None:
            return pending, True
        return job_submit(task_name=PREFETCH_DATASETS.name, params=params, created_by=by, coalesce_key=key), False
