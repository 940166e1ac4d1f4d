"""The one Redis client of a process (telemetry, leases, fair-share usage, rate limits)."""

from functools import lru_cache
from typing import Any

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )


def as_text(value: Any) -> str:
    """Redis and NVML answer bytes or str depending on versions and options: always str."""
    return value.decode() if isinstance(value, bytes) else str(value)
