"""A GPU's telemetry over hours: its one-second points folded into one point a minute.

A minute point is the minute's start `t`, its count of readings `n`, and for each of HISTORY_FIELDS
the `<field>_min`, `<field>_mean` and `<field>_max` of the readings that had it (None where none did:
a board that cannot report its utilization). A one-second point reads as a minute point of one reading,
so a chart draws both with one code path.

    >>> fold([{"t": 120.5, "utilization": 10.0}, {"t": 121.5, "utilization": 30.0}])["utilization_mean"]
    20.0
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby
from typing import Any

HISTORY_FIELDS = ("memory_used", "utilization", "temperature")
STEP = 60  # seconds a minute point covers: a day is 1,440 points, enough for a chart a screen wide


def minute(t: float) -> float:
    """The start of the minute `t` (epoch seconds) falls in."""
    return float(t - t % STEP)


def fold(points: list[dict], t: float | None = None) -> dict:
    """One point summing up `points` (one-second or minute points), dated `t` (default: their minute)."""
    out: dict = {"t": minute(points[0]["t"]) if t is None else t, "n": sum(p.get("n", 1) for p in points)}
    for field in HISTORY_FIELDS:
        out.update(_stats(field, points))
    return out


def _stats(field: str, points: list[dict]) -> dict:
    seen = [p for p in points if _read(p, field, "mean") is not None]
    if not seen:
        return {f"{field}_min": None, f"{field}_mean": None, f"{field}_max": None}
    weights = [p.get("n", 1) for p in seen]
    total = sum(_read(p, field, "mean") * w for p, w in zip(seen, weights, strict=True))
    return {
        f"{field}_min": min(_read(p, field, "min") for p in seen),
        f"{field}_mean": total / sum(weights),
        f"{field}_max": max(_read(p, field, "max") for p in seen),
    }


def _read(point: dict, field: str, stat: str) -> Any:
    """A minute point's `<field>_<stat>`, or a one-second point's reading of `field`."""
    return point.get(f"{field}_{stat}", point.get(field))


def by_minute(points: Iterable[dict]) -> list[dict]:
    """`points` (oldest first) folded into one point per minute they fall in."""
    return [fold(list(group)) for _, group in groupby(points, key=lambda p: minute(p["t"]))]


def as_minute_point(point: dict) -> dict:
    """A one-second point in the shape of a minute point (min, mean and max all its reading)."""
    return fold([point], t=point["t"])


def window(recent: list[dict], minutes: list[dict], start: float, *, fine: bool) -> list[dict]:
    """A chart's points from `start` on: the minute points, then the recent one-second points newer
    than the last of them, as they are (`fine`) or folded by minute; all in minute points' shape."""
    kept = [p for p in minutes if p["t"] + STEP > start]
    after = minutes[-1]["t"] + STEP if minutes else start
    newer = [p for p in recent if p["t"] >= max(start, after)]
    return kept + ([as_minute_point(p) for p in newer] if fine else by_minute(newer))
