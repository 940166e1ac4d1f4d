"""The Celery app, and what the scheduler sends through it. Its configuration is the CELERY_* names in
scheduler/settings.py.

The app knows the worker's task by name only (RUN_JOB): the task itself lives in workers/tasks.py,
which only the worker process imports, so the web processes and the releaser never load the worker's
modules (and the Docker SDK with them).
"""

from __future__ import annotations

import logging
import os
import uuid

from celery import Celery

log = logging.getLogger(__name__)

# Celery installs its Django fixup (connection handling around tasks) only where this is set when the
# app is made; `celery -A scheduler.dispatch.celery_app flower` comes in with nothing set.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")

RUN_JOB = "gpuq.run_job"  # the worker's one task (workers/tasks.py)

app = Celery("gpuq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "gpuq.control"  # jobs never go here: each is sent to its GPU's queue
# Celery's Django fixup closes the database connection before and after every task unless told to
# reuse it: a new connection per job was 17% of a short job's worker time (py-spy, BENCHMARKS.md).
# persist() keeps the connection healthy instead (CONN_MAX_AGE, health checks, reconnect on error).
app.conf.CELERY_DB_REUSE_MAX = 10**9


def task_id(job_id: int) -> str:
    """Celery's task id for a job: one per job, so a cancel can revoke it wherever it is."""
    return f"job-{job_id}"


def shown_name(kind: str) -> str:
    """The task's name in Flower and the worker's log: `gpuq.matmul`, so Flower can filter by kind
    (the worker still runs RUN_JOB; Celery's `shadow` changes only the name shown)."""
    return f"gpuq.{kind}" if kind else RUN_JOB


def send_job(job_ids: list[int], queue: str, kind: str = "") -> None:
    """Send released jobs to their GPU's queue in one message (one job, or a bundle of short ones run
    back to back: scheduler/jobs/sending.py). It carries no time limits: a message may run several
    jobs, so the worker enforces each job's own (workers/job_limit.py).
    A bundle's task id is its own (`bundle-<first job>-<random>`): a cancel that kills a bundle revokes
    that id, and a job of it sent again later alone, as `job-<id>`, must not be dropped as revoked."""
    first, *also = job_ids
    app.send_task(
        RUN_JOB,
        args=[first],
        kwargs={"also": also} if also else None,
        queue=queue,
        task_id=f"bundle-{first}-{uuid.uuid4().hex[:8]}" if also else task_id(first),
        shadow=shown_name(kind),
    )


def revoke(job_id: int, kill: bool, task: str = "") -> None:
    """Stop a job's message wherever it is (`task`: the message that runs it, where it was sent with
    others); `kill` also SIGKILLs the pool process running it."""
    if kill:
        # SIGKILL: a job inside a CUDA call does not see SIGTERM until the call returns.
        app.control.revoke(task or task_id(job_id), terminate=True, signal="SIGKILL")
    else:
        app.control.revoke(task_id(job_id))


def warm_up_sender() -> None:
    """Load Celery's message machinery and connect its producer when a web process starts: done on a
    process's first submission instead, it took 65 ms (130 ms under load), the whole p99 of dispatch."""
    try:
        app.backend, app.amqp.router  # noqa: B018 (each is loaded on its first access)
        app.amqp.as_task_v2("warm-up", RUN_JOB, args=[0])
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1)
    except Exception as exc:  # Redis not up yet: the first submission connects instead
        log.warning("could not connect to the broker at start (%s); the first submission will", exc)
