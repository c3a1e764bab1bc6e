"""The Celery app. Configuration lives in Django settings under the CELERY_ namespace.

Start one worker per pool of settings.FRONTIER_WORKER_POOLS, as `make run` and docker compose do:
`celery -A workers.celery_app worker -Q gpu-eval,gpu-train -n gpu@%h` and
`celery -A workers.celery_app worker -Q cpu -n cpu@%h`. On the embedded default the broker is
workers.broker's order-keeping filesystem transport (settings.CELERY_BROKER_TRANSPORT).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("frontier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
