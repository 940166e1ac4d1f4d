"""Every Redis key the system uses, named in one place (as rq's job and queue keys are).

    gpuq:gpu:<uuid>        string, a GPU's live snapshot (JSON), expires after its publisher's TTL
    gpuq:gpus              hash uuid -> static facts of every GPU ever seen (JSON), no TTL
    gpuq:hist:<uuid>       list of a GPU's history points (JSON), capped
    gpuq:hist1m:<uuid>     list of a GPU's minute points (JSON), capped at TELEMETRY_HISTORY_HOURS
    gpuq:draining          hash uuid -> reason, set by staff
    gpuq:unhealthy         hash uuid -> reason, set when NVML reports a fault or a GPU keeps failing jobs
    gpuq:health:acked      hash uuid -> the reason staff cleared (not marked again for the same one)
    gpuq:cudafail:<uuid>   string, jobs in a row that failed there with a context-poisoning CUDA error
    gpuq:lease:<job id>    string, the running attempt's lease (JSON: token, host, pid), renewed by its worker
    gpuq:usage             hash user id -> [decayed GPU seconds, since], the fair share
    gpuq:metrics2:<name>   hash in:<bucket> -> count (per bucket), a Prometheus histogram counted by whoever ends a job
    gpuq:releaser:alive    string, set by the releaser loop each round (its expiry means no loop runs)
    gpuq:releaser:wake     list, pushed by a finished job to wake the releaser loop
    gpuq:forecast          string (JSON), waiting jobs' estimated starts and the reservation, set each round
    gpuq:job:<id>          pub/sub channel: the job's status changed (scheduler/jobs/changes.py)
    gpuq:querycount        hash <process role>:statements|commits -> count (benchmarks only, COUNT_QUERIES)

Celery's own keys (queues named after GPUs, `_kombu.*`, `unacked*`) and the cache's (`gpuq-cache:*`)
are named by Celery and Django; CACHE_PREFIX is given to Django here.
"""

from __future__ import annotations

PREFIX = "gpuq:"
KNOWN_GPUS = f"{PREFIX}gpus"
DRAINING = f"{PREFIX}draining"
UNHEALTHY = f"{PREFIX}unhealthy"
HEALTH_ACKNOWLEDGED = f"{PREFIX}health:acked"
USAGE = f"{PREFIX}usage"
RELEASER_ALIVE = f"{PREFIX}releaser:alive"
RELEASER_WAKE = f"{PREFIX}releaser:wake"
FORECAST = f"{PREFIX}forecast"
QUERY_COUNTS = f"{PREFIX}querycount"
CACHE_PREFIX = "gpuq-cache"


def live_gpu(uuid: str) -> str:
    return f"{PREFIX}gpu:{uuid}"


def gpu_history(uuid: str) -> str:
    return f"{PREFIX}hist:{uuid}"


def gpu_minutes(uuid: str) -> str:
    return f"{PREFIX}hist1m:{uuid}"


def lease(job_id: int) -> str:
    return f"{PREFIX}lease:{job_id}"


def early(job_id: int) -> str:
    """A job claimed early: claimed, begun or cancelled, whichever its worker or a cancel set first
    (workers/early_claim.py)."""
    return f"{PREFIX}early:{job_id}"


def job_changes(job_id: int) -> str:
    return f"{PREFIX}job:{job_id}"


def histogram(name: str) -> str:
    return f"{PREFIX}metrics2:{name}"  # 2: counts per bucket, no longer cumulative


def cuda_failures(uuid: str) -> str:
    return f"{PREFIX}cudafail:{uuid}"
