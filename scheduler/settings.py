"""All configuration, read from the environment once, with defaults that run with no services but Redis."""

import socket
from pathlib import Path

import dj_database_url

from scheduler.dispatch import keys
from scheduler.env import (
    DECLARED,
    declare,
    envbool,
    envfloat,
    envint,
    envlist,
    envstr,
    is_set,
    section,
    url_with_password,
)

BASE_DIR = Path(__file__).resolve().parent.parent
section("Django")
VAR_DIR = Path(
    envstr(
        "GPUQ_VAR_DIR",
        str(BASE_DIR / "var"),
        why="local state (the SQLite file when no DATABASE_URL); fixed inside the image",
        shown="<repo>/var",
        compose="fixed",
    )
)
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # the SQLite file and local state: private

DEBUG = envbool("DEBUG", False, why="never true in production")
# The default key is for a local machine only: `check --deploy` flags it (security.W009).
LOCAL_KEY = "django-insecure-local-development-key-change-me"
KEY_WHY = "Django's signing key; in compose SECRET_KEY_FILE, from the secret_key secret file"
SECRET_KEY = envstr("SECRET_KEY", LOCAL_KEY, why=KEY_WHY, shown="a key for a local machine only", compose="fixed")
ALLOWED_HOSTS = envlist(
    "ALLOWED_HOSTS",
    "localhost,127.0.0.1,[::1],testserver",
    why="host names users reach the site by, comma-separated (required in compose)",
    compose="required",
    example="gpuq.example.org",
)
CSRF_TRUSTED_ORIGINS = envlist(
    "CSRF_TRUSTED_ORIGINS", why="origins allowed to POST forms, with scheme", example="https://gpuq.example.org"
)
SITE_URL = envstr(
    "SITE_URL",
    "http://127.0.0.1:8000",
    why="the site's public URL, in links the app writes",
    example="https://gpuq.example.org",
)

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
    "drf_spectacular_sidecar",
    "scheduler.jobs",
    "scheduler.api",
    "scheduler.web",
    "workers",
]

MIDDLEWARE = [
    "scheduler.unread_body.DrainUnreadBody",  # outermost: it sees every error answer
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "scheduler.web.throttle.LoginThrottle",
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
        url_with_password(
            envstr(
                "DATABASE_URL",
                f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
                why="the database, without its password; a second GPU host names the main host's",
                shown="SQLite in GPUQ_VAR_DIR",
                compose="env",
            ),
            envstr(
                "DATABASE_PASSWORD",
                why="put into DATABASE_URL URL-quoted (any character works); in compose DATABASE_PASSWORD_FILE, "
                "from the postgres_password secret file",
                compose="fixed",
            ),
        ),
        # Kept open between requests and jobs: a new PostgreSQL connection costs a backend fork,
        # which dominated the dispatch latency when each request and job opened its own.
        conn_max_age=envint(
            "DB_CONN_MAX_AGE", 300, why="seconds a database connection is reused (0: a new one per request)"
        ),
        conn_health_checks=True,
    )
}
DB_PREPARED_STATEMENTS = envbool(
    "DB_PREPARED_STATEMENTS",
    True,
    why="prepare the job path's hot statements once per connection (off behind a pooler that cannot keep them, "
    "such as PgBouncer before 1.21 in transaction mode)",
)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and DB_PREPARED_STATEMENTS:
    # Django turns psycopg's statement preparation off (prepare_threshold None), which also ignores an
    # explicit prepare=True. Django's own cursors bind client-side and never prepare whatever the
    # threshold; only scheduler/jobs/prepared.py's cursor asks to.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 10**9
    # PostgreSQL plans a prepared statement anew at each use while its generic plan looks costlier than
    # the custom ones (the log showed ~0.5 ms of "bind" per claim, for 0.1-0.3 ms of execution); the
    # hot statements' generic plans are the custom ones. Only prepared statements are affected.
    DATABASES["default"]["OPTIONS"]["options"] = "-c plan_cache_mode=force_generic_plan"
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
STATIC_ROOT = envstr(
    "STATIC_ROOT",
    str(BASE_DIR / "staticfiles"),
    why="where collectstatic writes; the compose file sets /app/staticfiles",
    shown="<repo>/staticfiles",
    compose="fixed",
)

