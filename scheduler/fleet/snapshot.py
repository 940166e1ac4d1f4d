"""One GPU's (or CPU worker's) live reading: what its worker publishes and what routing reads.

A worker builds it (workers/telemetry.py), the fleet store keeps it in Redis as JSON
(scheduler/fleet/store.py), the releaser turns it into the router's GpuState, the fleet view and the
API show it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    host: str
    uuid: str
    name: str
    queue: str  # the Celery queue its worker consumes
    kind: str  # "gpu" or "cpu"
    memory_total: int  # bytes
    memory_used: int
    memory_free: int
    memory_usable: int  # total minus what processes that are not ours hold
    last_seen: float  # epoch seconds
    index: int = -1  # NVML index; -1 for a CPU worker
    bus_id: str = ""
    running_job: int | None = None
    draining: bool = False
    memory_foreign: int = 0  # bytes held by processes that are not ours
    utilization: float | None = None  # percent; None where NVML cannot tell
    temperature: int | None = None  # degrees C
    power_w: float | None = None
    healthy: bool = True
    health_reason: str = ""
    processes: tuple[dict[str, int], ...] = field(default_factory=tuple)  # {"pid", "memory"} per process
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "processes": [dict(p) for p in self.processes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        # Keys this version does not know are left out: a newer worker may publish more during an upgrade.
        known = {k: v for k, v in data.items() if k in _FIELDS}
        return cls(**{**known, "processes": tuple(dict(p) for p in known.get("processes") or ())})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Snapshot:
        return cls.from_dict(json.loads(raw))


_FIELDS = {f.name for f in fields(Snapshot)}
