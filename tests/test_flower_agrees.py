"""What Flower shows agrees with the jobs: the task of a failed job fails, and each task is named
after its job's kind (`gpuq.fft`), so Flower can filter by kind. Read from the workers' own events,
which are what Flower reads."""

import threading

import pytest

from scheduler.dispatch.celery_app import app
from tests import support
from tests.test_e2e import wait_final

pytestmark = [pytest.mark.slow]


class Events:
    """Every Celery event the workers send while the block runs."""

    def __init__(self):
        self.seen: list[dict] = []

    def __enter__(self):
        self.connection = app.connection_for_read()
        self.receiver = app.events.Receiver(self.connection, handlers={"*": self.seen.append})
        self.thread = threading.Thread(target=self.receiver.capture, kwargs={"wakeup": False}, daemon=True)
        self.thread.start()
        # The workers' heartbeats (every 2 s) show the receiver is listening before anything is submitted.
        support.wait_until(lambda: any(e["type"] == "worker-heartbeat" for e in self.seen), 20, "a heartbeat")
        return self

    def __exit__(self, *exc) -> None:
        self.receiver.should_stop = True
        self.thread.join(5)
        self.connection.release()

    def of(self, job_id: int, kind: str) -> list[dict]:
        return [e for e in self.seen if e.get("uuid") == f"job-{job_id}" and e["type"] == kind]


def test_a_failed_jobs_task_fails_and_tasks_carry_their_kind(live_system, live_cast):
    staff = live_system.session(live_cast.token(live_cast.staff))
    with Events() as events:
        bad = staff.post(f"{live_system.url}/api/jobs/", json={"kind": "fault", "params": {"mode": "raise"}}).json()
        good = staff.post(f"{live_system.url}/api/jobs/", json={"kind": "fft", "params": {"n": 256}}).json()
        assert wait_final(staff, live_system.url, bad["id"])["status"] == "failed"
        assert wait_final(staff, live_system.url, good["id"])["status"] == "succeeded"
        support.wait_until(
            lambda: events.of(bad["id"], "task-failed") and events.of(good["id"], "task-succeeded"),
            20,
            "the workers' task events",
        )
    [received] = events.of(bad["id"], "task-received")
    assert received["name"] == "gpuq.fault"
    assert "fault injected" in events.of(bad["id"], "task-failed")[0]["exception"]
    assert events.of(good["id"], "task-received")[0]["name"] == "gpuq.fft"
