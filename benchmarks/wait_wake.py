"""From a job's success to a client waiting on `/api/jobs/<id>/wait/` holding the answer, through a real
gunicorn: `python -m benchmarks.wait_wake --database URL --redis URL [-n 200]`.

The success is written as a worker writes one (its time taken before the one statement that moves the row
and inserts its event, lifecycle.finish; the publish after it), from this process while a thread waits; the figure is the
parsed answer's arrival minus that time: "succeeded to seen by the waiting client" alone, without a worker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", required=True)
    p.add_argument("--redis", required=True)
    p.add_argument("-n", type=int, default=200)
    args = p.parse_args()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="scheduler.settings",
        DATABASE_URL=args.database,
        REDIS_URL=args.redis,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from workers import launch

    port = launch.free_port()
    web = subprocess.Popen(launch.gunicorn(port, 1), env=dict(os.environ), stdout=subprocess.DEVNULL)
    try:
        launch.wait_until(lambda: launch.http_ok(f"http://127.0.0.1:{port}/api/schema/"), 60, "gunicorn to serve")
        ms = _samples(f"http://127.0.0.1:{port}", args.n)
    finally:
        web.terminate()
        web.wait(10)
    ms.sort()
    print(
        f"succeeded to seen, n={len(ms)}: p50 {statistics.median(ms):.2f} ms, "
        f"p90 {ms[int(len(ms) * 0.9)]:.2f} ms, mean {statistics.fmean(ms):.2f} ms"
    )


def _samples(url: str, n: int) -> list[float]:
    import requests
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="wait-bench")
    http = requests.Session()
    http.headers["Authorization"] = f"Token {Token.objects.get_or_create(user=user)[0].key}"
    http.get(f"{url}/api/jobs/", timeout=10)  # the session's connection and the web worker's first answer
    return [_one(http, url, user) for _ in range(n)]


def _one(http, url: str, user) -> float:
    from django.utils import timezone

    from scheduler.jobs import lifecycle
    from scheduler.jobs.models import Job, JobEvent, Status

    job = Job.objects.create(owner=user, kind="noop", status=Status.RUNNING, time_limit=60, lease="bench")
    JobEvent.objects.bulk_create(
        [JobEvent(job=job, status=s, message=s) for s in (Status.WAITING, Status.QUEUED, Status.RUNNING)]
    )
    seen: list[float] = []

    def waiter() -> None:
        answer = http.get(f"{url}/api/jobs/{job.id}/wait/", params={"timeout": 20}, timeout=30).json()
        seen.append(time.time())
        assert answer["status"] == Status.SUCCEEDED, answer

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.05)  # the waiter is subscribed and has read the job running
    now = timezone.now()
    assert lifecycle.finish(job, "bench", Status.SUCCEEDED, at=now)  # the waiters told with the GPU time charged
    thread.join()
    return (seen[0] - now.timestamp()) * 1e3


if __name__ == "__main__":
    sys.exit(main())
