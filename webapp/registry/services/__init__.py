"""Writes of the registry, one module per concern:

- ``runs``: the benchmark catalog, evaluation runs (start, rerun, cancel) and their quotas;
- ``submission``: an uploaded archive or a reference (shared storage, hub) becomes a checkpoint;
- ``uploads``: chunked uploads; ``outcomes``: what validation decides, the evaluations that follow, deletion;
- ``stale``: re-evaluating stale results (a task hash or dataset revision changed) in one action.
- ``datasets``: queuing a dataset prefetch job (the API twin of ``manage.py datasets prefetch``).

Results landing, suite scores and published scores are the leaderboard's (webapp.leaderboard.services)."""

from webapp.registry.services.common import EVALUATE_TASK, VALIDATE_TASK, QuotaExceeded, RegistryError
from webapp.registry.services.datasets import datasets_prefetch_queue
from webapp.registry.services.outcomes import (
    checkpoint_accept,
    checkpoint_delete,
    checkpoint_reject,
    checkpoint_validate,
    checkpoint_validation_failed,
    checkpoint_validation_start,
    content_duplicate,
    deferred_evaluations_start,
    requested_evaluations_start,
)
from webapp.registry.services.runs import benchmark_catalog_sync, run_cancel, run_rerun_failed, run_start
from webapp.registry.services.stale import stale_results_reevaluate
from webapp.registry.services.submission import (
    checkpoint_register_reference,
    checkpoint_submit,
    reference_check,
    reference_path_resolve,
    visible_duplicate,
)
from webapp.registry.services.uploads import (
    upload_append,
    upload_complete,
    upload_part_path,
    upload_start,
    uploads_expire,
)

__all__ = [
    "EVALUATE_TASK", "VALIDATE_TASK", "QuotaExceeded", "RegistryError", "benchmark_catalog_sync", "checkpoint_accept",
    "checkpoint_delete", "checkpoint_register_reference", "checkpoint_reject", "checkpoint_submit",
    "checkpoint_validate", "checkpoint_validation_failed", "checkpoint_validation_start", "content_duplicate",
    "datasets_prefetch_queue", "deferred_evaluations_start", "reference_check", "reference_path_resolve",
    "requested_evaluations_start", "run_cancel", "run_rerun_failed", "run_start", "stale_results_reevaluate",
    "upload_append", "upload_complete", "upload_part_path", "upload_start", "uploads_expire", "visible_duplicate",
]
