from django.apps import AppConfig
from django.conf import settings

from scheduler import checks, querycount


class JobsConfig(AppConfig):
    name = "scheduler.jobs"
    label = "jobs"

    def ready(self) -> None:
        checks.register()
        if settings.COUNT_QUERIES:
            querycount.install()
