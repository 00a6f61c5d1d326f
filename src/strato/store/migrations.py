"""Tiny named migrations: each runs once, in order, recorded in `strato_migrations`.

A migration is plain SQL that both SQLite and PostgreSQL accept, or, where they differ (triggers),
one statement per dialect. Never edit one that has shipped; add a new one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import Connection, text

# A statement both backends accept, or one per dialect name ("sqlite", "postgresql").
Statement = str | Mapping[str, str]

APPEND_ONLY = "audit log is append-only"

MIGRATIONS: list[tuple[str, list[Statement]]] = [
    (
        "0001_traces",
        [
            """
            CREATE TABLE traces (
                id VARCHAR(64) PRIMARY KEY,
                started_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION,
                endpoint VARCHAR(32) NOT NULL,
                requested_model VARCHAR(256),
                api_key VARCHAR(128),
                user_id VARCHAR(256),
                deployment VARCHAR(256),
                provider VARCHAR(64),
                stream BOOLEAN NOT NULL DEFAULT FALSE,
                request TEXT NOT NULL,
                completion TEXT,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0,
                ttft_ms DOUBLE PRECISION,
                latency_ms DOUBLE PRECISION,
                status INTEGER NOT NULL,
                error TEXT,
                error_code VARCHAR(64),
                finish_reason VARCHAR(16)
            )
            """,
            "CREATE INDEX ix_traces_started_at ON traces (started_at)",
            "CREATE INDEX ix_traces_model_started ON traces (requested_model, started_at)",
        ],
    ),
    (
        "0002_traces_cached_tokens",
        ["ALTER TABLE traces ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0"],
    ),
    (
        "0003_traces_attempts",
        ["ALTER TABLE traces ADD COLUMN attempts TEXT"],
    ),
    (
        "0004_traces_route_cache_cost",
        [
            "ALTER TABLE traces ADD COLUMN route TEXT",
            "ALTER TABLE traces ADD COLUMN cache_hit VARCHAR(16)",
            "ALTER TABLE traces ADD COLUMN cost DOUBLE PRECISION",
        ],
    ),
    (
        "0005_scores",
        [
            """
            CREATE TABLE scores (
                id VARCHAR(64) PRIMARY KEY,
                trace_id VARCHAR(64) NOT NULL,
                name VARCHAR(128) NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                source VARCHAR(64) NOT NULL,
                comment TEXT,
                created_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX ix_scores_trace ON scores (trace_id)",
            "CREATE INDEX ix_scores_name ON scores (name, created_at)",
        ],
    ),
    (
        "0006_api_keys",
        [
            """
            CREATE TABLE api_keys (
                id VARCHAR(64) PRIMARY KEY,
                name VARCHAR(256) NOT NULL,
                secret_hash VARCHAR(64) NOT NULL UNIQUE,
                models TEXT,
                budget_daily DOUBLE PRECISION,
                budget_monthly DOUBLE PRECISION,
                rpm INTEGER,
                tpm INTEGER,
                expires_at DOUBLE PRECISION,
                team VARCHAR(256),
                metadata TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                rotated_at DOUBLE PRECISION,
                revoked_at DOUBLE PRECISION
            )
            """,
            # A key's spend this day or month is summed from its traces.
            "CREATE INDEX ix_traces_key_started ON traces (api_key, started_at)",
        ],
    ),
    (
        "0007_audit",
        [
            """
            CREATE TABLE audit (
                id VARCHAR(64) PRIMARY KEY,
                at DOUBLE PRECISION NOT NULL,
                kind VARCHAR(64) NOT NULL,
                actor VARCHAR(128),
                subject VARCHAR(256),
                trace_id VARCHAR(64),
                detail TEXT
            )
            """,
            "CREATE INDEX ix_audit_at ON audit (at)",
            "CREATE INDEX ix_audit_kind_at ON audit (kind, at)",
            # The database itself refuses to change or remove an entry, whatever the code does.
            {
                "sqlite": "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
                "postgresql": "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$",
            },
            {
                "sqlite": "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
                "postgresql": "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
            },
            {
                # SQLite has no TRUNCATE; on PostgreSQL it would bypass the row trigger.
                "postgresql": "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
            },
        ],
    ),
]


def migrate(conn: Connection) -> list[str]:
    """Apply pending migrations inside the caller's transaction; returns the names applied."""
    if conn.dialect.name == "postgresql":
        # Two gateways starting at once must not both run the same migration.
        conn.execute(text("SELECT pg_advisory_xact_lock(7355608)"))
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS strato_migrations ("
            "name VARCHAR(128) PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
    )
    done = {row[0] for row in conn.execute(text("SELECT name FROM strato_migrations"))}
    applied = []
    for name, statements in MIGRATIONS:
        if name in done:
            continue
        for statement in statements:
            sql = statement if isinstance(statement, str) else statement.get(conn.dialect.name)
            if sql is not None:  # a dialect-specific statement this backend does not need
                conn.execute(text(sql))
        conn.execute(
            text("INSERT INTO strato_migrations (name, applied_at) VALUES (:name, :at)"),
            {"name": name, "at": time.time()},
        )
        applied.append(name)
    return applied
