"""The default cache backend: one SQLite file (WAL), worked on by one thread off the event loop.

Several gateway processes on one machine may share the file; each mirrors the vectors of the
buckets it searches and reads only rows added since its last search (rows have increasing ids).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from strato.cache import Candidate, Entry, Vector
from strato.cache.codec import decode_answer, encode_answer, vector_bytes, vector_from_bytes
from strato.cache.index import READ_BATCH, BucketIndex, BucketIndexes, Row, catch_up
from strato.cache.keys import scope_id

T = TypeVar("T")
SCHEMA_VERSION = 1
SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS answers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: readers resume after the last id seen
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        bucket TEXT,
        question TEXT,
        vector BLOB,
        answer TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS answers_key ON answers (scope, key)",
    "CREATE INDEX IF NOT EXISTS answers_bucket ON answers (scope, bucket, id) WHERE bucket IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS answers_expiry ON answers (expires_at)",
]
PURGE_EVERY = 60.0  # seconds between deletions of expired rows


class SQLiteCache:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        """`clock`: the time in seconds that answers expire by (a test's own, to skip ahead)."""
        self.path = path
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strato-cache")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._indexes = BucketIndexes()
        self._next_purge = 0.0

    async def get(self, scope: str, key: str) -> Entry | None:
        return await self._run(self._get, scope, key)

    async def put(self, entry: Entry) -> None:
        await self._run(self._put, entry)

    async def nearest(
        self, scope: str, bucket: str, vector: Vector, min_score: float, limit: int
    ) -> list[Candidate]:
        sid = scope_id(scope)
        index = self._indexes.get(sid, bucket)
        await catch_up(index, lambda: self._run(self._read_batch, index, sid, bucket))
        return await self._run(index.search, vector, min_score, limit, self._clock())

    async def aclose(self) -> None:
        self._indexes.stop_loading()
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def _run(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    # Everything below runs on the cache's one worker thread.

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the answer cache is closed")
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._conn = conn
        return self._conn

    def _get(self, scope: str, key: str) -> Entry | None:
        row = (
            self._db()
            .execute(
                "SELECT answer, expires_at, bucket, question FROM answers "
                "WHERE scope = ? AND key = ? AND expires_at > ?",
                (scope_id(scope), key, self._clock()),
            )
            .fetchone()
        )
        if row is None:
            return None
        answer, expires_at, bucket, question = row
        return Entry(scope, key, decode_answer(answer), expires_at, bucket, question)

    def _put(self, entry: Entry) -> None:
        db, now = self._db(), self._clock()
        vector = vector_bytes(entry.vector) if entry.vector is not None else None
        db.execute(
            "INSERT OR REPLACE INTO answers "
            "(scope, key, bucket, question, vector, answer, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                scope_id(entry.scope),
                entry.key,
                entry.bucket,
                entry.question,
                vector,
                encode_answer(entry.answer),
                now,
                entry.expires_at,
            ),
        )
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            db.execute("DELETE FROM answers WHERE expires_at <= ?", (now,))

    def _read_batch(self, index: BucketIndex, sid: str, bucket: str) -> bool:
        rows = (
            self._db()
            .execute(
                "SELECT id, key, question, vector, expires_at FROM answers "
                "WHERE scope = ? AND bucket = ? AND id > ? ORDER BY id LIMIT ?",
                (sid, bucket, index.cursor or 0, READ_BATCH),
            )
            .fetchall()
        )
        index.add(
            Row(key, question, vector_from_bytes(raw), expires) for _, key, question, raw, expires in rows
        )
        if rows:
            index.cursor = rows[-1][0]
        return len(rows) == READ_BATCH

    def _close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
