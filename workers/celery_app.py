"""The Celery app. Configuration lives in Django settings under the CELERY_ namespace.

Start a worker with `celery -A workers.celery_app worker -Q gpu-eval,gpu-train,cpu`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("frontier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
