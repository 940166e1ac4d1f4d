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
from functools import cache

from django.db import connection

from scheduler.jobs import prepared
from scheduler.jobs.models import HELD, UNFINISHED, Job, JobEvent, Status

JOBS, EVENTS = Job._meta.db_table, JobEvent._meta.db_table


def finish(
    job_id: int, lease: str, began: datetime | None, now: datetime, status: str, fields: dict, message: str
) -> bool:
    """running -> `status` for the attempt holding `lease`, with its event (`began`: its true start, where
    it was claimed with others before it); whether it moved."""
    with prepared.cursor() as cur:
        cur.execute(
            f"WITH moved AS (UPDATE {JOBS} SET status = %s, result = %s::jsonb, error = %s, error_kind = %s, "
            f"started_at = coalesce(%s, started_at), finished_at = %s, lease = '' "
            f"WHERE id = %s AND status = %s AND lease = %s RETURNING id), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, %s, %s, %s FROM moved) "
            f"SELECT count(*) FROM moved",
            [
                status,
                None if fields["result"] is None else json.dumps(fields["result"]),
                fields["error"],
                fields["error_kind"],
                began,
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
    """waiting -> queued for each of `ids` still waiting, with its routing reason and event; the ids moved.
    Their `queued_at` is `now` plus a microsecond per place in `ids`, so that a worker taking the head of
    its queue (finish_and_claim) takes them in the order the round placed them, as their messages go."""
    with prepared.cursor() as cur:
        cur.execute(
            f"WITH r AS (SELECT * FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS r(id, reason, place)), "
            f"moved AS (UPDATE {JOBS} AS j SET status = %s, queue = %s, gpu_uuid = %s, wait_reason = '', "
            f"queued_at = %s::timestamptz + r.place * interval '1 microsecond', route_reason = r.reason "
            f"FROM r WHERE j.id = r.id AND j.status = %s RETURNING j.id, j.route_reason), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) "
            f"SELECT id, %s, %s, %s || route_reason FROM moved) SELECT id FROM moved",
            [ids, [reasons[i] for i in ids], Status.QUEUED, queue, gpu_uuid, now, Status.WAITING]
            + [now, Status.QUEUED, f"routed to {queue}: "],
        )
        moved = {row[0] for row in cur.fetchall()}
    return [i for i in ids if i in moved]


# A job its worker may take from its queue's head alone, without its message (its two parameters are
# bundle_seconds): sending.bundleable's rule, negated and less its kind check (a short job of a kind
# that stops cooperatively goes alone, and its message claims it). Change the two together.
ALONE = "gpus = 1 AND NOT (%s > 0 AND work_estimate <= %s AND attempts = 0)"

# An attempt's start in its timeline, from the row that started it (its `where` a parameter), as
# lifecycle.claim writes it on SQLite.
STARTED = "'attempt ' || attempts || ' started: ' || kind || ' on ' || %s"


def _recording(done: list[dict]) -> tuple[str, list]:
    """The CTEs `d`, `done` and `done_event` that record the previous attempts' successes (`done`: each
    job_id, lease, began, at, result, message) and their events; `done` returns the ids recorded."""
    column = {key: [d[key] for d in done] for key in ("job_id", "lease", "began", "at", "message")}
    results = [None if d["result"] is None else json.dumps(d["result"]) for d in done]
    sql = (
        f"d AS (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[], "
        f"%s::text[], %s::text[]) AS d(id, lease, began, at, result, message)), "
        f"done AS (UPDATE {JOBS} AS j SET status = %s, result = d.result::jsonb, error = '', error_kind = '', "
        f"started_at = coalesce(d.began, j.started_at), finished_at = d.at, lease = '' FROM d "
        f"WHERE j.id = d.id AND j.status = %s AND j.lease = d.lease RETURNING j.id, d.at, d.message), "
        f"done_event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, at, %s, message FROM done)"
    )
    params = [column["job_id"], column["lease"], column["began"], column["at"], results, column["message"]]
    return sql, params + [Status.SUCCEEDED, Status.RUNNING, Status.SUCCEEDED]


def finish_and_claim(
    done: list[dict],
    job_ids: list[int] | None,
    lease: str,
    now: datetime,
    worker_queue: str,
    where: str,
    bundle_seconds: float = 0.0,
    early: bool = False,
    bundle: tuple[int, list[str]] | None = None,
) -> tuple[set[int], list[Job], bool]:
    """One statement, one commit: record the previous attempts' successes (`done`: each job_id, lease,
    began, at, result, message) and claim the jobs `job_ids` still queued for this worker, or with
    `job_ids` None the head of its queue where it may run alone (ALONE: not a multi-GPU job, nor one its
    message would bundle). With `bundle` too (at most this many jobs, the kinds a cancel stops by killing
    the process), a head that is a short job is claimed with the run of them that one message would
    carry (sending.bundles' rule), their messages finding them taken. `early`: claimed while the job
    before it runs, its attempt not begun: no event (`begin_early` writes it). (the ids recorded, the
    claimed rows in the order asked, whether other jobs wait queued for this worker)."""
    recording, recording_args = _recording(done)
    if job_ids is None and bundle is not None:
        # The head's jobs in release order while each is bundleable (bool_and over the window holds for
        # a prefix only) and their work stays within bundle_seconds, sending.bundles' rule; else the
        # head alone, where ALONE allows it.
        pick = (
            f"id IN (SELECT id FROM (SELECT id, gpus, attempts, work_estimate, row_number() OVER w AS n, "
            f"bool_and(%s > 0 AND gpus = 1 AND attempts = 0 AND work_estimate <= %s AND kind = ANY(%s)) OVER w "
            f"AS ok, sum(work_estimate) OVER w AS total FROM (SELECT id, gpus, attempts, work_estimate, kind, "
            f"queued_at FROM {JOBS} WHERE queue = %s AND status = %s ORDER BY queued_at, id LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) AS head WINDOW w AS (ORDER BY queued_at, id)) AS run WHERE (ok AND "
            f"total <= %s) OR (n = 1 AND {ALONE}))"
        )
        most, kinds = bundle
        pick_args = [bundle_seconds, bundle_seconds, kinds, worker_queue, Status.QUEUED, most, bundle_seconds]
        pick_args += [bundle_seconds, bundle_seconds]
    elif job_ids is None:
        # The queue's head in the order its jobs were released (mark_queued spaces their queued_at);
        # SKIP LOCKED: where another process of this worker is claiming it, this one claims none.
        pick = (
            f"id = (SELECT id FROM {JOBS} WHERE queue = %s AND status = %s ORDER BY queued_at, id LIMIT 1 "
            f"FOR UPDATE SKIP LOCKED) AND {ALONE}"
        )
        pick_args = [worker_queue, Status.QUEUED, bundle_seconds, bundle_seconds]
    else:
        pick, pick_args = "id = ANY(%s)", [job_ids]
    rows = list(
        prepared.raw(
            Job,
            f"WITH {recording}, "
            f"moved AS (UPDATE {JOBS} SET status = %s, lease = %s, started_at = %s, error = '', error_kind = '', "
            f"attempts = attempts + 1 WHERE {pick} AND status = %s AND queue = %s RETURNING *), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, %s, %s, {STARTED} "
            f"FROM moved WHERE %s) "
            f"SELECT moved.*, (SELECT array_agg(id) FROM done) AS done_ids, EXISTS (SELECT 1 FROM {JOBS} "
            f"WHERE queue = %s AND status = %s AND id NOT IN (SELECT id FROM moved)) AS more_queued "
            f"FROM (SELECT 1) AS one LEFT JOIN moved ON true",
            recording_args
            + [Status.RUNNING, lease, now, *pick_args, Status.QUEUED, worker_queue]
            + [now, Status.RUNNING, where, not early, worker_queue, Status.QUEUED],
        )
    )
    order = {job_id: i for i, job_id in enumerate(job_ids or ())}
    claimed = sorted(
        (row for row in rows if row.id is not None), key=lambda row: (order.get(row.id, 0), row.queued_at, row.id)
    )
    return set(rows[0].done_ids or ()), claimed, bool(rows[0].more_queued)


def begin_early(
    done: list[dict], job_id: int, early_lease: str, lease: str, now: datetime, where: str
) -> tuple[set[int], int | None]:
    """One statement, one commit: record the successes `done` (as finish_and_claim) and note that the
    attempt of the job claimed early under `early_lease` began `now`, holding `lease`, with its event;
    (the ids recorded, the attempt's number, None where the job is no longer held so: cancelled)."""
    recording, recording_args = _recording(done)
    with prepared.cursor() as cur:
        cur.execute(
            f"WITH {recording}, "
            f"begun AS (UPDATE {JOBS} SET lease = %s, started_at = %s "
            f"WHERE id = %s AND status = %s AND lease = %s RETURNING id, attempts, kind), "
            f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT id, %s, %s, {STARTED} "
            f"FROM begun) "
            f"SELECT (SELECT array_agg(id) FROM done), (SELECT attempts FROM begun)",
            recording_args + [lease, now, job_id, Status.RUNNING, early_lease, now, Status.RUNNING, where],
        )
        recorded, attempts = cur.fetchone()
    return set(recorded or ()), attempts


# Of a submission's jobs, the columns that differ from one to the next; every other column (the owner,
# the array, the status and each default) is one value for the whole batch, prepared once.
SUBMITTED_PER_JOB = (
    "kind",
    "params",
    "name",
    "tags",
    "priority",
    "time_limit",
    "memory_estimate",
    "work_estimate",
    "gpus",
    "wait_reason",
    "runner",
    "created_at",
)


# What a lone job released by its own submission (an idle GPU) is stored with instead of each one's value.
RELEASED = ("status", "queue", "gpu_uuid", "wait_reason", "queued_at", "route_reason")
# Constants are written into the statement rather than sent: psycopg parses a statement of over 50
# parameters again at each execution (MAX_CACHED_STATEMENT_PARAMS); with these it has 42.
RELEASED_AS = {"status": f"'{Status.QUEUED}'", "wait_reason": "''"}


def submitted(
    jobs: list[Job], at: datetime, most_pending: int, idle: tuple[str, str, str] | None, lock_id: int
) -> tuple[bool, int, bool]:
    """Insert `jobs` (unsaved, of one owner and array) and each one's `submitted` event (`at`) in one
    statement, only while the owner's unfinished jobs and these stay within `most_pending`, and give them
    their ids in order: the rows come from arrays of the columns that differ between them (unnest), so
    nothing is quoted and the statement's shape never changes. With `idle` (queue, GPU uuid, routing
    reason) a lone job is stored queued there, with its `queued` event, where the same statement finds
    that no other job waits, that GPU holds nothing (nor does any multi-GPU job) and no release round
    holds the releaser's lock (taken until the commit). (stored, the owner's unfinished jobs before, released)."""
    queue, gpu_uuid, reason = idle or ("", "", "")
    then = dict(zip(RELEASED, (Status.QUEUED, queue, gpu_uuid, "", at, reason), strict=True))
    with prepared.cursor() as cur:
        cur.execute(
            _submitted_sql(),
            [*_arrays(jobs), jobs[0].owner_id, idle is not None, queue, lock_id]
            + [*_values(jobs[0], then), len(jobs), most_pending, at, f"routed to {queue}: {reason}"],
        )
        rows_back = cur.fetchall()
    if rows_back[0][0] is None:
        return False, rows_back[0][2], False
    for job, (job_id, status, _) in zip(jobs, rows_back, strict=True):
        job.id, job.status = job_id, status
        job._state.adding, job._state.db = False, connection.alias
    released = rows_back[0][1] == Status.QUEUED
    if released:
        for name in RELEASED:
            setattr(jobs[0], name, then[name])
    return True, rows_back[0][2], released


@cache
def _fields() -> tuple[list, list]:
    """The columns `submitted` writes, and those of them that vary between jobs."""
    fields = [f for f in Job._meta.concrete_fields if not f.primary_key]
    return fields, [f for f in fields if f.attname in SUBMITTED_PER_JOB]


@cache
def _submitted_sql() -> str:
    """`submitted`'s statement, the same for every submission: built once per process (building it was
    0.85 ms of each POST), prepared once per connection."""
    fields, varying = _fields()
    rows = ", ".join(f"%s::{f.db_type(connection)}[]" for f in varying)
    values = []
    for f in fields:
        typed = f"%s::{f.db_type(connection)}"
        own = f"r.{f.column}" if f.attname in SUBMITTED_PER_JOB else typed
        if f.attname in RELEASED:  # `then`'s value where idle.yes
            own = f"CASE WHEN idle.yes THEN {RELEASED_AS.get(f.attname, typed)} ELSE {own} END"
        values.append(own)
    unfinished, held = (", ".join(f"'{s}'" for s in group) for group in (UNFINISHED, HELD))
    return (
        f"WITH r AS (SELECT * FROM unnest({rows}) WITH ORDINALITY AS r({', '.join(f.column for f in varying)}, "
        f"place)), pending AS (SELECT count(*) AS n FROM {JOBS} WHERE owner_id = %s AND status IN ({unfinished})), "
        f"idle AS (SELECT CASE WHEN %s AND NOT EXISTS (SELECT 1 FROM {JOBS} WHERE status = '{Status.WAITING}') "
        f"AND NOT EXISTS (SELECT 1 FROM {JOBS} WHERE status IN ({held}) AND (queue = %s OR gpus > 1)) "
        f"THEN pg_try_advisory_xact_lock(%s) ELSE false END AS yes), "
        f"j AS (INSERT INTO {JOBS} ({', '.join(f.column for f in fields)}) SELECT {', '.join(values)} "
        f"FROM r, pending, idle WHERE pending.n + %s <= %s ORDER BY r.place RETURNING id, status), "
        f"event AS (INSERT INTO {EVENTS} (job_id, at, status, message) SELECT j.id, %s, e.status, e.message "
        f"FROM j, (VALUES (0, '{Status.WAITING}', 'submitted'), (1, '{Status.QUEUED}', %s::text)) "
        f"AS e(o, status, message) WHERE e.o = 0 OR j.status = '{Status.QUEUED}' ORDER BY j.id, e.o) "
        # the sequence numbers the rows in the order they are inserted
        f"SELECT j.id, j.status, pending.n FROM pending LEFT JOIN j ON true ORDER BY j.id"
    )


def _arrays(jobs: list[Job]) -> list[list]:
    """Per column that varies, its values for `jobs`."""
    return [[f.get_db_prep_save(getattr(job, f.attname), connection) for job in jobs] for f in _fields()[1]]


def _values(job: Job, then: dict) -> list:
    """The parameters of the columns that are one value for the batch (`job`'s), in the statement's
    order: a RELEASED column's `then` value first, where it has one."""
    params = []
    for f in _fields()[0]:
        if f.attname in RELEASED and f.attname not in RELEASED_AS:
            params.append(f.get_db_prep_save(then[f.attname], connection))
        if f.attname not in SUBMITTED_PER_JOB:
            params.append(f.get_db_prep_save(getattr(job, f.attname), connection))
    return params
