from django.apps import AppConfig

from scheduler.jobs import checks  # noqa: F401  (registers the system checks; it imports no models)


class JobsConfig(AppConfig):
    name = "scheduler.jobs"
    label = "jobs"
