"""The worker process around Celery: telemetry published from the main process, jobs in the pool."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

from scheduler.dispatch.celery_app import app
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import health
from scheduler.fleet import store as fleet
from scheduler.fleet.snapshot import Snapshot
from scheduler.jobs.models import Job, Status
from workers import (
    chores,
    containers,
    early_claim,
    gpu,
    gpu_health,
    local_process,
    tasks,  # noqa: F401 (importing it registers the worker's task with the app)
    telemetry,
)
from workers.identity import WorkerIdentity

log = logging.getLogger(__name__)
_publisher: list[telemetry.Publisher | chores.Every] = []


def run(ident: WorkerIdentity, concurrency: int | None, loglevel: str) -> int:
    """Consume this GPU's queue until stopped; prefork, so hard time limits can stop a CUDA call."""
    worker_ready.connect(lambda **_: _start_telemetry(ident), weak=False)
    worker_shutdown.connect(lambda **_: _stop_telemetry(), weak=False)
    # Before consuming: containers this queue ran belonged to a predecessor that was killed.
    containers.sweep_leftovers(mine=ident.queue)
    concurrency = concurrency or settings.GPU_CONCURRENCY
    early_claim.enabled = concurrency == 1  # the pool processes are forked with it
    app.worker_main(
        [
            "worker",
            "-Q",
            ident.queue,
            "-n",
            f"{ident.queue}@{ident.host}",
            "-c",
            str(concurrency),
            "-P",
            "prefork",
            "-E",
            "-l",
            loglevel,
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _stop_telemetry() -> None:
    for publisher in _publisher:
        publisher.stop()


def _start_telemetry(ident: WorkerIdentity) -> None:
    collect = _gpu_collector(ident) if ident.kind == "gpu" else _cpu_collector(ident)
    publisher = telemetry.Publisher(redis_client(), collect, settings.TELEMETRY_INTERVAL, settings.TELEMETRY_TTL)
    publisher.start()
    others = [
        chores.Every("release-stand-in", settings.RELEASER_INTERVAL, chores.stand_in_once),
        chores.Every("container-sweep", containers.SWEEP_SECONDS, containers.sweep_leftovers),
        chores.Every("local-run-sweep", containers.SWEEP_SECONDS, lambda: local_process.sweep(settings.JOBS_DIR)),
    ]
    for chore in others:
        chore.start()
    _publisher.extend([publisher, *others])
    log.info("publishing telemetry of %s every %.1f s", ident, settings.TELEMETRY_INTERVAL)


def _gpu_collector(ident: WorkerIdentity) -> Callable[[], Snapshot]:
    import pynvml  # only a GPU worker needs NVML loaded

    gpu_ident = next(g for g in gpu.list_gpus(pynvml) if g.uuid == ident.uuid)
    xids = gpu_health.XidWatch(pynvml, pynvml.nvmlDeviceGetHandleByUUID(ident.uuid))
    return lambda: _overridden(
        ident,
        telemetry.snapshot(
            pynvml,
            gpu_ident,
            host=ident.host,
            running_job=_running_job(ident),
            draining=ident.uuid in fleet.draining(redis_client()),
            our_pids=_our_pids(),
            now=time.time(),
            xids=xids.drain(),
        ),
    )


def _cpu_collector(ident: WorkerIdentity) -> Callable[[], Snapshot]:
    slot = ident.uuid.removeprefix(f"{gpu.CPU_UUID_PREFIX}{ident.host}").lstrip("-")
    cpu_ident = gpu.cpu_identity(ident.host, 0, int(slot or 0))
    return lambda: _overridden(
        ident,
        telemetry.cpu_snapshot(
            cpu_ident,
            host=ident.host,
            running_job=_running_job(ident),
            draining=ident.uuid in fleet.draining(redis_client()),
            now=time.time(),
        ),
    )


def _overridden(ident: WorkerIdentity, snap: Snapshot) -> Snapshot:
    """A new NVML fault marks the GPU; the mark (until staff clear it) is the health the snapshot says.
    The queue is the one this worker serves."""
    reason = health.settle(redis_client(), ident.uuid, snap.health_reason)
    return replace(snap, queue=ident.queue, healthy=not reason, health_reason=reason)


def _running_job(ident: WorkerIdentity) -> int | None:
    # The telemetry thread is no request: nothing else closes its connection when PostgreSQL restarts,
    # and a closed one would mark this GPU unhealthy for good (seen in the compose stack's fault test).
    close_old_connections()
    return Job.objects.filter(queue=ident.queue, status=Status.RUNNING).values_list("id", flat=True).first()


def _our_pids() -> set[int]:
    """This worker and its pool processes: GPU memory they hold is ours, the rest is foreign."""
    me, pids = os.getpid(), {os.getpid()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == me:
                pids.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids
