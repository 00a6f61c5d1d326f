"""Fixtures for the shared limits: a key prefix of the test's own on the machine's Redis, and a
throwaway PostgreSQL database."""

from __future__ import annotations

import pytest

from tests.postgres import postgres_url
from tests.redis_server import REDIS_URL, redis_prefix

__all__ = ["REDIS_URL", "postgres_url", "redis_prefix"]


@pytest.fixture
def limits_prefix(redis_prefix: str) -> str:
    """A Redis key prefix for this test's limits alone."""
    return f"{redis_prefix}limits:"
