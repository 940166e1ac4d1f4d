"""What one worker transition costs, and where: `python -m benchmarks.transition_profile [--database URL]`.

A transition is what a GPU worker does between two jobs sent alone (workers/finishing.chain): record the
success and claim the head of its queue in one statement, then one Redis pipeline. Timed here in one
process on this host's CPU, without a GPU, over jobs it creates on the database given (default: a
private pgserver PostgreSQL), then profiled (cProfile, by own time), to explain the GPU idle gap that
benchmarks.run measures between matmul jobs.
"""

import cProfile
import os
import pstats
import statistics
import sys
import time

sys.path.insert(0, os.getcwd())
from benchmarks.database import open_database  # noqa: E402

url, _ = open_database(sys.argv[sys.argv.index("--database") + 1] if "--database" in sys.argv else "pgserver")
os.environ.update(
    DATABASE_URL=url,
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
    DJANGO_SETTINGS_MODULE="scheduler.settings",
)
import django  # noqa: E402

django.setup()
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

call_command("migrate", verbosity=0)
from scheduler.dispatch.connections import redis_client  # noqa: E402
from scheduler.jobs import lifecycle  # noqa: E402
from scheduler.jobs.models import Job, Status  # noqa: E402
from scheduler.jobs.release import ALIVE_KEY  # noqa: E402
from workers import finishing, identity  # noqa: E402

redis_client().set(ALIVE_KEY, 1, ex=600)  # as where a releaser loop runs
identity.set_current(identity.WorkerIdentity("gpu", "proflhost", "GPU-prof", "gpu.prof"))
user, _ = get_user_model().objects.get_or_create(username="prof")
N = 400
Job.objects.filter(queue="gpu.prof").delete()
now = timezone.now()
Job.objects.bulk_create(
    [
        Job(
            owner=user,
            kind="burn",
            params={"seconds": 5, "mib": 1},
            time_limit=600,
            work_estimate=5.0,
            status=Status.QUEUED,
            queue="gpu.prof",
            gpu_uuid="GPU-prof",
            queued_at=now + timezone.timedelta(microseconds=i),
        )
        for i in range(N)
    ]
)
jobs, token, more, beat = finishing.claim(
    [Job.objects.filter(queue="gpu.prof").order_by("queued_at").first().id], "prof", "t"
)
times = []


def step():
    global jobs, token, more, beat
    done = [lifecycle.Done(jobs[0], token, {"gpu_time_s": 0.44, "n": 8192}, "finished", timezone.now())]
    t0 = time.perf_counter()
    jobs, token, more, beat = finishing.chain(done, beat, "prof", "t")
    times.append((time.perf_counter() - t0) * 1e3)


for _ in range(50):
    step()
prof = cProfile.Profile()
prof.enable()
for _ in range(300):
    step()
prof.disable()
times = times[50:]
print(
    f"chain transition: p50 {statistics.median(times):.3f} ms, p90 {sorted(times)[int(len(times) * 0.9)]:.3f} ms (profiled)"
)
times.clear()
for _ in range(40):
    step()
print(f"chain transition unprofiled: p50 {statistics.median(times):.3f} ms")
pstats.Stats(prof).sort_stats("tottime").print_stats(22)
