"""Task names live in one table (webapp/jobs/task_names.py): the worker registers exactly its tasks,
Celery routes each to its queue, the beat schedule and the services use its names, and no other module
spells a task name out."""

import ast
from pathlib import Path

from django.conf import settings

from webapp.jobs.task_names import LABELS, ROUTES, TASKS

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "webapp" / "jobs" / "task_names.py"


def test_the_worker_registers_exactly_the_tables_tasks():
    import workers.tasks  # noqa: F401  (registers them)
    from workers.celery_app import app

    registered = {name for name in app.tasks if name.startswith("workers.")}
    assert registered == set(ROUTES)


def test_routes_beat_and_queues_come_from_the_table():
    assert settings.CELERY_TASK_ROUTES == ROUTES
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= set(ROUTES)
    queues = {queue for pool in settings.FRONTIER_WORKER_POOLS.values() for queue in pool}
    assert {task.queue for task in TASKS} <= queues  # every task has a worker pool that consumes its queue
    assert set(LABELS) == set(ROUTES) and len(set(LABELS.values())) == len(TASKS)


def test_no_other_module_spells_a_task_name():
    offenders = []
    for package in ("webapp", "workers", "evaluation", "fitting", "bench"):
        for path in (REPO / package).rglob("*.py"):
            if path == TABLE:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ROUTES:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value}")
    assert not offenders, offenders
