"""What `celery -A workers.celery_app` loads in every worker and beat process: the project's Celery app
(webapp/celery_app.py), which finds the tasks of this package (workers/tasks.py) when the worker starts."""

import evaluation.offline  # noqa: F401  (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE=1 before anything imports datasets:
# workers read the dataset mirror, FRONTIER_DATASETS_DIR, never the hub)
from webapp.celery_app import app  # noqa: F401
