"""What `celery -A workers.celery_app` loads in every worker and beat process: the project's Celery app
(webapp/celery_app.py), which finds the tasks of this package (workers/tasks.py) when the worker starts."""

from webapp.celery_app import app  # noqa: F401