# Request bounds: nginx refuses larger bodies first; this is the same limit inside Django.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint(
    "MAX_BODY_BYTES", 8 * 1024 * 1024, why="largest request body Django accepts, in bytes; keep NGINX_MAX_BODY equal"
)

# Production hardening, on by default outside DEBUG (nginx terminates TLS and sets X-Forwarded-Proto).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool(
    "SECURE_SSL_REDIRECT",
    not DEBUG,
    why="redirect plain HTTP to HTTPS; false only for a plain-HTTP trial with no TLS anywhere",
    shown="not DEBUG",
)
SECURE_HSTS_SECONDS = envint(
    "SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, why="HSTS max-age (0: off)", shown="31536000, 0 under DEBUG"
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG, why="HSTS for subdomains too", shown="not DEBUG"
)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG, why="ask browsers to preload HSTS", shown="not DEBUG")
SESSION_COOKIE_SECURE = envbool(
    "SESSION_COOKIE_SECURE",
    not DEBUG,
    why="session cookie over HTTPS only; false for a plain-HTTP trial",
    shown="not DEBUG",
)
CSRF_COOKIE_SECURE = envbool(
    "CSRF_COOKIE_SECURE", not DEBUG, why="CSRF cookie over HTTPS only; false for a plain-HTTP trial", shown="not DEBUG"
)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LIST_COUNT_CAP = envint(
    "LIST_COUNT_CAP", 10000, why="a job list's total is exact up to this many jobs past its page (then count_capped)"
)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scheduler.api.auth.RememberingTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "scheduler.api.pagination.CappedCountPagination",
    "DEFAULT_PARSER_CLASSES": [
        "scheduler.api.bounds.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scheduler.api.errors.handle",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU job queue API",
    "DESCRIPTION": "Submit GPU jobs, watch them run, read their results.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Redoc from our own static files, not a CDN: the docs work on a lab network without the internet.
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

section("Redis")
# Redis: broker, GPU telemetry, leases, fair share, rate limits; one URL (and one DB) for all by default.
REDIS_URL = url_with_password(
    envstr(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        why="Redis, without its password; a second GPU host names the main host's",
        compose="env",
    ),
    envstr(
        "REDIS_PASSWORD",
        why="put into REDIS_URL URL-quoted (any character works); in compose REDIS_PASSWORD_FILE, "
        "from the redis_password secret file",
        compose="fixed",
    ),
)
CELERY_BROKER_URL = envstr(
    "CELERY_BROKER_URL", REDIS_URL, why="Celery's broker, where another Redis should carry the jobs", shown="REDIS_URL"
)
CACHE_URL = envstr("CACHE_URL", REDIS_URL, why="the Redis of the rate-limit counters", shown="REDIS_URL")
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

section("Jobs")
JOB_TIME_LIMIT_DEFAULT = envint(
    "JOB_TIME_LIMIT_DEFAULT", 600, why="a job's time limit when it asks for none, in seconds"
)
JOB_TIME_LIMIT_MAX = envint("JOB_TIME_LIMIT_MAX", 24 * 3600, why="the longest time limit a job may ask for, in seconds")
JOB_GPUS_MAX = envint("JOB_GPUS_MAX", 16, why="GPUs one job may ask for (`gpus: N`, all on one host)")
JOB_MAX_ATTEMPTS = envint(
    "JOB_MAX_ATTEMPTS", 3, why="attempts before a job that kills its worker is failed as poisoned (as Ray and Dask)"
)
GPU_CUDA_FAILURES_UNHEALTHY = envint(
    "GPU_CUDA_FAILURES_UNHEALTHY",
    3,
    why="jobs in a row failing on one GPU with a context-poisoning CUDA error before it is marked unhealthy",
)
# Redis redelivers an unacknowledged message after this; it must outlast the longest job (docs/ARCHITECTURE.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": JOB_TIME_LIMIT_MAX + 3600}
BATCH_MAX_JOBS = envint("BATCH_MAX_JOBS", 10000, why="jobs in one batch or array submission")
SUBMIT_RATE = envstr(
    "SUBMIT_RATE",
    "20000/min",
    why="jobs one user may submit, N/s|min|hour|day, counted in jobs (a batch of 500 counts 500)",
)
LOGIN_RATE = envstr("LOGIN_RATE", "10/min", why="sign-in attempts per client address and per user name")
METRICS_TOKEN = envstr(
    "METRICS_TOKEN", "", why="the bearer token Prometheus sends to /metrics; unset: only signed-in staff read it"
)
USER_MAX_WAITING_JOBS = envint("USER_MAX_WAITING_JOBS", 20000, why="unfinished jobs one user may have")
USER_PRIORITY_MAX = envint("USER_PRIORITY_MAX", 10, why="the highest priority a user may give (staff may go above)")
STAFF_PRIORITY_MAX = envint("STAFF_PRIORITY_MAX", 100, why="the highest priority staff may give")
# Result arrays as .npy files: written by the workers, served by the web app (in compose, one shared volume).
RESULTS_DIR = Path(
    envstr(
        "RESULTS_DIR",
        str(VAR_DIR / "results"),
        why="where result arrays are written and served from; compose sets the volume web and workers share",
        shown="GPUQ_VAR_DIR/results",
        compose="fixed",
    )
)
# A larger array is not saved. The worker writes it between jobs, while its GPU waits: the cost is
# measured in docs/BENCHMARKS.md.
RESULT_MAX_BYTES = envint(
    "RESULT_MAX_BYTES", 64 * 1024 * 1024, why="largest result array a worker saves as .npy for download, in bytes"
)

section("Routing and the fleet")
ROUTER_POLICY = envstr("ROUTER_POLICY", "balanced", why="how the router picks a GPU: balanced, round_robin or pack")
GPU_SLOTS = envint("GPU_SLOTS", 2, why="jobs a GPU holds at once: one running, one ready")
# Short jobs beyond GPU_SLOTS: up to GPU_MAX_HELD while their expected work stays under GPU_FEED_SECONDS
# (millisecond jobs would otherwise leave the GPU idle between release rounds; measured in BENCHMARKS).
GPU_FEED_SECONDS = envfloat(
    "GPU_FEED_SECONDS", 0.5, why="expected seconds of short jobs a GPU may hold beyond GPU_SLOTS"
)
# 256: a no-op bundle of 64 runs in a few ms, faster than a release round tops the GPU up; with 32 the
# H200 ran 0.40x plain Celery's no-op rate, with 256 1.04x (BENCHMARKS.md). GPU_FEED_SECONDS still bounds
# how much work a GPU holds ahead, so late binding is kept for any job that is not tiny.
GPU_MAX_HELD = envint("GPU_MAX_HELD", 256, why="the most jobs a GPU holds while feeding it short ones")
# Short jobs released to one GPU together go in one message, claimed in one statement (scheduler/jobs/sending.py):
# a message and a commit each cost more than a no-op job (docs/BENCHMARKS.md).
JOB_BUNDLE_SECONDS = envfloat(
    "JOB_BUNDLE_SECONDS",
    0.1,
    why="expected seconds of work of the short jobs one GPU is sent in one message (0: a message per job)",
)
# A quarter of GPU_MAX_HELD: the next bundles wait queued while one runs, so the GPU does not wait for a round.
JOB_BUNDLE_MAX = envint("JOB_BUNDLE_MAX", 64, why="the most jobs sent to a GPU in one message")
# workers/early_claim.py: the GPU waits for no claim between two jobs sent alone (BENCHMARKS.md).
JOB_EARLY_CLAIM_SECONDS = envfloat(
    "JOB_EARLY_CLAIM_SECONDS",
    0.1,
    why="how long before a running job's expected end its worker claims the next job it holds (0: when it ends)",
)
GPU_CONCURRENCY = envint("GPU_CONCURRENCY", 1, why="jobs a GPU worker runs at the same time")
# scheduler/fleet/reservation.py
GPU_RESERVATIONS = envbool(
    "GPU_RESERVATIONS",
    True,
    why="the first waiting job that cannot start reserves the GPUs that free soonest; later jobs use them only "
    "when they end before it starts (backfill). false: whatever fits goes first",
)
TELEMETRY_INTERVAL = envfloat("TELEMETRY_INTERVAL", 1.0, why="seconds between a worker's telemetry snapshots")
TELEMETRY_TTL = envfloat(
    "TELEMETRY_TTL", 5.0, why="seconds a snapshot stays in Redis: a worker that stops publishing drops out"
)
# scheduler/fleet/store.py: one point a minute per GPU, about 150 bytes each in Redis
TELEMETRY_HISTORY_HOURS = envfloat(
    "TELEMETRY_HISTORY_HOURS",
    24.0,
    why="hours of each GPU's telemetry kept as minute points (min, mean, max) for the charts over hours",
)
GPU_STALE_AFTER = envfloat("GPU_STALE_AFTER", 5.0, why="seconds without telemetry after which a GPU is not routed to")
DEAD_GPU_REQUEUE_AFTER = envfloat(
    "DEAD_GPU_REQUEUE_AFTER", 20.0, why="seconds without telemetry after which a GPU's jobs go back to waiting"
)
LEASE_TTL = envint("LEASE_TTL", 10, why="seconds a running attempt's lease lives in Redis unless its worker renews it")
LEASE_RENEW = envint("LEASE_RENEW", 2, why="seconds between a worker's renewals of its attempts' leases")
RESEND_AFTER = envfloat(
    "RESEND_AFTER", 15.0, why="seconds a released job may go unstarted on an idle live GPU before it is sent again"
)
FAIRSHARE_HALF_LIFE = envfloat(
    "FAIRSHARE_HALF_LIFE", 3600.0, why="seconds after which a user's GPU time counts half in the fair share"
)
DB_RETRY_FOR = envfloat(
    "DB_RETRY_FOR", 300.0, why="seconds a worker keeps retrying a write while the database is unreachable"
)
RELEASER_INTERVAL = envfloat("RELEASER_INTERVAL", 1.0, why="seconds between the releaser's rounds")
RELEASER_MIN_GAP = envfloat(
    "RELEASER_MIN_GAP", 0.02, why="least seconds between two rounds woken by finished jobs (a burst shares one)"
)
COUNT_QUERIES = envbool(
    "COUNT_QUERIES", False, why="count every process's database statements and commits in Redis (the benchmarks do)"
)
STAGE_TRACE = envstr(
    "STAGE_TRACE", "", why="a file every process appends its dispatch timestamps to (benchmarks/stage_trace.py only)"
)
HOSTNAME = envstr(
    "GPUQ_HOSTNAME",
    socket.gethostname(),
    why="this host's name in queue names (gpu.<host>.<uuid>): give every GPU host its own",
    shown="the machine's host name; in compose, the name given to manage.py compose --host",
    compose="env",
)

# Container jobs: the engine (in compose, a socket proxy: the raw socket is root on the host) and the
# limits every job container gets. The user must not be root inside: a GPU container sees host devices.
section("Container jobs")
DOCKER_HOST = envstr(
    "DOCKER_HOST",
    "unix:///var/run/docker.sock",
    why="the engine container jobs run on; in compose the workers reach it only through docker-proxy",
)
CONTAINER_USER = envstr(
    "CONTAINER_USER",
    "65534:65534",
    why="the user every job container runs as; root only for images allowlisted with allow_root",
)
CONTAINER_MEMORY = envstr("CONTAINER_MEMORY", "16g", why="memory limit of every job container")
CONTAINER_PIDS_LIMIT = envint("CONTAINER_PIDS_LIMIT", 1024, why="process limit of every job container")
CONTAINER_LOG_MAX_LINES = envint("CONTAINER_LOG_MAX_LINES", 5000, why="lines of a container's output kept as its log")
CONTAINER_CPUS = envfloat("CONTAINER_CPUS", 8.0, why="CPU cores a job container may use (at most the host's)")
CONTAINER_TMPFS_SIZE = envstr(
    "CONTAINER_TMPFS_SIZE", "1g", why="the /tmp of a job container (its root filesystem is read-only)"
)
CONTAINER_LOG_SIZE = envstr("CONTAINER_LOG_SIZE", "10m", why="the engine's own log of a job container, at most")
CONTAINER_NETWORK = envstr(
    "CONTAINER_NETWORK", "gpuq-jobs", why="the network allowlisted networked images join (never the default bridge)"
)
CONTAINER_GPU_REQUEST = envstr(
    "CONTAINER_GPU_REQUEST",
    "auto",
    why="how a job container gets its GPU: auto (ask the engine), nvidia (the toolkit's request) or cdi "
    "(see workers/container_gpu.py)",
)

# `run` jobs: a user's own command in their uploaded working directory (README, "Your own code").
section("Run jobs")
# "An engine is configured": DOCKER_HOST is set at all (compose sets it to the docker-proxy); its default above
# is only where to look once a container is wanted.
ENGINE_CONFIGURED = is_set("DOCKER_HOST")
MULTI_USER = envbool(
    "MULTI_USER",
    False,
    why="several users share this system: user code never runs outside a container (submission and worker refuse)",
    example="true",
)
RUN_JOBS_IN = envstr(
    "RUN_JOBS_IN",
    "auto",
    why="where run jobs run: auto (a container where DOCKER_HOST is set or MULTI_USER, else a local process "
    "of the user who started the system), local or container",
)
RUN_DEFAULT_IMAGE = envstr(
    "RUN_DEFAULT_IMAGE", "", why="the lab's image for run jobs that name none; it must be on the allowlist"
)
CONTAINER_UID_BASE = envint(
    "CONTAINER_UID_BASE",
    100000,
    why="run jobs' containers run as uid and gid CONTAINER_UID_BASE + the user's id, so files on mounts are theirs",
)
# Uploaded working dirs and kept outputs live under RESULTS_DIR: the volume web and workers already share.
BUNDLES_DIR = RESULTS_DIR / "bundles"
OUTPUTS_DIR = RESULTS_DIR / "outputs"
JOBS_DIR = Path(
    envstr(
        "JOBS_DIR",
        str(VAR_DIR / "jobs"),
        why="a worker's scratch: the unpacked working dirs of its running jobs",
        shown="GPUQ_VAR_DIR/jobs",
    )
)
BUNDLE_MAX_BYTES = envint(
    "BUNDLE_MAX_BYTES", 100 * 1024 * 1024, why="largest packed working dir (tar.gz) a user may upload, in bytes"
)
BUNDLE_MAX_UNPACKED_BYTES = envint(
    "BUNDLE_MAX_UNPACKED_BYTES", 1024 * 1024 * 1024, why="what an uploaded working dir may unpack to, in bytes"
)
OUTPUT_MAX_BYTES = envint(
    "OUTPUT_MAX_BYTES", 1024 * 1024 * 1024, why="what one job may keep of what it writes under $GPUQ_OUTPUTS, in bytes"
)
USER_OUTPUT_MAX_BYTES = envint(
    "USER_OUTPUT_MAX_BYTES", 10 * 1024 * 1024 * 1024, why="all of one user's kept outputs together, in bytes"
)
OUTPUT_KEEP_DAYS = envfloat(
    "OUTPUT_KEEP_DAYS", 14.0, why="days a job's outputs are kept; the releaser then deletes them"
)
JOB_LOG_MAX_LINES = envint(
    "JOB_LOG_MAX_LINES", 100000, why="lines of a run job's stdout/stderr kept as its log; the rest is counted"
)

section("Django")
LOG_LEVEL = envstr("LOG_LEVEL", "INFO", why="log level of every process: DEBUG, INFO, WARNING or ERROR")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}


