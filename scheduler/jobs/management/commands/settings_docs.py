"""`python manage.py settings_docs`: write .env.example and docs/CONFIGURATION.md from the settings' declarations."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from scheduler import envdocs


class Command(BaseCommand):
    help = "Write .env.example and docs/CONFIGURATION.md from the environment variables scheduler/settings.py declares."

    def handle(self, *args, **options) -> None:
        variables = settings.ENVIRONMENT_VARIABLES.values()
        (settings.BASE_DIR / ".env.example").write_text(envdocs.env_example(variables))
        (settings.BASE_DIR / "docs" / "CONFIGURATION.md").write_text(envdocs.docs_table(variables))
        self.stdout.write(f"wrote .env.example and docs/CONFIGURATION.md: {len(variables)} variables")
