"""The schema lives in one place: `strato.store.tables` describes every table the migrations
create that strato queries through SQLAlchemy, and this test holds the two together on SQLite
and PostgreSQL: the same tables, columns, nullability and primary keys."""

from __future__ import annotations

from sqlalchemy import inspect

from strato.store import tables
from strato.store.database import open_database
from tests.postgres import database_url, postgres_url

__all__ = ["database_url", "postgres_url"]  # the fixtures this module runs with

# Tables the migrations create that only hand-written SQL reads: the shared limits' counters,
# which PostgreSQL's own functions keep (strato.auth.postgres), and the migration log itself.
RAW_SQL_ONLY = {"key_window", "key_usage", "key_holds", "strato_migrations"}


def test_the_tables_are_the_migrated_schema(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        live = inspect(engine)
        migrated = set(live.get_table_names())
        described = set(tables.metadata.tables)
        assert described == migrated - RAW_SQL_ONLY
        for name, table in tables.metadata.tables.items():
            columns = {c["name"]: c for c in live.get_columns(name)}
            assert set(columns) == {c.name for c in table.columns}, name
            for column in table.columns:
                if not column.primary_key:  # (SQLite lets a text primary key hold NULL; PostgreSQL not)
                    assert columns[column.name]["nullable"] == column.nullable, f"{name}.{column.name}"
            primary = live.get_pk_constraint(name)["constrained_columns"]
            assert sorted(primary) == sorted(c.name for c in table.primary_key.columns), name
    finally:
        engine.dispose()
