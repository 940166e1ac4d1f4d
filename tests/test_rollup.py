"""A GPU's telemetry over hours: each minute's readings folded into one point (lowest, mean, highest),
written by the publishing path itself, kept for TELEMETRY_HISTORY_HOURS and no longer."""

from dataclasses import replace

import pytest

from scheduler.fleet import rollup
from scheduler.fleet import store as fleet
from tests.test_telemetry import recording

HOUR = 3600.0
DAY_START = 1_750_000_020.0  # the start of a minute


@pytest.fixture
def snap():
    return recording("h200x2_busy")["snapshots"][1]


def _publish(r, snap, t: float, utilization: float | None, memory_used: int) -> None:
    fleet.publish(r, replace(snap, last_seen=t, utilization=utilization, memory_used=memory_used), ttl=10)


def test_it_folds_a_minute_into_its_lowest_mean_and_highest_reading():
    points = [
        {"t": DAY_START + 1, "utilization": 10.0, "memory_used": 4, "temperature": 40},
        {"t": DAY_START + 30, "utilization": None, "memory_used": 8, "temperature": 50},
        {"t": DAY_START + 59, "utilization": 40.0, "memory_used": 6, "temperature": 45},
    ]
    assert rollup.fold(points) == {
        "t": DAY_START, "n": 3,
        "utilization_min": 10.0, "utilization_mean": 25.0, "utilization_max": 40.0,  # the unread one left out
        "memory_used_min": 4, "memory_used_mean": 6.0, "memory_used_max": 8,
        "temperature_min": 40, "temperature_mean": 45.0, "temperature_max": 50,
    }  # fmt: skip


def test_folding_minute_points_weighs_each_by_its_readings():
    quiet = rollup.fold([{"t": DAY_START, "utilization": 0.0}] * 3)
    busy = rollup.fold([{"t": DAY_START + 60, "utilization": 100.0}])
    both = rollup.fold([quiet, busy], t=DAY_START)
    assert (both["n"], both["utilization_mean"], both["utilization_min"], both["utilization_max"]) == (4, 25.0, 0, 100)
    assert both["memory_used_mean"] is None  # no reading had it


def test_publishing_keeps_a_point_a_minute_for_the_hours_set_and_no_more(r, snap, settings):
    settings.TELEMETRY_HISTORY_HOURS = 2
    # Three hours at a reading every 10 s: utilization climbs through each minute, memory stays put.
    for i in range(int(3 * HOUR / 10)):
        _publish(r, snap, DAY_START + 10 * i, utilization=float(i % 6) * 20, memory_used=1000 + i // 6)
    kept = fleet.minutes(r, snap.uuid)
    assert len(kept) == 120 and len(fleet.history(r, snap.uuid)) == fleet.HISTORY_POINTS
    # The last minute is still open: the newest folded one is the minute before it.
    assert [p["t"] for p in kept] == [DAY_START + 60 * m for m in range(180 - 121, 180 - 1)]
    last = kept[-1]
    assert (last["n"], last["utilization_min"], last["utilization_mean"], last["utilization_max"]) == (6, 0, 50, 100)
    assert last["memory_used_min"] == last["memory_used_max"] == 1000 + 178


def test_a_worker_back_after_a_gap_folds_the_minute_it_left(r, snap):
    _publish(r, snap, DAY_START + 5, utilization=30.0, memory_used=1)
    _publish(r, snap, DAY_START + 7, utilization=50.0, memory_used=1)
    assert fleet.minutes(r, snap.uuid) == []
    _publish(r, snap, DAY_START + 600, utilization=0.0, memory_used=1)  # ten minutes later, a new process
    [folded] = fleet.minutes(r, snap.uuid)
    assert (folded["t"], folded["n"], folded["utilization_mean"]) == (DAY_START, 2, 40.0)


def test_a_chart_window_joins_the_minute_points_to_the_recent_readings_without_overlap():
    minutes = [rollup.fold([{"t": DAY_START + 60 * m, "utilization": float(m)}]) for m in range(10)]
    recent = [{"t": DAY_START + 540 + s, "utilization": 99.0} for s in range(0, 120, 10)]  # from minute 9 on
    fine = rollup.window(recent, minutes, DAY_START + 300, fine=True)
    minute_points, readings = (
        [DAY_START + 60 * m for m in range(5, 10)],
        [DAY_START + 600 + s for s in range(0, 60, 10)],
    )
    assert [p["t"] for p in fine] == minute_points + readings
    assert fine[-1]["n"] == 1 and fine[-1]["utilization_min"] == fine[-1]["utilization_max"] == 99.0
    coarse = rollup.window(recent, minutes, DAY_START, fine=False)
    assert [p["t"] for p in coarse] == [DAY_START + 60 * m for m in range(11)] and coarse[-1]["n"] == 6
