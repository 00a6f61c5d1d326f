"""Fixtures for the shared limits: a key prefix of the test's own on the machine's Redis, and a
throwaway PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.postgres import postgres_url

__all__ = ["postgres_url"]

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def limits_prefix() -> Iterator[str]:
    """A Redis key prefix for this test alone, its keys deleted afterwards (skips without Redis)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); the shared limits tests need it")
    prefix = f"strato-test:{uuid.uuid4().hex[:12]}:limits:"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()
