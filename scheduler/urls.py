from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from scheduler.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("scheduler.api.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("scheduler.web.urls")),
]

if settings.DEBUG:
    # Under gunicorn in development and tests; nginx serves /static/ in the compose deployment.
    urlpatterns += staticfiles_urlpatterns()
