import os

from django.core.wsgi import get_wsgi_application

from scheduler.dispatch.celery_app import warm_up_sender

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
application = get_wsgi_application()
warm_up_sender()
