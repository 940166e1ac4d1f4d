from django.urls import path

from scheduler.api import charts, lab, run_views, views

urlpatterns = [
    path("jobs/", views.JobList.as_view(), name="api-jobs"),
    path("jobs/batch/", views.submit_batch, name="api-batch"),
    path("jobs/<int:pk>/", views.JobDetail.as_view(), name="api-job"),
    path("jobs/<int:pk>/wait/", views.wait_job, name="api-job-wait"),
    path("jobs/<int:pk>/cancel/", views.cancel_job, name="api-cancel"),
    path("jobs/<int:pk>/result.npy", views.job_result, name="api-job-result"),
    path("jobs/<int:pk>/log/", run_views.job_log, name="api-job-log"),
    path("jobs/<int:pk>/log.txt", run_views.job_log_text, name="api-job-log-text"),
    path("jobs/<int:pk>/outputs/", run_views.job_outputs, name="api-job-outputs"),
    path("jobs/<int:pk>/outputs.tar.gz", run_views.job_outputs_archive, name="api-job-outputs-archive"),
    path("bundles/<str:digest>/", run_views.bundle, name="api-bundle"),
    path("mounts/", run_views.mounts, name="api-mounts"),
    path("arrays/", views.submit_array, name="api-arrays"),
    path("arrays/<int:pk>/", views.ArrayDetail.as_view(), name="api-array"),
    path("arrays/<int:pk>/cancel/", views.cancel_array, name="api-array-cancel"),
    path("kinds/", views.kinds, name="api-kinds"),
    path("queue/", lab.lab_queue, name="api-queue"),
    path("images/", views.ImageList.as_view(), name="api-images"),
    path("images/<int:pk>/", views.ImageDetail.as_view(), name="api-image"),
    path("jobs/counts/", views.job_counts, name="api-job-counts"),
    path("gpus/", views.gpus, name="api-gpus"),
    path("gpus/<str:uuid>/history/", views.gpu_history, name="api-gpu-history"),
    path("gpus/<str:uuid>/chart/", charts.gpu_chart, name="api-gpu-chart"),
    path("gpus/<str:uuid>/drain/", views.drain_gpu, name="api-drain"),
    path("gpus/<str:uuid>/resume/", views.resume_gpu, name="api-resume"),
]