# The cache holds API rate-limit counters, shared by every web process through Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": keys.CACHE_PREFIX,
    }
}

section("Compose and nginx")
# Read by docker compose and nginx, not by Django: declared here with the rest, so .env.example lists them.
# The secrets are files in SECRETS_DIR (secret_key, redis_password, postgres_password, flower_password),
# mounted as compose secrets into the containers that need them: see docs/DEPLOYMENT.md.
declare("SECRETS_DIR", "./secrets", "the folder of the secret files, relative to compose/", compose="compose")
declare("FLOWER_USER", "", "Flower's login at /flower/ (no comma in it)", compose="compose", example="admin")
declare("GPUQ_IMAGE", "gpuq:latest", "the image every app service runs (docker compose build)", compose="compose")
declare(
    "REDIS_IMAGE",
    "redis:7-alpine",
    "Redis's image (compose/images/redis builds one without a registry)",
    compose="compose",
)
declare(
    "POSTGRES_IMAGE", "postgres:16-alpine", "PostgreSQL's image (compose/images/postgres likewise)", compose="compose"
)
declare("NGINX_IMAGE", "nginx:1.27-alpine", "nginx's image (compose/images/nginx likewise)", compose="compose")
declare("HTTP_PORT", "80", "the host port nginx publishes", compose="compose")
declare(
    "HTTPS_PORT", "443", "the host port of nginx's TLS server (published even with NGINX_TLS off)", compose="compose"
)
declare("NGINX_TLS", "off", "on: nginx serves TLS with TLS_CERT and TLS_KEY, plain HTTP redirects", compose="compose")
declare("TLS_CERT", "", "the certificate (full chain) nginx serves with NGINX_TLS=on", compose="compose")
declare("TLS_KEY", "", "its private key", compose="compose")
declare(
    "BEHIND_TLS_PROXY",
    "false",
    "true: an outer TLS proxy's X-Forwarded-Proto reaches Django (only if nothing else can reach HTTP_PORT)",
    compose="compose",
)
declare("HEALTHCHECK_INTERVAL", "30s", "how often every container's healthcheck runs", compose="compose")
declare(
    "HEALTHCHECK_TIMEOUT",
    "15s",
    "how long a healthcheck may take (a Python check is slow on a loaded host)",
    compose="compose",
)
declare("WEB_CONCURRENCY", "3", "gunicorn processes in the web container", compose="compose")
declare(
    "WEB_THREADS", "8", "threads per gunicorn process: a long poll (/api/jobs/<id>/wait/) holds one", compose="compose"
)
declare("NGINX_MAX_BODY", "8m", "nginx's body limit; keep it equal to MAX_BODY_BYTES", compose="compose")
declare(
    "NGINX_MAX_BUNDLE",
    "100m",
    "nginx's body limit for working-dir uploads (PUT /api/bundles/); keep it at BUNDLE_MAX_BYTES",
    compose="compose",
)
declare("NGINX_SUBMIT_RATE", "10r/s", "job submissions per client address at nginx", compose="compose")
declare("NGINX_SUBMIT_BURST", "20", "submissions above NGINX_SUBMIT_RATE nginx lets through at once", compose="compose")
declare(
    "DOCKER_SOCKET", "/var/run/docker.sock", "the engine's socket, which only docker-proxy mounts", compose="compose"
)
declare(
    "DOCKER_PROXY_ALLOW_ROOT",
    "false",
    "true: docker-proxy lets job containers run as uid 0 (still without privileges, mounts or devices)",
    compose="compose",
)

ENVIRONMENT_VARIABLES = DECLARED  # every variable above, for .env.example, compose and the docs
