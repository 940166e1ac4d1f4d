"""The dispatch's stage trace (scheduler/stages.py, benchmarks/stage_trace.py): off by default, and where on,
each point of a lone job's POST is marked in path order and read back per dispatch."""

import pytest
from django.db import connection

from benchmarks import stage_trace
from scheduler import stages


def test_a_mark_is_one_line_and_nothing_is_written_once_the_trace_is_off(settings, tmp_path):
    settings.STAGE_TRACE = str(tmp_path / "trace.log")
    stages.mark("submit.view")
    settings.STAGE_TRACE = ""
    stages.mark("submit.sent")
    [line] = (tmp_path / "trace.log").read_text().splitlines()
    at, pid, label = line.split()
    assert float(at) > 0 and int(pid) > 0 and label == "submit.view"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a lone job is released by its POST on PostgreSQL")
def test_a_lone_post_marks_its_path_in_order_and_the_table_reads_it(live_cast, fake_gpus, settings, tmp_path):
    fake_gpus([80])
    trace = tmp_path / "trace.log"
    trace.write_text("1.0 1 client.posted\n")  # as the driver marks each dispatch's start
    settings.STAGE_TRACE = str(trace)
    answer = live_cast.api(live_cast.alice).post("/api/jobs/", {"kind": "noop"}, format="json")
    assert answer.status_code == 201 and answer.json()["status"] == "queued"
    [run] = stage_trace.dispatches(str(trace))
    path = ["submit.view", "submit.admitted", "submit.allowance", "submit.stored", "submit.committed", "submit.sent"]
    assert all(len(run[label]) == 1 for label in path)
    assert [run[label][0] for label in path] == sorted(run[label][0] for label in path)
    rows = {row["point"]: row for row in stage_trace.table([run])["POST to the job running"]}
    assert rows["submit.sent"]["step_p50_ms"] >= 0 and rows["worker.claimed"]["n"] == 0  # no worker runs here
