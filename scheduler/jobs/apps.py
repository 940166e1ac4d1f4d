from django.apps import AppConfig

from scheduler import checks


class JobsConfig(AppConfig):
    name = "scheduler.jobs"
    label = "jobs"

    def ready(self) -> None:
        checks.register()
