import os

from django.core.wsgi import get_wsgi_application

from scheduler.checks import refuse_bad_settings
from scheduler.dispatch.celery_app import warm_up_sender

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
application = get_wsgi_application()
refuse_bad_settings()  # gunicorn runs no system checks of its own
warm_up_sender()
