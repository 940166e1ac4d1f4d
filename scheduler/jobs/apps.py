from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "scheduler.jobs"
    label = "jobs"
