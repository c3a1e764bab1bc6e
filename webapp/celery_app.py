"""The project's Celery app (as cookiecutter-django's config/celery_app.py). Configuration lives in
Django settings under the CELERY_ namespace; the web side publishes jobs through it by task name
(webapp/jobs/task_names.py) and never imports a task module.

Worker processes start from ``workers.celery_app``, which is this app: ``celery -A workers.celery_app
worker -Q gpu-eval,gpu-train -n gpu@%h`` and ``... -Q cpu -n cpu@%h``, one per pool of
settings.FRONTIER_WORKER_POOLS, as `make run` and docker compose do. The task modules of ``workers``
are found by name when a worker starts (``autodiscover_tasks``), not imported here. On the embedded
default the broker is webapp.core.broker's order-keeping filesystem transport, loaded by name
(settings.CELERY_BROKER_TRANSPORT).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("frontier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
