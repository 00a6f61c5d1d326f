"""The shared cache backend: Redis, so that every gateway process serves what any of them stored.

An answer is a string key with Redis's own expiry. A semantic bucket is also a stream of its
questions and vectors, which each process mirrors in memory and reads on from the last id it saw
(stream ids grow with time, so `XADD ... MINID` trims expired questions from the front). Plain
Redis 6.2 or later is enough: no search module.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis.asyncio as aioredis

from strato.cache import Candidate, Entry, Vector
from strato.cache.codec import decode_answer, encode_answer, vector_bytes, vector_from_bytes
from strato.cache.index import READ_BATCH, BucketIndex, BucketIndexes, Row, catch_up
from strato.cache.keys import scope_id

MAX_CONNECTIONS = 64


class RedisCache:
    def __init__(self, url: str, prefix: str = "strato:cache:") -> None:
        self.prefix = prefix
        # A slow or busy cache must not hold up requests: at most a second for a connection (beyond
        # MAX_CONNECTIONS lookups wait for one) and for each reply.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=1.0, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self._redis: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strato-cache")
        self._indexes = BucketIndexes()

    async def get(self, scope: str, key: str) -> Entry | None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._answer_key(scope, key))
            pipe.pttl(self._answer_key(scope, key))
            raw, ttl_ms = await pipe.execute()
        if raw is None:
            return None
        return Entry(scope, key, decode_answer(raw), time.time() + max(ttl_ms, 0) / 1000)

    async def put(self, entry: Entry) -> None:
        ttl_ms = int((entry.expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._answer_key(entry.scope, entry.key), encode_answer(entry.answer), px=ttl_ms)
            if entry.bucket is not None and entry.vector is not None:
                stream = self._bucket_key(entry.scope, entry.bucket)
                fields: dict[Any, Any] = {
                    "k": entry.key,
                    "q": entry.question or "",
                    "v": vector_bytes(entry.vector),
                    "e": repr(entry.expires_at),
                }
                oldest = int(time.time() * 1000) - ttl_ms  # questions older than this have expired
                pipe.xadd(stream, fields, minid=str(oldest), approximate=True)
                pipe.pexpire(stream, ttl_ms)
            await pipe.execute()

    async def nearest(
        self, scope: str, bucket: str, vector: Vector, min_score: float, limit: int
    ) -> list[Candidate]:
        index = self._indexes.get(scope_id(scope), bucket)
        await catch_up(index, lambda: self._read_batch(index, self._bucket_key(scope, bucket)))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, index.search, vector, min_score, limit, time.time())

    async def _read_batch(self, index: BucketIndex, stream: str) -> bool:
        start = "({}-{}".format(*index.cursor) if isinstance(index.cursor, tuple) else "-"
        batch: list[Any] = await self._redis.xrange(stream, min=start, max="+", count=READ_BATCH) or []
        await asyncio.get_running_loop().run_in_executor(self._executor, _add_new, index, batch)
        return len(batch) == READ_BATCH

    async def aclose(self) -> None:
        self._indexes.stop_loading()
        await self._redis.aclose()
        self._executor.shutdown(wait=True)

    def _answer_key(self, scope: str, key: str) -> str:
        return f"{self.prefix}{scope_id(scope)}:a:{key}"

    def _bucket_key(self, scope: str, bucket: str) -> str:
        return f"{self.prefix}{scope_id(scope)}:b:{bucket}"


def _add_new(index: BucketIndex, batch: list[Any]) -> None:
    """Add the stream entries past the index's cursor (two lookups may have read the same ones)."""
    rows = []
    for raw_id, fields in batch:
        ms, seq = raw_id.decode().split("-")
        entry_id = (int(ms), int(seq))
        if isinstance(index.cursor, tuple) and entry_id <= index.cursor:
            continue
        index.cursor = entry_id
        rows.append(
            Row(
                key=fields[b"k"].decode(),
                question=fields[b"q"].decode(),
                vector=vector_from_bytes(fields[b"v"]),
                expires_at=float(fields[b"e"]),
            )
        )
    index.add(rows)
