"""One database URL -> one SQLAlchemy engine (and pool), migrated once.

Every store strato keeps (traces, keys, audit, data sets, evaluation runs) lives in the same
database and takes an `Engine`; the composition root opens it here once and hands the same engine
to all of them. The `open(url)` class methods of the stores are for one-off use (a CLI verb).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from strato.config import ConfigError
from strato.errors import first_line
from strato.store.migrations import migrate

MIGRATE_ATTEMPTS = 3


def normalise_url(url: str) -> str:
    """Accept the URLs users write (`postgresql://`, `postgres://`) and pick the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_postgres(url: str) -> bool:
    return normalise_url(url).startswith("postgresql")


def open_database(url: str) -> Engine:
    """Connect to SQLite (WAL) or PostgreSQL, create what is missing and apply pending migrations.
    Raises ConfigError, with one line a user can act on, for a URL strato cannot use."""
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        raise ConfigError(f"database URL {url!r} is not a valid URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"database URL {url!r}: strato stores data in SQLite or PostgreSQL")
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed.database)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=4)
    try:
        _migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _migrate(engine: Engine) -> None:
    for attempt in range(MIGRATE_ATTEMPTS):
        try:
            with engine.begin() as conn:
                migrate(conn)
            return
        except DBAPIError as exc:
            if attempt == MIGRATE_ATTEMPTS - 1:
                raise ConfigError(f"cannot prepare the database: {first_line(exc)}") from None
            time.sleep(0.2)  # another process may be migrating the same database; look again


def _sqlite_engine(database: str | None) -> Engine:
    if database and database != ":memory:":
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the data directory for {database}: {exc.strerror}") from None
    engine = create_engine(f"sqlite:///{Path(database).expanduser() if database else ''}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine
