"""The composition root: one engine per database URL, migrated once, shared by every store; closed
once by whoever opened it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from strato.auth import KeySpec
from strato.runtime import build_runtime
from strato.store import database
from strato.store.database import open_database
from tests.support.inprocess import settings_for
from tests.support.upstream import Upstream

MASTER = "sk-master-runtime"


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URL of every migration pass (`migrate` called on a connection)."""
    passes: list[str] = []
    real = database.migrate

    def counted(conn: Connection) -> list[str]:
        passes.append(str(conn.engine.url))
        return real(conn)

    monkeypatch.setattr(database, "migrate", counted)
    return passes


async def test_every_store_shares_one_engine_migrated_once(
    tmp_path: Path, upstream: Upstream, migrations: list[str]
) -> None:
    settings = settings_for(tmp_path, [upstream.model("echo")], server={"master_key": MASTER})
    runtime = build_runtime(settings)
    try:
        engine = runtime.database
        assert runtime.keys is not None and runtime.auth.journal is not None
        stores: list[Any] = [
            runtime.traces,
            runtime.keys,
            runtime.audit.log,
            runtime.auth.journal,
            runtime.datasets,
            runtime.runs,
            runtime.gateway.recorder.store,
        ]
        assert all(store.engine is engine for store in stores)
        assert migrations == [str(engine.url)]
    finally:
        await runtime.aclose()


async def test_a_lent_database_is_used_and_left_open(
    tmp_path: Path, upstream: Upstream, migrations: list[str]
) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'strato.db'}")
    try:
        settings = settings_for(tmp_path, [upstream.model("echo")], server={"master_key": MASTER})
        runtime = build_runtime(settings, engine)
        assert runtime.traces.engine is engine and not runtime.owned
        await runtime.aclose()
        assert len(migrations) == 1  # the lender's pass; the runtime did not migrate again
        keys = runtime.keys
        assert keys is not None
        keys.create(KeySpec(name="after"))  # the lender's engine still works
        assert [k.name for k in keys.list()] == ["after"]
    finally:
        engine.dispose()


async def test_a_bad_database_url_is_one_clear_error(tmp_path: Path, upstream: Upstream) -> None:
    settings = settings_for(tmp_path, [upstream.model("echo")], store={"database_url": "mysql://x/y"})
    with pytest.raises(Exception, match="strato stores data in SQLite or PostgreSQL"):
        build_runtime(settings)
