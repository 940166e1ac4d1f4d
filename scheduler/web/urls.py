from django.contrib.auth import views as auth_views
from django.urls import path

from scheduler.web import account, accounting, charts, lab, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.job_list, name="jobs"),
    path("submit/", views.submit, name="submit"),
    path("jobs/<int:pk>/", views.job_page, name="job"),
    path("arrays/<int:pk>/", views.array_page, name="array"),
    path("gpus/", views.gpu_page, name="gpus"),
    path("gpus/<str:uuid>/", charts.gpu_chart_page, name="gpu"),
    path("queue/", lab.queue_page, name="queue"),
    path("token/", account.token_page, name="token"),
    path("accounting/", accounting.accounting_page, name="accounting"),
]
