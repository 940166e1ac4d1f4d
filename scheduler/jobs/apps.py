from django.apps import AppConfig
from django.conf import settings


class JobsConfig(AppConfig):
    name = "scheduler.jobs"
    label = "jobs"

    def ready(self) -> None:
        if settings.COUNT_QUERIES:
            from scheduler import querycount

            querycount.install()
