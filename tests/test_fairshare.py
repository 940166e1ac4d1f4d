"""Fair-share usage in Redis: charged in one pipelined command, decayed with its half-life."""

import threading

import pytest
from django.conf import settings

from scheduler.dispatch.connections import redis_client
from scheduler.jobs import fairshare


def charge(user_id: int, seconds: float, now: float) -> None:
    with redis_client().pipeline(transaction=False) as pipe:
        fairshare.charge(pipe, user_id, seconds, now)
        pipe.execute()


def test_it_adds_charges_and_halves_them_each_half_life():
    t0 = 1_700_000_000.0
    charge(7, 100.0, t0)
    charge(7, 20.0, t0)
    assert fairshare.usage(redis_client(), [7], t0)[7] == pytest.approx(120.0)
    assert fairshare.usage(redis_client(), [7], t0 + settings.FAIRSHARE_HALF_LIFE)[7] == pytest.approx(60.0)
    charge(7, 10.0, t0 + settings.FAIRSHARE_HALF_LIFE)  # decays what was there, then adds
    later = t0 + settings.FAIRSHARE_HALF_LIFE
    assert fairshare.usage(redis_client(), [7, 8], later) == pytest.approx({7: 70.0, 8: 0.0})


def test_workers_charging_one_user_at_once_lose_no_update():
    def many():
        for _ in range(200):
            charge(9, 1.0, 1_700_000_000.0)

    threads = [threading.Thread(target=many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fairshare.usage(redis_client(), [9], 1_700_000_000.0)[9] == pytest.approx(800.0)
