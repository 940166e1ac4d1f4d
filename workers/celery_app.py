"""The Celery app. Its configuration is the CELERY_* names in scheduler/settings.py."""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
django.setup()

app = Celery("gpuq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "gpuq.control"  # jobs never go here: each is sent to its GPU's queue
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
