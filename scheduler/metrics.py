"""Prometheus metrics at /metrics, gathered when scraped: jobs from the database, GPUs from Redis.

Durations and waits are histograms whose buckets live in Redis, counted by whichever process
records a job's end, so every web and worker process reports the same cumulative figures.
"""

from __future__ import annotations

import hmac
import itertools
from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, HistogramMetricFamily

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.fleet import store as fleet
from scheduler.jobs.models import Job, Status

BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
HISTOGRAMS = {"duration": "gpuq_job_duration_seconds", "wait": "gpuq_job_wait_seconds"}


def observe(pipe, name: str, seconds: Iterable[float]) -> None:
    """Count observations into the Redis-held histogram `name` (duration or wait), on a pipeline the
    caller executes: each value in the one bucket it falls in (the scrape adds them up), so a job's
    end costs three commands, not one a bucket (the worker's pipeline between two jobs had ~37)."""
    values = list(seconds)
    key = keys.histogram(name)
    for bound, n in Counter(next((b for b in BUCKETS if v <= b), "inf") for v in values).items():
        pipe.hincrby(key, f"in:{bound}", n)
    pipe.hincrby(key, "count", len(values))
    pipe.hincrbyfloat(key, "sum", sum(values))


class Collector:
    def collect(self):
        r = redis_client()
        yield self._jobs()
        yield from self._gpus(r)
        for name, metric in HISTOGRAMS.items():
            yield self._histogram(r, name, metric)

    def _jobs(self) -> GaugeMetricFamily:
        g = GaugeMetricFamily("gpuq_jobs", "Jobs by status and kind", labels=["status", "kind"])
        for row in Job.objects.values("status", "kind").annotate(n=Count("id")).order_by():
            g.add_metric([row["status"], row["kind"]], row["n"])
        return g

    def _gpus(self, r):
        depth = GaugeMetricFamily(
            "gpuq_queue_depth", "Jobs held by each GPU (queued and running)", labels=["gpu", "queue"]
        )
        held = dict(
            Job.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
            .values("queue")
            .annotate(n=Count("id"))
            .values_list("queue", "n")
        )
        used = GaugeMetricFamily("gpuq_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu", "host"])
        total = GaugeMetricFamily("gpuq_gpu_memory_total_bytes", "GPU memory", labels=["gpu", "host"])
        util = GaugeMetricFamily("gpuq_gpu_utilization_percent", "GPU utilization", labels=["gpu", "host"])
        healthy = GaugeMetricFamily(
            "gpuq_gpu_healthy",
            "1 when the GPU takes jobs; 0 when marked unhealthy, with the reason",
            labels=["gpu", "host", "reason"],
        )
        sick = fleet.unhealthy(r)
        for s in fleet.live_snapshots(r):
            depth.add_metric([s.uuid, s.queue], held.get(s.queue, 0))
            used.add_metric([s.uuid, s.host], s.memory_used or 0)
            total.add_metric([s.uuid, s.host], s.memory_total or 0)
            util.add_metric([s.uuid, s.host], s.utilization or 0)
            reason = sick.get(s.uuid) or ("" if s.healthy else s.health_reason)
            healthy.add_metric([s.uuid, s.host, reason], 0 if reason else 1)
        return depth, used, total, util, healthy

    def _histogram(self, r, name: str, metric: str) -> HistogramMetricFamily:
        raw = {k.decode(): v.decode() for k, v in r.hgetall(keys.histogram(name)).items()}
        cumulative = list(itertools.accumulate(int(raw.get(f"in:{b}", 0)) for b in BUCKETS))
        buckets = [(str(b), n) for b, n in zip(BUCKETS, cumulative, strict=True)] + [("+Inf", int(raw.get("count", 0)))]
        return HistogramMetricFamily(
            metric, f"Job {name} in seconds", buckets=buckets, sum_value=float(raw.get("sum", 0))
        )


def allowed(request: HttpRequest) -> bool:
    """Prometheus sends `Authorization: Bearer <METRICS_TOKEN>` (its `authorization.credentials_file`);
    a signed-in member of staff may read the page too. Job counts and GPU names are not public."""
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    return request.user.is_authenticated and request.user.is_staff


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        answer = HttpResponse("metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401)
        answer["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return answer
    registry = CollectorRegistry()
    registry.register(Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
