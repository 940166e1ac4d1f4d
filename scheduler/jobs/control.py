"""What users and staff do to jobs and GPUs that reaches past the database: cancel, drain, resume."""

from __future__ import annotations

from django.db.models import Count

from gpu_tasks.base import Stop
from gpu_tasks.registry import get_kind
from scheduler.dispatch import celery_app, lease
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import health
from scheduler.fleet import store as fleet
from scheduler.fleet.snapshot import Snapshot
from scheduler.jobs import forecast, lifecycle
from scheduler.jobs.models import FINAL, HELD, Job, JobArray, Status
from scheduler.jobs.release import release


def cancel(job: Job, by: str) -> bool:
    """Cancel a job; a running attempt is killed so its GPU is freed at once. Not one claimed early
    (lifecycle.claim_early): the process holding it runs the job before it, and it never begins."""
    was = lifecycle.cancel(job, by)
    if was is None:
        return False
    status, held = was
    if status in HELD:
        begun = (
            not held.startswith(lifecycle.EARLY)
            or lease.mark_early(redis_client(), job.id, lease.CANCELLED) == lease.BEGUN
        )
        # A job sent with others runs in its bundle's message, named in its lease (workers/heartbeat.py).
        task = (lease.holder(redis_client(), job.id) or {}).get("task", "") if begun else ""
        celery_app.revoke(job.id, kill=begun and get_kind(job.kind).runner.stop is Stop.KILL, task=task)
    return True


def cancel_array(array: JobArray, by: str) -> int:
    """Cancel every unfinished job of an array; how many were cancelled."""
    return sum(cancel(job, by) for job in array.jobs.exclude(status__in=FINAL))


def fleet_view() -> list[dict]:
    """Every GPU the fleet has seen, with its live snapshot (None when silent), queue and running job."""
    r = redis_client()
    live = {snap.uuid: snap for snap in fleet.live_snapshots(r)}
    drained = fleet.draining(r)
    held = dict(
        Job.objects.filter(status=Status.QUEUED).values("queue").annotate(n=Count("id")).values_list("queue", "n")
    )
    running = dict(Job.objects.filter(status=Status.RUNNING).values_list("queue", "id"))
    marks = {"held_by": _gang_holds(), "reserved_for": forecast.reserved_queues(r), "sick": fleet.unhealthy(r)}
    return [_gpu_row(known, live.get(known["uuid"]), drained, held, running, marks) for known in fleet.known_gpus(r)]


def _gang_holds() -> dict[str, int]:
    """queue -> the multi-GPU job that holds it (queued or running)."""
    rows = Job.objects.filter(status__in=HELD, gpus__gt=1).values_list("id", "gang")
    return {member["queue"]: job_id for job_id, gang in rows for member in gang}


def _gpu_row(known: dict, snap: Snapshot | None, drained: dict, held: dict, running: dict, marks: dict) -> dict:
    queue = known.get("queue", "")
    # The mark outlives the worker; a live snapshot may say more (telemetry failing).
    health_reason = marks["sick"].get(known["uuid"]) or (snap.health_reason if snap and not snap.healthy else "")
    return {
        "held_by": marks["held_by"].get(queue),
        "reserved_for": marks["reserved_for"].get(queue),
        "uuid": known["uuid"],
        "host": known.get("host", ""),
        "name": known.get("name", ""),
        "queue": queue,
        "kind": known.get("kind", "gpu"),
        "alive": snap is not None,
        "draining": known["uuid"] in drained,
        "drain_reason": drained.get(known["uuid"], ""),
        "healthy": not health_reason,
        "health_reason": health_reason,
        "queued": held.get(queue, 0),
        "running_job": running.get(queue) or marks["held_by"].get(queue),
        "snapshot": snap,
    }


def history(uuid: str) -> list[dict]:
    known(uuid)
    return fleet.history(redis_client(), uuid)


def counts(jobs) -> dict:
    rows = jobs.order_by().values("status").annotate(n=Count("id")).values_list("status", "n")
    return {"counts": {status: 0 for status in Status.values} | dict(rows)}


def drain(uuid: str, reason: str) -> dict:
    r = redis_client()
    known(uuid)
    fleet.set_draining(r, uuid, True, reason)
    return _row(uuid)


def resume(uuid: str) -> dict:
    r = redis_client()
    known(uuid)
    fleet.set_draining(r, uuid, False)
    health.clear(r, uuid)
    release()
    return _row(uuid)


class UnknownGpu(LookupError):
    """A GPU the fleet has never seen; answered 404 (scheduler/api/errors.py, scheduler/web/views.py)."""


def known(uuid: str) -> dict:
    """The static facts of a GPU the fleet has seen (STATIC_FIELDS of scheduler/fleet/store.py)."""
    found = next((g for g in fleet.known_gpus(redis_client()) if g["uuid"] == uuid), None)
    if found is None:
        raise UnknownGpu(f"no GPU {uuid} in the fleet")
    return found


def _row(uuid: str) -> dict:
    return next(row for row in fleet_view() if row["uuid"] == uuid)
