"""Turning what a user asked for into job rows: validate everything, then store all or nothing."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import transaction

from gpu_tasks.base import Estimate, ParamError, UnknownKind
from gpu_tasks.command import COMMANDS
from gpu_tasks.params import validate
from gpu_tasks.registry import KINDS, get_kind
from scheduler import ratelimit, stages
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from scheduler.fleet.router import fits_fleet, fits_gang
from scheduler.jobs import allowance, commands, dependencies, idle_release, lifecycle, limits
from scheduler.jobs.allowance import Allowance
from scheduler.jobs.errors import SubmissionError
from scheduler.jobs.idle_release import idle_gpu, send_or_nudge
from scheduler.jobs.models import MAX_ID, ContainerImage, Job, JobArray, Quota, Status


@dataclass
class Prepared:
    kind: str
    params: dict
    estimate: Estimate
    priority: int = 0
    time_limit: int = 0
    after: list[int] = field(default_factory=list)
    gpus: int = 1
    name: str = ""
    tags: list[str] = field(default_factory=list)
    runner: str = ""  # where a run job's command runs: local or container


class FleetFacts:
    """What admission reads of the fleet, once per submission (scheduler/fleet/store.read)."""

    def __init__(self, seen: fleet.Fleet) -> None:
        self.seen = seen

    @cached_property
    def largest(self) -> int | None:
        """Memory of the largest GPU ever seen (None: none seen yet)."""
        return fleet.largest_gpu_memory(self.seen.known)

    @cached_property
    def placeable(self) -> list[tuple[str, int]]:
        """(host, memory_total) of GPUs healthy and not draining."""
        return fleet.placeable(self.seen)


def prepare(user, spec: dict, facts: FleetFacts, allowed: Allowance) -> Prepared:
    """Validate one job's spec against its kind, the user's bounds and the fleet; raise SubmissionError
    naming every field that is wrong, not only the first."""
    quota = allowed.quota
    errors: dict = {}
    kind_params = collect(errors, _kind_and_params, user, spec)
    gpus = collect(errors, _gpus, spec.get("gpus"), kind_params[0] if kind_params else None, quota)
    if kind_params and gpus:
        collect(errors, _fits, kind_params[2], gpus, facts)
    priority = collect(errors, _priority, user, spec.get("priority", 0), quota)
    time_limit = collect(errors, limits.time_limit, allowed.longest_time_limit, spec.get("time_limit"))
    after = collect(errors, _dependencies, user, spec.get("after") or [])
    if errors:
        raise SubmissionError(errors)
    kind, params, estimate, runner = kind_params
    labels = {"name": spec.get("name") or "", "tags": spec.get("tags") or [], "runner": runner}
    return Prepared(
        kind.name, params, estimate, priority=priority, time_limit=time_limit, after=after, gpus=gpus, **labels
    )


def collect(errors: dict, check, *args):
    """`check(*args)`, or None with its SubmissionError's fields added to `errors`."""
    try:
        return check(*args)
    except SubmissionError as exc:
        errors.update(exc.errors)
        return None


def _kind_and_params(user, spec: dict) -> tuple:
    try:
        kind = get_kind(spec["kind"])
        if kind.staff_only and not user.is_staff:
            raise UnknownKind(f"unknown kind {spec['kind']!r}")
        params = validate(kind, spec.get("params") or {})
    except UnknownKind as exc:
        raise SubmissionError({"kind": str(exc)}) from None
    except ParamError as exc:
        raise SubmissionError({"params": exc.errors}) from None
    if kind.runner.allowlisted:
        _check_allowlisted(kind.runner.allowlisted, params[kind.runner.allowlisted])
    runner = ""
    if kind.runner is COMMANDS:  # where it runs, and so whether its image must be allowlisted, is chosen here
        params, runner = commands.prepare(user, params)
        if runner == "container":
            _check_allowlisted("image", params["image"])
    return kind, params, kind.estimate(**params), runner


