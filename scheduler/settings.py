"""All configuration, read from the environment once, with defaults that run with no services but Redis."""

import socket
from pathlib import Path

import dj_database_url

from scheduler.dispatch import keys
from scheduler.env import envbool, envfloat, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("GPUQ_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite file and local state live here

DEBUG = envbool("DEBUG", False)
# The default key is for a local machine only: `check --deploy` flags it (security.W009).
SECRET_KEY = envstr("SECRET_KEY", "django-insecure-local-development-key-change-me")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "scheduler.jobs",
    "scheduler.api",
    "scheduler.web",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scheduler.urls"
WSGI_APPLICATION = "scheduler.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        # Kept open between requests and jobs: a new PostgreSQL connection costs a backend fork,
        # which dominated the dispatch latency when each request and job opened its own.
        conn_max_age=envint("DB_CONN_MAX_AGE", 300),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, releaser and workers share one file: wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # WAL with synchronous=NORMAL: a commit costs no fsync (a power cut may lose the last commits,
    # never corrupt the file); measured ~4x the job throughput of the default FULL.
    # A file, not memory, so that the worker and web processes a test starts share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = envstr("STATIC_ROOT", str(BASE_DIR / "staticfiles"))

# Request bounds: nginx refuses larger bodies first; this is the same limit inside Django.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("MAX_BODY_BYTES", 8 * 1024 * 1024)

# Production hardening, on by default outside DEBUG (nginx terminates TLS and sets X-Forwarded-Proto).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scheduler.api.errors.handle",
    "DEFAULT_THROTTLE_RATES": {"submit": envstr("SUBMIT_RATE", "600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU job queue API",
    "DESCRIPTION": "Submit GPU jobs, watch them run, read their results.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Redis: broker, GPU telemetry, rate limits. One URL; Celery gets its own DB number by default.
REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None  # the database holds results; Celery's result store is not used
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_EVENT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = (
    False  # Flower sees tasks from the worker's events; a sent event per job cost the web a publish
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# Jobs
JOB_TIME_LIMIT_DEFAULT = envint("JOB_TIME_LIMIT_DEFAULT", 600)  # seconds
JOB_TIME_LIMIT_MAX = envint("JOB_TIME_LIMIT_MAX", 24 * 3600)
JOB_MAX_ATTEMPTS = envint("JOB_MAX_ATTEMPTS", 3)
# Redis redelivers an unacknowledged message after this; it must outlast the longest job (ARCHITECTURE).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": JOB_TIME_LIMIT_MAX + 3600}
BATCH_MAX_JOBS = envint("BATCH_MAX_JOBS", 10000)
USER_MAX_WAITING_JOBS = envint("USER_MAX_WAITING_JOBS", 20000)
USER_PRIORITY_MAX = envint("USER_PRIORITY_MAX", 10)  # staff may go above
STAFF_PRIORITY_MAX = envint("STAFF_PRIORITY_MAX", 100)
# Result arrays as .npy files: written by the workers, served by the web app (in compose, one shared volume).
RESULTS_DIR = Path(envstr("RESULTS_DIR", str(VAR_DIR / "results")))
# A larger array is not saved. The worker writes it between jobs, while its GPU waits: the cost is
# measured in docs/BENCHMARKS.md.
RESULT_MAX_BYTES = envint("RESULT_MAX_BYTES", 64 * 1024 * 1024)

# Routing and the fleet
ROUTER_POLICY = envstr("ROUTER_POLICY", "balanced")
GPU_SLOTS = envint("GPU_SLOTS", 2)  # jobs a GPU holds: one running, one ready
# Short jobs beyond GPU_SLOTS: up to GPU_MAX_HELD while their expected work stays under GPU_FEED_SECONDS
# (millisecond jobs would otherwise leave the GPU idle between release rounds; measured in BENCHMARKS).
GPU_FEED_SECONDS = envfloat("GPU_FEED_SECONDS", 0.5)
GPU_MAX_HELD = envint("GPU_MAX_HELD", 32)
GPU_CONCURRENCY = envint("GPU_CONCURRENCY", 1)
TELEMETRY_INTERVAL = envfloat("TELEMETRY_INTERVAL", 1.0)
TELEMETRY_TTL = envfloat("TELEMETRY_TTL", 5.0)
GPU_STALE_AFTER = envfloat("GPU_STALE_AFTER", 5.0)
DEAD_GPU_REQUEUE_AFTER = envfloat("DEAD_GPU_REQUEUE_AFTER", 20.0)
RELEASER_INTERVAL = envfloat("RELEASER_INTERVAL", 1.0)
RELEASER_MIN_GAP = envfloat("RELEASER_MIN_GAP", 0.02)  # seconds between rounds woken by finished jobs
HOSTNAME = envstr("GPUQ_HOSTNAME", socket.gethostname())

# Container jobs: the engine (in compose, a socket proxy: the raw socket is root on the host) and the
# limits every job container gets. The user must not be root inside: a GPU container sees host devices.
# "An engine is configured": DOCKER_HOST is set (compose sets it to the docker-proxy); see RUN_JOBS_IN.
ENGINE_CONFIGURED = bool(envstr("DOCKER_HOST"))
DOCKER_HOST = envstr("DOCKER_HOST", "unix:///var/run/docker.sock")
CONTAINER_USER = envstr("CONTAINER_USER", "65534:65534")
CONTAINER_MEMORY = envstr("CONTAINER_MEMORY", "16g")
CONTAINER_PIDS_LIMIT = envint("CONTAINER_PIDS_LIMIT", 1024)
CONTAINER_LOG_MAX_LINES = envint("CONTAINER_LOG_MAX_LINES", 5000)

# `run` jobs: a user's own command in their uploaded working directory.
# A multi-user deployment never runs user code outside a container (submission and worker both refuse).
MULTI_USER = envbool("MULTI_USER", False)
# auto: in a container when an engine is configured or MULTI_USER, else as a local process of the user who
# started the system (task-spooler's model, for `make run`); or force "local" / "container".
RUN_JOBS_IN = envstr("RUN_JOBS_IN", "auto")
RUN_DEFAULT_IMAGE = envstr("RUN_DEFAULT_IMAGE", "")  # the lab's image for `run` jobs; allowlisted like any
# In containers each user runs as uid CONTAINER_UID_BASE + their user id, so files on shared mounts are theirs.
CONTAINER_UID_BASE = envint("CONTAINER_UID_BASE", 100000)
# Uploaded working dirs and kept outputs live under RESULTS_DIR: the volume web and workers already share.
BUNDLES_DIR = RESULTS_DIR / "bundles"
OUTPUTS_DIR = RESULTS_DIR / "outputs"
JOBS_DIR = Path(envstr("JOBS_DIR", str(VAR_DIR / "jobs")))  # a worker's scratch: unpacked dirs of running jobs
BUNDLE_MAX_BYTES = envint("BUNDLE_MAX_BYTES", 100 * 1024 * 1024)  # one packed working dir (tar.gz)
BUNDLE_MAX_UNPACKED_BYTES = envint("BUNDLE_MAX_UNPACKED_BYTES", 1024 * 1024 * 1024)
OUTPUT_MAX_BYTES = envint("OUTPUT_MAX_BYTES", 1024 * 1024 * 1024)  # what one job may keep under $GPUQ_OUTPUTS
USER_OUTPUT_MAX_BYTES = envint("USER_OUTPUT_MAX_BYTES", 10 * 1024 * 1024 * 1024)  # all of a user's kept outputs
OUTPUT_KEEP_DAYS = envfloat("OUTPUT_KEEP_DAYS", 14.0)  # then the releaser's sweep deletes them
JOB_LOG_MAX_LINES = envint("JOB_LOG_MAX_LINES", 100000)  # of a `run` job's output; the rest is counted

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}


# The cache holds API rate-limit counters, shared by every web process through Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": envstr("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": keys.CACHE_PREFIX,
    }
}
