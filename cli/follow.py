"""Following jobs until they end: state changes said as they happen, and what to do after Ctrl-C."""

from __future__ import annotations

from cli import output
from cli.client import Client, CliError

FINAL = {"succeeded", "failed", "cancelled"}
WAIT_S = 20  # each long poll, under the client's 30 s timeout


def wait(client: Client, jobs: list[dict], quiet: bool, submitted: bool = False) -> list[dict]:
    """Wait until every job is final. One job: each change of state is said on stderr; several: a
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
    job = job | client.call("GET", f"/api/jobs/{job['id']}/")
    while True:
        now = (job["status"], job.get("queue") or "")
        if now != said and not quiet:
            output.state_line(job)
            said = now
        if job["status"] in FINAL:
            return job
        job = job | _changed(client, job)


def _follow_many(client: Client, jobs: list[dict], quiet: bool) -> list[dict]:
    done: list[dict] = []
    with output.progress(len(jobs), quiet) as advance:
        for job in jobs:  # in submission order: once one ends, the jobs before it mostly have too
            while job.get("status") not in FINAL:
                job = job | _changed(client, job)
            done.append(job)
            advance(job)
    return done


def _changed(client: Client, job: dict) -> dict:
    """The job once its status is no longer the one seen: the server's long poll, not a polling loop."""
    seen = job.get("status", "")  # none yet: wait until it is final
    return client.call("GET", f"/api/jobs/{job['id']}/wait/", params={"status": seen, "timeout": WAIT_S})