def _gpus(value: int | None, kind, quota: Quota | None) -> int:
    gpus = 1 if value is None else value
    if not 1 <= gpus <= settings.JOB_GPUS_MAX:
        raise SubmissionError({"gpus": f"must be between 1 and {settings.JOB_GPUS_MAX}, got {gpus}"})
    if gpus > 1 and kind is not None and not kind.multi_gpu:
        multi = ", ".join(sorted(k.name for k in KINDS.values() if k.multi_gpu and not k.staff_only))
        raise SubmissionError({"gpus": f"kind {kind.name!r} runs on one GPU; kinds that use several: {multi}"})
    if quota and quota.max_gpus and gpus > quota.max_gpus:
        raise SubmissionError({"gpus": f"your quota allows {quota.max_gpus} GPUs at once; this job asks for {gpus}"})
    return gpus


def _fits(estimate: Estimate, gpus: int, facts: FleetFacts) -> None:
    """Refuse a job that no GPU (or no host with `gpus` of them) of the fleet could ever hold."""
    if gpus == 1:
        refusal = fits_fleet(estimate.memory_bytes, facts.largest)
    else:
        refusal = fits_gang(estimate.memory_bytes, gpus, facts.placeable)
    if refusal:
        raise SubmissionError({"gpus" if gpus > 1 else "params": refusal})


def _check_allowlisted(param: str, image: str) -> None:
    if not ContainerImage.objects.filter(image=image).exists():
        allowed = ", ".join(ContainerImage.objects.values_list("image", flat=True)[:20]) or "none yet"
        raise SubmissionError(
            {"params": {param: f"{image!r} is not on the allowlist kept by staff; allowed images: {allowed}"}}
        )


def _priority(user, priority: int, quota: Quota | None) -> int:
    cap = settings.STAFF_PRIORITY_MAX if user.is_staff else settings.USER_PRIORITY_MAX
    if quota and quota.max_priority is not None:
        cap = quota.max_priority
    if not -cap <= priority <= cap:
        raise SubmissionError({"priority": f"must be between {-cap} and {cap}, got {priority}"})
    return priority


def _dependencies(user, ids: list[int]) -> list[int]:
    if not ids:
        return []
    if not all(isinstance(i, int) and 1 <= i <= MAX_ID for i in ids):
        raise SubmissionError({"after": f"job ids are whole numbers from 1 to {MAX_ID}"})
    found = dict(Job.objects.filter(owner=user, id__in=ids).values_list("id", "status"))
    missing = sorted(set(ids) - set(found))
    if missing:
        # Another user's job is "not found" too: its existence is not ours to reveal.
        raise SubmissionError({"after": f"no such job: {', '.join(map(str, missing))}"})
    # A job after one that already failed could never run and would wait for ever: refuse it now.
    ended = sorted((i, s) for i, s in found.items() if s in (Status.FAILED, Status.CANCELLED))
    if ended:
        said = ", ".join(f"job {i} is {s}" for i, s in ended)
        raise SubmissionError({"after": f"{said}: a job after it could never run"})
    return sorted(found)


def submit(user, specs: list[dict], as_batch: bool = False) -> list[Job]:
    """Store a whole batch or none of it; every job is committed before anything reaches Redis."""
    facts = _admit(user, len(specs))
    stages.mark("submit.admitted")
    with transaction.atomic():
        # Validated under the owner's row lock: the statement that takes it reads the allowance too.
        allowed = allowance.read(user, lock=True)
        stages.mark("submit.allowance")
        return _store(user, _prepare_all(user, specs, as_batch, allowed, facts), None, allowed, facts)


def validate_all(user, specs: list[dict], as_batch: bool) -> list[Prepared]:
    """Every spec checked, nothing stored; errors listed per job for a batch."""
    facts = _admit(user, len(specs))
    return _prepare_all(user, specs, as_batch, allowance.read(user), facts)


def _prepare_all(user, specs: list[dict], as_batch: bool, allowed: Allowance, facts: FleetFacts) -> list[Prepared]:
    errors: list[Any] = []
    prepared: list[Prepared] = []
    for spec in specs:
        try:
            prepared.append(prepare(user, spec, facts, allowed))
            errors.append({})
        except SubmissionError as exc:
            errors.append(exc.errors)
    if any(errors):
        raise SubmissionError({"jobs": errors} if as_batch else errors[0])
    return prepared


