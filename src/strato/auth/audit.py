"""The audit log: who changed a key, which requests a guard stopped or changed, which callers auth
refused. Append-only twice over: this module offers only `append` and `query`, and the database's
triggers (migration 0007) refuse UPDATE and DELETE on the table.

An entry never holds a secret or a raw PII value: keys appear by id, guard findings by type, span
and score, refusals by error code.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from strato.observe.recorder import BatchWriter
from strato.store.database import open_database
from strato.store.storable import storable, storable_json
from strato.store.tables import audit

KINDS = (
    "key.create",
    "key.revoke",
    "key.rotate",
    "guard.block",
    "guard.redact",
    "guard.flag",
    "auth.refused",
)
CLI_ACTOR = "cli"  # the actor of changes made with `strato keys`


@dataclass(frozen=True, slots=True)
class AuditEvent:
    kind: str
    actor: str | None = None  # a key id, "master", "cli", or None (an anonymous caller)
    subject: str | None = None  # what it is about: a key id, a model
    trace_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def append_events(conn: Connection, events: Sequence[AuditEvent]) -> None:
    """Insert entries on the caller's connection, so a change and its entry commit together."""
    if events:
        rows = [_row(e) for e in events]
        conn.execute(audit.insert(), rows)


def _row(event: AuditEvent) -> dict[str, Any]:
    """An entry as a row, its short fields cut to their columns' length (a model name or an actor
    comes from a client and can be any length; PostgreSQL would refuse the whole batch)."""
    row = {**event.as_dict(), "detail": storable_json(event.detail) if event.detail else None}
    for name, length in (("kind", 64), ("actor", 128), ("subject", 256), ("trace_id", 64)):
        if isinstance(row[name], str):
            row[name] = (storable(row[name]) or "")[:length]
    return row


class AuditLog:
    """The `audit` table, in the same database as the traces and keys. Thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> AuditLog:
        """Connect and apply pending migrations."""
        return cls(open_database(url))

    def append(self, events: Sequence[AuditEvent]) -> None:
        """Store entries in one transaction (all or none)."""
        with self.engine.begin() as conn:
            append_events(conn, events)

    def query(
        self,
        since: float | None = None,
        kind: str | None = None,
        actor: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Entries, newest first."""
        stmt = select(audit).order_by(audit.c.at.desc(), audit.c.id).limit(limit)
        if since is not None:
            stmt = stmt.where(audit.c.at >= since)
        if kind is not None:
            stmt = stmt.where(audit.c.kind == kind)
        if actor is not None:
            stmt = stmt.where(audit.c.actor == actor)
        with self.engine.connect() as conn:
            return [_from_row(row._mapping) for row in conn.execute(stmt)]

    def close(self) -> None:
        self.engine.dispose()


class AuditWriter(BatchWriter[AuditEvent]):
    """Appends the request path's entries off the request path, with the trace writer's mechanism:
    `submit` never blocks, a thread stores what has queued every `flush_interval` seconds, and
    `close` drains the queue (the log's database is its opener's to close)."""

    def __init__(self, log_: AuditLog, *, flush_interval: float = 0.2) -> None:
        super().__init__(log_.append, what="audit entries", flush_interval=flush_interval)
        self.log = log_


def _from_row(row: Any) -> AuditEvent:
    return AuditEvent(
        kind=row["kind"],
        actor=row["actor"],
        subject=row["subject"],
        trace_id=row["trace_id"],
        detail=json.loads(row["detail"]) if row["detail"] else {},
        at=row["at"],
        id=row["id"],
    )
