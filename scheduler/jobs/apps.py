from django.apps import AppConfig
from django.conf import settings

from scheduler import querycount


class JobsConfig(AppConfig):
    name = "scheduler.jobs"
    label = "jobs"

    def ready(self) -> None:
        if settings.COUNT_QUERIES:
            querycount.install()
