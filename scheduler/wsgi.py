import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
application = get_wsgi_application()

from scheduler.jobs.release import warm_up_sender  # noqa: E402 (Django must be set up first)

warm_up_sender()
