"""The job histograms Prometheus scrapes: each value is counted once, in its own bucket, and the scrape
reports the cumulative buckets Prometheus expects."""

import pytest

from scheduler.dispatch import keys
from scheduler.dispatch.connections import redis_client
from scheduler.metrics import Collector, observe

pytestmark = [pytest.mark.redis]


def test_a_histogram_scrapes_cumulative_from_one_count_per_value(redis_url, settings):
    r = redis_client()
    r.delete(keys.histogram("duration"))
    with r.pipeline(transaction=False) as pipe:
        observe(pipe, "duration", [0.003, 0.07, 0.4, 0.4, 7200.0, 10**6])
        pipe.execute()
    assert len(r.hgetall(keys.histogram("duration"))) == 2 + 5  # count, sum and five buckets written
    family = Collector()._histogram(r, "duration", "gpuq_job_duration_seconds")
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert (buckets["0.01"], buckets["0.05"], buckets["0.1"], buckets["0.5"], buckets["3600"]) == (1, 1, 2, 4, 4)
    assert (buckets["14400"], buckets["86400"], buckets["+Inf"]) == (5, 5, 6)
    assert [s.value for s in family.samples if s.name.endswith("_sum")] == [pytest.approx(1007200.873)]
