"""Following jobs until they end: state changes said as they happen, and what to do after Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable

from cli import output
from cli.client import Client, CliError

FINAL = {"succeeded", "failed", "cancelled"}
POLL_S = 0.3


def wait(client: Client, jobs: list[dict], quiet: bool, submitted: bool = False) -> list[dict]:
    """Poll until every job is final. One job: each change of state is said on stderr; several: a
    progress bar counting failures. Ctrl-C leaves the jobs running and says how to follow them again."""
    try:
        if submitted and not quiet:  # said inside the try: an interrupt from here on names the ids
            output.note("submitted: " + ", ".join(f"job {j['id']} ({j['status']})" for j in jobs[:10]))
        if len(jobs) == 1:
            return [_follow_one(client, jobs[0], quiet)]
        return _follow_many(client, jobs, quiet)
    except KeyboardInterrupt:
        raise CliError(interrupted([j["id"] for j in jobs]), 130) from None


def interrupted(ids: list[int]) -> str:
    shown = " ".join(map(str, ids)) if len(ids) <= 10 else f"{ids[0]} ... {ids[-1]} ({len(ids)} jobs)"
    job = "job" if len(ids) == 1 else "jobs"
    return (
        f"stopped waiting; {job} {shown} go{'es' if len(ids) == 1 else ''} on. "
        f"Follow again with `submit-job wait {shown if len(ids) <= 10 else ' '.join(map(str, ids))}`, "
        f"stop with `submit-job cancel ID`"
    )


def _follow_one(client: Client, job: dict, quiet: bool) -> dict:
    said = None
    while True:
        job = job | client.call("GET", f"/api/jobs/{job['id']}/")
        now = (job["status"], job.get("queue") or "")
        if now != said and not quiet:
            output.state_line(job)
            said = now
        if job["status"] in FINAL:
            return job
        time.sleep(POLL_S)


def _follow_many(client: Client, jobs: list[dict], quiet: bool) -> list[dict]:
    pending = {j["id"]: j for j in jobs}
    done: dict[int, dict] = {}
    with output.progress(len(jobs), quiet) as advance:
        while pending:
            _poll(client, pending, done, advance)
            if pending:
                time.sleep(POLL_S)
    return [done[j["id"]] for j in jobs]


def _poll(client: Client, pending: dict, done: dict, advance: Callable[[dict], None]) -> None:
    for job_id in list(pending)[:200]:
        job = client.call("GET", f"/api/jobs/{job_id}/")
        if job["status"] in FINAL:
            done[job_id] = pending.pop(job_id) | job
            advance(job)
