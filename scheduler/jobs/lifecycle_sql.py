"""PostgreSQL: each hot transition of lifecycle.py as one statement, the job's row and its event row
together (only lifecycle.py calls these; its table says who makes each change).

A data-modifying CTE moves the row conditionally and inserts its timeline event from what moved, so
the change and its event commit together in one round trip (no BEGIN, no COMMIT, no second
statement); where the condition fails, nothing is written. SQLite has no data-modifying CTEs:
lifecycle.py keeps a transaction of two statements there.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection

from scheduler.jobs.models import Job, JobEvent, Status

JOBS, EVENTS = Job._meta.db_table, JobEvent._meta.db_table


def finish(job_id: int, lease: str, now: datetime, status: str, fields: dict, message: str) -> bool:
    """running -> `status` for the attempt holding `lease`, with its event; whether it moved."""
    with connection.cursor() as cur:
        cur.execute(
            f"WITH moved AS (UPDATE {JOBS} SET status = %s, result = %s::jsonb, error = %s, error_kind = %s, "
            f"finished_at = %s, lease = '' WHERE id = %s AND status = %s AND lease = %s RETURNING id), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, %s, %s, %s FROM moved) "
            f"SELECT count(*) FROM moved",
            [
                status,
                None if fields["result"] is None else json.dumps(fields["result"]),
                fields["error"],
                fields["error_kind"],
                now,
                job_id,
                Status.RUNNING,
                lease,
                now,
                status,
                message,
            ],
        )
        return bool(cur.fetchone()[0])


def mark_queued(ids: list[int], queue: str, gpu_uuid: str, reasons: dict[int, str], now: datetime) -> list[int]:
    """waiting -> queued for each of `ids` still waiting, with its routing reason and event; the ids moved."""
    cases = " ".join("WHEN %s THEN %s" for _ in ids)
    with connection.cursor() as cur:
        cur.execute(
            f"WITH moved AS (UPDATE {JOBS} SET status = %s, queue = %s, gpu_uuid = %s, wait_reason = '', "
            f"queued_at = %s, route_reason = CASE id {cases} END WHERE id = ANY(%s) AND status = %s "
            f"RETURNING id, route_reason), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) "
            f"SELECT id, %s, %s, %s || route_reason FROM moved) SELECT id FROM moved",
            [Status.QUEUED, queue, gpu_uuid, now, *[x for i in ids for x in (i, reasons[i])], ids, Status.WAITING]
            + [now, Status.QUEUED, f"routed to {queue}: "],
        )
        moved = {row[0] for row in cur.fetchall()}
    return [i for i in ids if i in moved]


def finish_and_claim(
    done: dict | None, job_id: int, lease: str, now: datetime, worker_queue: str, where: str
) -> tuple[bool, Job | None, bool]:
    """One statement, one commit: record the previous attempt's success (`done`: job_id, lease, at,
    result, message) and claim the next job. (whether `done` was recorded, the claimed row or None,
    whether more jobs wait queued for this worker)."""
    finish_sql, finish_params = "SELECT NULL::bigint AS id WHERE false", []
    if done is not None:
        finish_sql = (
            f"UPDATE {JOBS} SET status = %s, result = %s::jsonb, error = '', error_kind = '', finished_at = %s, "
            f"lease = '' WHERE id = %s AND status = %s AND lease = %s RETURNING id"
        )
        result = None if done["result"] is None else json.dumps(done["result"])
        finish_params = [Status.SUCCEEDED, result, done["at"], done["job_id"], Status.RUNNING, done["lease"]]
    rows = list(
        Job.objects.raw(
            f"WITH done AS ({finish_sql}), "
            f"done_event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, %s, %s, %s FROM done), "
            f"moved AS (UPDATE {JOBS} SET status = %s, lease = %s, started_at = %s, error = '', error_kind = '', "
            f"attempts = attempts + 1 WHERE id = %s AND status = %s AND queue = %s RETURNING *), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, %s, %s, "
            f"'attempt ' || attempts || ' started: ' || kind || ' on ' || %s FROM moved) "
            f"SELECT moved.*, (SELECT count(*) FROM done) AS done_n, EXISTS (SELECT 1 FROM {JOBS} "
            f"WHERE queue = %s AND status = %s AND id <> %s) AS more_queued "
            f"FROM (SELECT 1) AS one LEFT JOIN moved ON true",
            finish_params
            + [(done or {}).get("at", now), Status.SUCCEEDED, (done or {}).get("message", "")]
            + [Status.RUNNING, lease, now, job_id, Status.QUEUED, worker_queue, now, Status.RUNNING, where]
            + [worker_queue, Status.QUEUED, job_id],
        )
    )
    row = rows[0]
    return bool(row.done_n), (row if row.id is not None else None), bool(row.more_queued)
