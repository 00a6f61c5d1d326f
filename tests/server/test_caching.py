"""Request headers -> what the answer cache may do (HTTP's request directives, and strato's own)."""

from __future__ import annotations

import pytest

from strato.cache import CachePolicy
from strato.server.caching import cache_policy


@pytest.mark.parametrize(
    ("headers", "policy"),
    [
        ([], CachePolicy(read=True, write=True)),
        ([(b"cache-control", b"no-cache")], CachePolicy(read=False, write=True)),
        ([(b"cache-control", b"No-Store")], CachePolicy(read=True, write=False)),
        ([(b"cache-control", b"max-age=0, no-store, no-cache")], CachePolicy(read=False, write=False)),
        ([(b"cache-control", b"max-age=60")], CachePolicy(read=True, write=True)),
        ([(b"x-strato-cache", b"off")], CachePolicy(read=False, write=False)),
        ([(b"x-strato-cache", b"on")], CachePolicy(read=True, write=True)),
    ],
)
def test_headers_set_the_cache_policy(headers: list[tuple[bytes, bytes]], policy: CachePolicy) -> None:
    assert cache_policy(headers) == policy
