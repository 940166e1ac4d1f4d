"""A job's log from the API, a page at a time by line number: print it, its tail, or follow it live."""

from __future__ import annotations

import sys
import time

from cli.client import Client

POLL_SECONDS = 0.5


def show(client: Client, job_id: int, tail: int = 0, follow_it: bool = False, as_json: bool = False) -> int:
    """Print the log (or its last `tail` lines); with `follow_it`, keep printing until the job ends."""
    query = {"tail": tail} if tail else {"after": 0}
    page = client.call("GET", f"/api/jobs/{job_id}/log/", params=query)
    _print(page["lines"], as_json)
    after = page["lines"][-1]["n"] if page["lines"] else (page["last"] if tail else 0)
    if follow_it:
        after = _follow_from(client, job_id, after, page, as_json)
    elif not tail:
        while page["lines"] and page["lines"][-1]["n"] < page["last"]:  # the rest, a page at a time
            page = client.call("GET", f"/api/jobs/{job_id}/log/", params={"after": page["lines"][-1]["n"]})
            _print(page["lines"], as_json)
    return 0


def follow(client: Client, job_id: int, quiet: bool = False) -> dict:
    """Print the job's log as it comes until the job ends; the final job."""
    _follow_from(client, job_id, 0, None, quiet)
    return client.call("GET", f"/api/jobs/{job_id}/")


def _follow_from(client: Client, job_id: int, after: int, page: dict | None, quiet: bool) -> int:
    while True:
        if page is None or (not page["lines"] and not page["final"]):
            time.sleep(POLL_SECONDS if page is not None else 0)
        page = client.call("GET", f"/api/jobs/{job_id}/log/", params={"after": after})
        if not quiet:
            _print(page["lines"], False)
        if page["lines"]:
            after = page["lines"][-1]["n"]
        elif page["final"]:  # read after the job ended and found nothing newer: that was the end
            return after


def _print(lines: list[dict], as_json: bool) -> None:
    import json

    for line in lines:
        text = json.dumps(line) if as_json else line["text"]
        print(text, file=sys.stderr if line["stream"] == "stderr" and not as_json else sys.stdout, flush=True)
