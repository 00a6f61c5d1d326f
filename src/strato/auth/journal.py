"""The spend journal: the durable record of what keys with budgets have spent.

Budgets are checked against counters (in this process, Redis or PostgreSQL) that are fast but can be
lost: a process dies, Redis restarts. Those counters start each period from this journal, so it
must hold every request's spend the moment the request has cost anything:

- when a budgeted request is admitted, its hold (worst-case cost) is handed over, and committed
  while the request runs;
- before its answer is released, its settlement (what it really cost) is committed here, and the
  answer waits for the hold's commit too.

A crash therefore never forgets spend that was acknowledged to a client, and a request that was
running when its gateway died keeps its hold until `limits.hold_seconds` pass (as the shared
counters do), then counts nothing.

Rows go through a group-committing writer thread (`BatchWriter.submit_durable`): every request
waiting meanwhile shares one transaction, so the wait is about one commit however busy the gateway
is. The table (migration 0015) is append-only: a `hold` row and a `settle` row per request.

On SQLite (WAL) a commit is in the database file's log once it returns, which a crash of the gateway
cannot undo. On PostgreSQL the journal commits with `synchronous_commit = off` by default, as the
shared limits do: a crash of the gateway loses nothing, a crash of the database server may lose its
last fraction of a second (`limits.journal_fsync: true` waits for the disk: about 4-8 ms a commit
on this machine's PostgreSQL instead of 0.2 ms).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select

from strato.observe.recorder import BatchWriter
from strato.store.tables import spend_ledger

log = logging.getLogger(__name__)

COMMIT_TIMEOUT = 5.0  # seconds a request waits for its journal entry before giving up on it
KEEP_SECONDS = 62 * 86400  # entries older than this (two months: every budget period) are pruned


@dataclass(frozen=True, slots=True)
class Entry:
    ticket: str
    kind: str
    key_id: str
    at: float
    amount: float
    expires_at: float | None = None
    process: str | None = None

    def row(self) -> tuple[str, str, str, float, float, float | None, str | None]:
        return (self.ticket, self.kind, self.key_id, self.at, self.amount, self.expires_at, self.process)


class SpendJournal:
    """Holds and settlements of budgeted requests, committed in groups; `spent` reads them back."""

    def __init__(self, engine: Engine, hold_seconds: float = 900.0, fsync: bool = False) -> None:
        """`fsync`: on PostgreSQL, wait for each commit to reach the disk (`limits.journal_fsync`)."""
        self.engine = engine
        self.hold_seconds = hold_seconds
        self.fsync = fsync
        self.process = uuid.uuid4().hex[:16]  # this gateway's holds are in its ledger's memory
        self._connection: Any = None  # the writer thread's own, opened on its first write
        self._writer: BatchWriter[Entry] = BatchWriter(self._write, what="spend entries", flush_interval=1.0)

    def hold(self, key_id: str, ticket: str, amount: float, at: float) -> Future[None]:
        """Hand over a hold of `amount` USD; the future is done once it is committed."""
        entry = Entry(ticket, "hold", key_id, at, amount, at + self.hold_seconds, self.process)
        return self._writer.submit_durable(entry)

    def settle(self, key_id: str, ticket: str, cost: float, at: float) -> Future[None]:
        """Hand over a settlement; the future is done once it is committed."""
        return self._writer.submit_durable(Entry(ticket, "settle", key_id, at, cost))

    def spent(self, key_id: str, since: float) -> float:
        """USD the key's settled requests cost since `since`."""
        stmt = select(func.coalesce(func.sum(spend_ledger.c.amount), 0.0)).where(
            spend_ledger.c.key_id == key_id, spend_ledger.c.kind == "settle", spend_ledger.c.at >= since
        )
        with self.engine.connect() as conn:
            return float(conn.execute(stmt).scalar_one())

    def open_holds(self, key_id: str, since: float, now: float) -> list[tuple[float, float]]:
        """(USD, lapses at) of the key's holds that other gateway processes made since `since` and
        never settled, and that have not lapsed: requests they were running when they died. This
        process's own running requests are in its ledger's memory."""
        ledger, settles = spend_ledger, spend_ledger.alias("settles")
        settled = select(settles.c.ticket).where(
            and_(settles.c.ticket == ledger.c.ticket, settles.c.kind == "settle")
        )
        stmt = select(ledger.c.amount, ledger.c.expires_at).where(
            ledger.c.key_id == key_id,
            ledger.c.kind == "hold",
            ledger.c.at >= since,
            ledger.c.expires_at > now,
            ledger.c.process != self.process,
            ~settled.exists(),
        )
        with self.engine.connect() as conn:
            return [(float(amount), float(lapses)) for amount, lapses in conn.execute(stmt)]

    def prune(self, now: float) -> int:
        """Drop entries older than every budget period; returns how many went."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(spend_ledger).where(spend_ledger.c.at < now - KEEP_SECONDS))
        return int(gone.rowcount)

    def flush(self, timeout: float = 10.0) -> bool:
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Commit what is still queued, then stop the writer (the engine is the key store's)."""
        self._writer.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> Any:
        connection = self.engine.raw_connection()
        if self.engine.dialect.name == "postgresql" and not self.fsync:
            cursor = connection.cursor()
            cursor.execute("SET synchronous_commit = off")
            connection.commit()
        return connection

    def _write(self, entries: Sequence[Entry]) -> None:
        """One multi-row INSERT and its commit, on a connection the writer thread keeps: the wait a
        request sees is the database's commit, not a pool checkout and a BEGIN round trip."""
        columns = ("ticket", "kind", "key_id", "at", "amount", "expires_at", "process")
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        values = ", ".join(["(" + ", ".join([mark] * len(columns)) + ")"] * len(entries))
        sql = f"INSERT INTO spend_ledger ({', '.join(columns)}) VALUES {values}"
        params = [value for entry in entries for value in entry.row()]
        if self._connection is None:
            self._connection = self._connect()
        try:
            cursor = self._connection.cursor()
            cursor.execute(sql, params)
            self._connection.commit()
        except Exception:
            self._connection.invalidate()  # a new connection next time, whatever went wrong
            self._connection = None
            raise
