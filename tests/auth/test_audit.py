"""The audit log on real SQLite and PostgreSQL: append, query, and the database refusing changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from strato.auth import KeySpec, KeyStore
from strato.auth.audit import AuditEvent, AuditLog, AuditWriter
from tests.postgres import postgres_url

__all__ = ["postgres_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'strato.db'}"
    found: str = request.getfixturevalue("postgres_url")
    return found


@pytest.fixture
def log(url: str) -> Iterator[AuditLog]:
    audit = AuditLog.open(url)
    yield audit
    audit.close()


def test_query_is_newest_first_and_filters(log: AuditLog) -> None:
    log.append(
        [
            AuditEvent("key.create", "cli", "key-a", at=100.0, detail={"name": "a"}),
            AuditEvent("key.revoke", "master", "key-a", at=200.0),
            AuditEvent("guard.block", "key-b", "echo", trace_id="t1", at=300.0),
        ]
    )
    assert [e.kind for e in log.query()] == ["guard.block", "key.revoke", "key.create"]
    assert [e.kind for e in log.query(since=150.0)] == ["guard.block", "key.revoke"]
    assert [e.subject for e in log.query(kind="key.revoke")] == ["key-a"]
    assert [e.kind for e in log.query(actor="cli")] == ["key.create"]
    assert [e.kind for e in log.query(limit=1)] == ["guard.block"]
    created = log.query(kind="key.create")[0]
    assert created.detail == {"name": "a"} and created.actor == "cli" and created.at == 100.0
    assert log.query(kind="guard.block")[0].trace_id == "t1"


def test_key_changes_are_audited_with_their_actor_and_never_the_secret(url: str, log: AuditLog) -> None:
    keys = KeyStore.open(url)
    try:
        key, secret = keys.create(KeySpec(name="ci", models=["echo"]), actor="cli")
        rotated = keys.rotate(key.id, actor="master")
        assert rotated is not None
        assert keys.revoke(key.id, actor="cli") is not None
        assert keys.revoke(key.id, actor="cli") is None  # nothing changed, nothing audited
    finally:
        keys.close()
    entries = log.query()
    assert [(e.kind, e.actor, e.subject) for e in entries] == [
        ("key.revoke", "cli", key.id),
        ("key.rotate", "master", key.id),
        ("key.create", "cli", key.id),
    ]
    assert entries[-1].detail == {"name": "ci", "models": ["echo"], "team": None}
    assert secret not in repr(entries) and rotated[1] not in repr(entries)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit SET detail = NULL WHERE kind = 'auth.refused'", "DELETE FROM audit"]
)
def test_the_database_refuses_to_change_the_log(log: AuditLog, statement: str) -> None:
    log.append([AuditEvent("auth.refused", None, "echo", detail={"status": 401, "code": "invalid_api_key"})])
    with pytest.raises(DBAPIError, match="audit log is append-only"), log.engine.begin() as conn:
        conn.execute(text(statement))
    assert [e.kind for e in log.query()] == ["auth.refused"]


def test_postgres_refuses_truncate(log: AuditLog) -> None:
    if log.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(DBAPIError, match="audit log is append-only"), log.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit"))


def test_the_writer_stores_what_was_submitted_when_closed(url: str) -> None:
    written = AuditLog.open(url)
    writer = AuditWriter(written, flush_interval=5.0)
    for n in range(3):
        writer.submit(AuditEvent("guard.redact", f"key-{n}", "echo", trace_id=f"t{n}"))
    writer.close()  # drains the queue before the next flush would have
    written.close()
    log = AuditLog.open(url)
    try:
        assert sorted(e.trace_id or "" for e in log.query()) == ["t0", "t1", "t2"]
    finally:
        log.close()
