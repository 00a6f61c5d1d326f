"""Cache backends to run one suite against: a SQLite file, and the machine's real Redis (skipped,
with the reason, when no Redis answers at 127.0.0.1:6379)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strato.cache import Cache
from strato.cache.redis import RedisCache
from strato.cache.sqlite import SQLiteCache
from tests.redis_server import REDIS_URL, redis_prefix

__all__ = ["REDIS_URL", "redis_prefix"]


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cache]:
    """An empty cache backend: a SQLite file, or a prefix of its own on a real Redis."""
    cache: Cache
    if request.param == "sqlite":
        cache = SQLiteCache(tmp_path / "cache.db")
    else:
        cache = RedisCache(REDIS_URL, request.getfixturevalue("redis_prefix"))
    yield cache
    await cache.aclose()


@pytest.fixture
def second_backend(request: pytest.FixtureRequest, backend: Cache, tmp_path: Path) -> Cache:
    """Another process's view of the same storage as `backend` (its own in-memory indexes)."""
    if isinstance(backend, SQLiteCache):
        return SQLiteCache(backend.path)
    assert isinstance(backend, RedisCache)
    return RedisCache(REDIS_URL, backend.prefix)
