"""Multi-GPU jobs in the router (a pure function): all or nothing on one host, reservations and backfill."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.sharing_sim import gang_trace, simulate_late, starved_stream
from scheduler.fleet.reservation import Reservation, admits, forecast, gpu_labels, reserve, starts_in
from scheduler.fleet.router import GiB, GpuState, JobDemand, fits_gang, route

NOW = 1_000_000.0


def gpus(host: str, n: int, gib: float = 80, **fields) -> list[GpuState]:
    return [
        GpuState(
            f"gpu.{host}.{i}", f"GPU-{host}-{i}", host, int(gib * GiB), int(gib * GiB), 0, True, False, NOW, **fields
        )
        for i in range(n)
    ]


def job(id: int, n: int = 1, gib: float = 1, work: float = 10.0, limit: float = 60.0) -> JobDemand:
    return JobDemand(id, int(gib * GiB), work, n, limit)


def test_it_places_a_job_on_n_idle_gpus_of_one_host_the_leader_first():
    [d] = route([job(1, n=2)], gpus("a", 1) + gpus("b", 2), now=NOW)
    assert d.gang == ("gpu.b.0", "gpu.b.1") and d.queue == "gpu.b.0"


def test_it_never_gives_a_job_part_of_its_gpus():
    fleet = gpus("a", 2)
    fleet[1] = replace(fleet[1], held_jobs=1, held_work=5.0, free_at=NOW + 5)
    [d] = route([job(1, n=2)], fleet, now=NOW, reserve_head=False)
    assert (d.queue, d.gang, d.reason) == (None, (), "waiting for 2 GPUs of one host to be idle together")


def test_gpus_on_two_hosts_do_not_make_one_gang():
    [d] = route([job(1, n=2)], gpus("a", 1) + gpus("b", 1), now=NOW)
    assert d.queue is None and d.reason == "no host has 2 healthy GPUs with 1.0 GiB each now (at most 1)"


def test_a_gpu_held_by_a_multi_gpu_job_takes_no_other_job():
    first, second, third = route([job(1, n=2), job(2), job(3)], gpus("a", 3), now=NOW, reserve_head=False)
    assert first.gang == ("gpu.a.0", "gpu.a.1")
    assert second.queue == "gpu.a.2" and third.queue == "gpu.a.2"  # both slots of the one GPU left


def test_it_takes_the_host_with_the_fewest_idle_gpus_so_whole_hosts_stay_free():
    [d] = route([job(1, n=2)], gpus("big", 4) + gpus("small", 2), now=NOW)
    assert d.gang == ("gpu.small.0", "gpu.small.1")


def test_each_gpu_must_hold_the_job_memory():
    fleet = (
        gpus("a", 1, gib=80)
        + gpus("a2", 0)
        + [replace(g, queue="gpu.a.9", memory_usable=10 * GiB) for g in gpus("a", 1)]
    )
    [d] = route([job(1, n=2, gib=40)], fleet, now=NOW)
    assert d.queue is None


def test_the_first_job_that_cannot_start_reserves_the_gpus_that_free_soonest():
    fleet = [
        replace(g, held_jobs=1, free_at=NOW + t, free_by=NOW + 2 * t)
        for g, t in zip(gpus("a", 3), (30, 10, 20), strict=True)
    ]
    [d] = route([job(1, n=2)], fleet, now=NOW)
    assert d.reservation == Reservation(1, ("gpu.a.1", "gpu.a.2"), NOW + 20, NOW + 40)


def test_a_later_job_backfills_a_reserved_gpu_only_when_it_ends_before_the_reservation():
    fleet = gpus("a", 2)
    fleet[0] = replace(fleet[0], held_jobs=1, held_work=30, free_at=NOW + 30, free_by=NOW + 100)
    fleet[1] = replace(fleet[1], held_jobs=1, held_work=5, free_at=NOW + 5, free_by=NOW + 50)
    big, long, short = route([job(1, n=2), job(2, work=40), job(3, work=20, limit=40)], fleet, now=NOW)
    assert big.reservation.starts_at == NOW + 30
    assert long.queue is None  # 5 + 40 > 30: it would delay the reserved job
    assert short.queue == "gpu.a.1"  # 5 + 20 <= 30 by estimate, 50 + 40 <= 100 by time limits


def test_a_job_whose_time_limit_could_outlast_the_reservation_does_not_backfill():
    held = Reservation(1, ("q",), NOW + 30, NOW + 60)
    g = replace(gpus("a", 1)[0], queue="q", free_at=NOW, free_by=NOW)
    assert admits(held, g, job(2, work=10, limit=60), NOW)
    assert not admits(held, g, job(3, work=10, limit=61), NOW)


def test_reservations_can_be_turned_off():
    fleet = [replace(g, held_jobs=1, free_at=NOW + 5) for g in gpus("a", 2)]
    [d] = route([job(1, n=2)], fleet, now=NOW, reserve_head=False)
    assert d.reservation is None


def test_a_large_memory_job_reserves_a_shared_gpu_that_small_jobs_keep_full():
    shared = replace(
        gpus("a", 1)[0], concurrency=4, slots=8, held_jobs=3, held_memory=60 * GiB, free_at=NOW + 20, free_by=NOW + 40
    )
    big, small = route([job(1, gib=70), job(2, gib=5, work=30)], [shared], now=NOW)
    assert big.queue is None and big.reservation.queues == (shared.queue,)
    assert small.queue is None  # it would run past the reservation: the memory stays for the big job
    [_, quick] = route([job(1, gib=70), job(3, gib=5, work=10, limit=30)], [shared], now=NOW)
    assert quick.queue == shared.queue  # ends before: it backfills


def test_the_forecast_counts_the_jobs_before_each():
    fleet = [replace(g, held_jobs=1, free_at=NOW + t) for g, t in zip(gpus("a", 2), (10, 20), strict=True)]
    found = forecast([job(1, n=2, work=30), job(2, work=5), job(3, work=5)], fleet, NOW)
    assert [(found[i].position, found[i].starts_at - NOW) for i in (1, 2, 3)] == [(1, 20), (2, 50), (3, 50)]


def test_reservation_texts_name_gpus_by_host_and_index():
    labels = {"q0": "hostA:0", "q1": "hostA:1"}
    assert gpu_labels(("q0", "q1"), labels) == "GPUs 0-1 of hostA"
    assert Reservation(42, ("q0", "q1"), NOW + 180, NOW + 400).describe(NOW, labels) == (
        "reserved GPUs 0-1 of hostA for job 42; starts in about 3 min"
    )
    assert starts_in(0.5) == "now" and starts_in(45) == "in about 45 s" and starts_in(7200) == "in about 2.0 h"


def test_a_reservation_needs_a_host_that_could_hold_the_job():
    assert reserve(job(1, n=3), gpus("a", 2), NOW) is None


def test_submission_refuses_a_job_no_host_can_hold():
    placeable = [("a", 80 * GiB), ("a", 80 * GiB), ("b", 40 * GiB), ("b", 80 * GiB)]
    assert fits_gang(60 * GiB, 2, placeable) is None
    assert fits_gang(60 * GiB, 3, placeable) == (
        "the job needs 3 GPUs of one host with 60.0 GiB each; no host of the fleet has that "
        "(the most: 2 on a, among GPUs that are healthy and not draining)"
    )
    assert fits_gang(60 * GiB, 8, []) is None  # no GPU seen yet: accepted, it waits


def test_a_stream_of_one_gpu_jobs_does_not_starve_a_gang_within_the_bound():
    with_reservation = starved_stream(reserve=True)
    without = starved_stream(reserve=False)
    gang = next(j for j in with_reservation.jobs if j.gpus > 1)
    assert gang.start <= with_reservation.first_latest  # the stated bound
    assert next(j for j in without.jobs if j.gpus > 1).start > gang.start + 100  # starved until the stream ends


def test_reservation_cuts_the_big_jobs_wait_in_the_sharing_simulation():
    on, off = simulate_late(gang_trace(1), 4, reserve=True), simulate_late(gang_trace(1), 4, reserve=False)
    wait = lambda jobs: max(j.start - j.submit for j in jobs if j.gpus > 1)  # noqa: E731
    assert wait(on.jobs) < wait(off.jobs)
