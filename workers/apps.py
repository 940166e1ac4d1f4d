from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """The worker side's management commands (doctor, compose, runlocal); it has no models."""

    name = "workers"
