"""The Celery app. Its configuration is the CELERY_* names in scheduler/settings.py."""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
django.setup()

app = Celery("gpuq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "gpuq.control"  # jobs never go here: each is sent to its GPU's queue
# Celery's Django fixup closes the database connection before and after every task unless told to
# reuse it: a new connection per job was 17% of a short job's worker time (py-spy, BENCHMARKS.md).
# persist() keeps the connection healthy instead (CONN_MAX_AGE, health checks, reconnect on error).
app.conf.CELERY_DB_REUSE_MAX = 10**9
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
