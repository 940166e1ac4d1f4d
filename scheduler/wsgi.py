import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from scheduler import stages
from scheduler.checks import refuse_bad_settings
from scheduler.dispatch.celery_app import warm_up_sender

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
application = get_wsgi_application()
refuse_bad_settings()  # gunicorn runs no system checks of its own
warm_up_sender()


def _traced(app):
    def traced(environ, start_response):
        stages.mark("web.in")
        try:
            return app(environ, start_response)
        finally:
            stages.mark("web.out")

    return traced


if settings.STAGE_TRACE:  # benchmarks/stage_trace.py only: the request's time outside Django
    application = _traced(application)