def _admit(user, jobs: int) -> FleetFacts:
    """The submission rate check, then the fleet as admission and the idle-GPU release see it: two
    Redis round trips before the database (they were five, 0.5 ms of each POST here)."""
    r = redis_client()
    with r.pipeline(transaction=False) as pipe:
        waited = ratelimit.take_on(pipe, f"submit:{user.pk}", settings.SUBMIT_RATE, jobs)
        seen = fleet.read_on(r, pipe)
        results = pipe.execute()
    wait = waited(results)
    if wait:
        raise SubmissionError(
            {"detail": f"Request was throttled: over {settings.SUBMIT_RATE} jobs; try again in {math.ceil(wait)} s"},
            status=429,
        )
    return FleetFacts(seen(results))


def _store(user, prepared: list[Prepared], array: JobArray | None, allowed: Allowance, facts: FleetFacts) -> list[Job]:
    """Inside the transaction that locked the owner's row (allowance.read): the statement that stores the
    jobs counts the owner's unfinished ones, and sees every job of the user's submissions committed before."""
    rows = [_row(user, p, array) for p in prepared]
    # A lone job for an idle GPU is stored queued there by the same statement (idle_release.py); otherwise
    # the releaser loop, woken after the commit, decides: the POST waits for no release round.
    idle = idle_gpu(rows[0], allowed.quota, facts.seen) if len(rows) == 1 else None
    most = _most_pending(allowed.quota)
    stored = lifecycle.submitted(rows, most, idle, idle_release.LOCK_ID)
    stages.mark("submit.stored")
    if not stored.jobs:
        raise _over_quota(stored.pending, len(rows), most)
    jobs = stored.jobs
    for job, p in zip(jobs, prepared, strict=True):
        job.after_ids = p.after  # what the answer shows, without reading back what was just written
    _store_dependencies(jobs, prepared)
    transaction.on_commit(lambda: send_or_nudge(jobs, stored.released))
    return jobs


def _row(user, p: Prepared, array: JobArray | None) -> Job:
    return Job(
        owner=user,
        kind=p.kind,
        params=p.params,
        priority=p.priority,
        time_limit=p.time_limit,
        memory_estimate=p.estimate.memory_bytes,
        work_estimate=p.estimate.work,
        gpus=p.gpus,
        array=array,
        wait_reason=dependencies.reason([(i, "") for i in p.after]) if p.after else dependencies.ROOM,
        name=p.name,
        tags=p.tags,
        runner=p.runner,
    )


def _store_dependencies(jobs: list[Job], prepared: list[Prepared]) -> None:
    through = Job.after.through
    links = [through(from_job_id=j.id, to_job_id=dep) for j, p in zip(jobs, prepared, strict=True) for dep in p.after]
    through.objects.bulk_create(links)


def _most_pending(quota: Quota | None) -> int:
    return (quota.max_waiting if quota and quota.max_waiting else None) or settings.USER_MAX_WAITING_JOBS


def _over_quota(pending: int, adding: int, cap: int) -> SubmissionError:
    said = f"quota: {pending} of your jobs have not finished and the limit is {cap}; this submission adds {adding}"
    return SubmissionError({"detail": said}, status=429)


def expand_grid(grid: dict[str, list]) -> list[dict]:
    """`{"n": [1, 2], "dtype": ["a"]}` -> every combination, in a stable order."""
    if not grid:
        raise SubmissionError({"grid": "give at least one parameter with a list of values"})
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SubmissionError({"grid": f"{name}: must be a non-empty list of values"})
    # Counted before expanding: a few short lists can multiply into more combinations than memory holds.
    combinations = math.prod(len(values) for values in grid.values())
    if combinations > settings.BATCH_MAX_JOBS:
        raise SubmissionError({"grid": f"{combinations} combinations; at most {settings.BATCH_MAX_JOBS}"})
    names = sorted(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def submit_array(user, kind: str, base: dict, grid: dict[str, list], **common) -> tuple[JobArray, list[Job]]:
    """One submission of a kind over a parameter grid, stored whole or not at all."""
    specs = [{"kind": kind, "params": {**base, **p}, **common} for p in expand_grid(grid)]
    facts = _admit(user, len(specs))
    with transaction.atomic():
        allowed = allowance.read(user, lock=True)
        prepared = _prepare_all(user, specs, True, allowed, facts)
        array = JobArray.objects.create(owner=user, kind=kind, grid=grid)
        return array, _store(user, prepared, array, allowed, facts)
