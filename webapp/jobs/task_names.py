"""Every Celery task of Frontier in one table: the name the web side publishes and the worker registers
(``workers.tasks`` defines them), the queue it is routed to, and what the queue page calls it.

``settings.CELERY_TASK_ROUTES`` is built from it, the services submit by these names, and a test checks
that the worker registers exactly these tasks. Plain Python: settings import it before Django is set up.
"""

from typing import NamedTuple


class TaskName(NamedTuple):
    name: str
    queue: str
    label: str


EVALUATE = TaskName("workers.tasks.evaluate_benchmark", "gpu-eval", "evaluation")
TRAIN = TaskName("workers.tasks.train_compressor", "gpu-train", "training")
VALIDATE = TaskName("workers.tasks.validate_checkpoint", "cpu", "validation")
REFIT = TaskName("workers.tasks.refit_scaling_laws", "cpu", "refit")
REAP = TaskName("workers.tasks.reap_jobs", "cpu", "reaper")
DIAGNOSTIC = TaskName("workers.tasks.diagnostic_sleep", "cpu", "diagnostic")
STORAGE_DIGEST = TaskName("workers.tasks.storage_digest", "cpu", "storage check")
PREFETCH_DATASETS = TaskName("workers.tasks.prefetch_datasets", "cpu", "dataset prefetch")

TASKS = (EVALUATE, TRAIN, VALIDATE, REFIT, REAP, DIAGNOSTIC, STORAGE_DIGEST, PREFETCH_DATASETS)
ROUTES = {task.name: {"queue": task.queue} for task in TASKS}
LABELS = {task.name: task.label for task in TASKS}
