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

# The PostgreSQL functions of migration 0008. Counting commits do not wait for the disk (the auth
# step waits for them): a database crash may lose the last moment's counts, never their atomicity.
# rpm / tpm over the last `p_window` seconds: NULL when the request may run (and is counted), else
# the seconds to wait; as strato.window.MinuteWindow.wait.
KEY_ADMIT = """
CREATE FUNCTION strato_key_admit(p_key TEXT, p_now DOUBLE PRECISION, p_rpm INTEGER, p_tpm INTEGER,
    p_ticket TEXT, p_window DOUBLE PRECISION) RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
DECLARE
    requests BIGINT;
    oldest DOUBLE PRECISION;
    total BIGINT;
    running BIGINT := 0;
    answer RECORD;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(73556081, hashtext(p_key));
    DELETE FROM key_window WHERE key_id = p_key AND at <= p_now - p_window;
    SELECT COUNT(*) FILTER (WHERE tokens = 0), MIN(at) FILTER (WHERE tokens = 0), COALESCE(SUM(tokens), 0)
        INTO requests, oldest, total FROM key_window WHERE key_id = p_key;
    IF p_rpm IS NOT NULL AND requests >= p_rpm THEN
        RETURN oldest + p_window - p_now;
    END IF;
    IF p_tpm IS NOT NULL AND total >= p_tpm THEN
        FOR answer IN SELECT at, tokens FROM key_window WHERE key_id = p_key AND tokens > 0 ORDER BY at LOOP
            running := running + answer.tokens;
            IF running > total - p_tpm THEN
                RETURN answer.at + p_window - p_now;
            END IF;
        END LOOP;
    END IF;
    IF p_rpm IS NOT NULL THEN
        INSERT INTO key_window (ticket, key_id, at, tokens) VALUES (p_ticket, p_key, p_now, 0);
    END IF;
    RETURN NULL;
END $$
"""

# USD settled in each period, a missing period's row seeded from the key's traces since `p_since`.
KEY_USAGE = """
CREATE FUNCTION strato_key_usage(p_key TEXT, p_now DOUBLE PRECISION, p_periods TEXT[],
    p_since DOUBLE PRECISION[], p_expires DOUBLE PRECISION[]) RETURNS DOUBLE PRECISION[]
    LANGUAGE plpgsql AS $$
DECLARE
    totals DOUBLE PRECISION[] := '{}';
    so_far DOUBLE PRECISION;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_periods, 1), 0) LOOP
        SELECT spent INTO so_far FROM key_usage WHERE key_id = p_key AND period = p_periods[i];
        IF NOT FOUND THEN
            DELETE FROM key_usage WHERE key_id = p_key AND expires_at <= p_now;
            SELECT COALESCE(SUM(cost), 0) INTO so_far FROM traces
                WHERE api_key = p_key AND started_at >= p_since[i];
            INSERT INTO key_usage (key_id, period, spent, expires_at)
                VALUES (p_key, p_periods[i], so_far, p_expires[i]);
        END IF;
        totals := totals || so_far;
    END LOOP;
    RETURN totals;
END $$
"""

# Hold `p_amount` against every period's budget: 0 when held, else the (1-based) period refused.
KEY_RESERVE = """
CREATE FUNCTION strato_key_reserve(p_key TEXT, p_now DOUBLE PRECISION, p_amount DOUBLE PRECISION,
    p_ticket TEXT, p_hold_until DOUBLE PRECISION, p_periods TEXT[], p_budgets DOUBLE PRECISION[],
    p_since DOUBLE PRECISION[], p_expires DOUBLE PRECISION[], p_slack DOUBLE PRECISION)
    RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    spent DOUBLE PRECISION[];
    held DOUBLE PRECISION;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(73556082, hashtext(p_key));
    spent := strato_key_usage(p_key, p_now, p_periods, p_since, p_expires);
    DELETE FROM key_holds WHERE key_id = p_key AND expires_at <= p_now;
    SELECT COALESCE(SUM(amount), 0) INTO held FROM key_holds WHERE key_id = p_key;
    FOR i IN 1 .. coalesce(array_length(p_periods, 1), 0) LOOP
        IF spent[i] + held + p_amount > p_budgets[i] + p_slack THEN
            RETURN i;
        END IF;
    END LOOP;
    IF p_amount > 0 THEN
        INSERT INTO key_holds (ticket, key_id, amount, expires_at)
            VALUES (p_ticket, p_key, p_amount, p_hold_until);
    END IF;
    RETURN 0;
END $$
"""

# Drop a hold and add what the request really cost to every period.
KEY_SETTLE = """
CREATE FUNCTION strato_key_settle(p_key TEXT, p_now DOUBLE PRECISION, p_ticket TEXT,
    p_actual DOUBLE PRECISION, p_periods TEXT[], p_since DOUBLE PRECISION[],
    p_expires DOUBLE PRECISION[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(73556082, hashtext(p_key));
    DELETE FROM key_holds WHERE ticket = p_ticket;
    IF p_actual > 0 THEN
        PERFORM strato_key_usage(p_key, p_now, p_periods, p_since, p_expires);
        UPDATE key_usage SET spent = spent + p_actual WHERE key_id = p_key AND period = ANY(p_periods);
    END IF;
END $$
"""


# Give back an admitted request's count; count the tokens of an answer.
KEY_RELEASE = """
CREATE FUNCTION strato_key_release(p_ticket TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    DELETE FROM key_window WHERE ticket = p_ticket;
END $$
"""
KEY_TOKENS = """
CREATE FUNCTION strato_key_tokens(p_key TEXT, p_now DOUBLE PRECISION, p_ticket TEXT, p_tokens INTEGER)
    RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO key_window (ticket, key_id, at, tokens) VALUES (p_ticket, p_key, p_now, p_tokens);
END $$
"""

# Settled spend of the last 32 days as the traces recorded it (every budget period fits in them).
SEED_JOURNAL = """
INSERT INTO spend_ledger (ticket, kind, key_id, at, amount)
SELECT id, 'settle', api_key, started_at, cost FROM traces
WHERE api_key IS NOT NULL AND api_key <> 'master' AND cost > 0 AND started_at >= {now} - 2764800
"""

# strato_key_usage of migration 0008, seeding a period's row from the spend journal's settlements.
KEY_USAGE_FROM_JOURNAL = KEY_USAGE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
    """SELECT COALESCE(SUM(cost), 0) INTO so_far FROM traces
                WHERE api_key = p_key AND started_at >= p_since[i];""",
    """SELECT COALESCE(SUM(amount), 0) INTO so_far FROM spend_ledger
                WHERE key_id = p_key AND kind = 'settle' AND at >= p_since[i];""",
)


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
    (
        # Key limits and budgets shared by gateway replicas without Redis (strato.auth.postgres). Each
        # check-and-take is one function call: one round trip, atomic under a per-key advisory lock.
        "0008_key_limits",
        [
            """
            CREATE TABLE key_window (
                ticket VARCHAR(64) PRIMARY KEY,
                key_id VARCHAR(64) NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                tokens INTEGER NOT NULL
            )
            """,
            "CREATE INDEX ix_key_window_key_at ON key_window (key_id, at)",
            """
            CREATE TABLE key_usage (
                key_id VARCHAR(64) NOT NULL,
                period VARCHAR(16) NOT NULL,
                spent DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (key_id, period)
            )
            """,
            """
            CREATE TABLE key_holds (
                ticket VARCHAR(64) PRIMARY KEY,
                key_id VARCHAR(64) NOT NULL,
                amount DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX ix_key_holds_key ON key_holds (key_id)",
            {"postgresql": KEY_ADMIT},
            {"postgresql": KEY_USAGE},
            {"postgresql": KEY_RESERVE},
            {"postgresql": KEY_SETTLE},
            {"postgresql": KEY_RELEASE},
            {"postgresql": KEY_TOKENS},
        ],
    ),
    (
        # Per-key guard settings: overrides of `guards` (e.g. {"injection": {"action": "block"}}), JSON.
        "0009_key_guards",
        ["ALTER TABLE api_keys ADD COLUMN guards TEXT"],
    ),
    (
        # The sha256 of the admin keys the gateway last ran with, so the admin CLI can check that it
        # was given one of them (it works on the database directly, not through the server).
        "0010_admin_keys",
        [
            """
            CREATE TABLE admin_keys (
                secret_hash VARCHAR(64) PRIMARY KEY,
                recorded_at DOUBLE PRECISION NOT NULL
            )
            """
        ],
    ),
    (
        # A trace's stages as OpenTelemetry-style spans (auth, guards, cache, routing, each provider
        # attempt, output guards): a JSON list on the trace's own row. Rows of a spans table cost the
        # trace writer six times the time per trace, holding the GIL while the gateway serves.
        "0011_trace_spans",
        ["ALTER TABLE traces ADD COLUMN spans TEXT"],
    ),
    (
        # Anomalies found in a response (JSON list of kinds, e.g. ["EMPTY_ANSWER", "REFUSAL"]).
        "0012_trace_anomalies",
        [
            "ALTER TABLE traces ADD COLUMN anomalies TEXT",
            "CREATE INDEX ix_traces_user_started ON traces (user_id, started_at)",
        ],
    ),
    (
        # Feedback (POST /v1/feedback) is a score with a label, a comment and a corrected answer.
        "0013_feedback",
        [
            "ALTER TABLE scores ADD COLUMN label VARCHAR(128)",
            "ALTER TABLE scores ADD COLUMN correction TEXT",
        ],
    ),
    (
        # Evaluation data sets (versioned; a version never changes once written), runs and results.
        "0014_evals",
        [
            """
            CREATE TABLE datasets (
                name VARCHAR(128) NOT NULL,
                version INTEGER NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                source TEXT,
                description TEXT,
                size INTEGER NOT NULL,
                PRIMARY KEY (name, version)
            )
            """,
            """
            CREATE TABLE dataset_items (
                dataset VARCHAR(128) NOT NULL,
                version INTEGER NOT NULL,
                position INTEGER NOT NULL,
                input TEXT NOT NULL,
                expected TEXT,
                metadata TEXT,
                trace_id VARCHAR(64),
                PRIMARY KEY (dataset, version, position)
            )
            """,
            """
            CREATE TABLE eval_runs (
                id VARCHAR(64) PRIMARY KEY,
                dataset VARCHAR(128) NOT NULL,
                version INTEGER NOT NULL,
                model VARCHAR(256) NOT NULL,
                config TEXT NOT NULL,
                samples INTEGER NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION,
                status VARCHAR(16) NOT NULL
            )
            """,
            """
            CREATE TABLE eval_results (
                run_id VARCHAR(64) NOT NULL,
                position INTEGER NOT NULL,
                sample INTEGER NOT NULL,
                output TEXT,
                error TEXT,
                scores TEXT NOT NULL,
                details TEXT,
                latency_ms DOUBLE PRECISION,
                cost DOUBLE PRECISION,
                trace_id VARCHAR(64),
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (run_id, position, sample)
            )
            """,
        ],
    ),
    (
        # The spend journal (strato.auth.journal): budget holds and settlements of keys with budgets,
        # committed before a request runs and before its answer is released, so a crash never
        # forgets spend. Seeded with the last 32 days of traced costs; PostgreSQL's shared budgets
        # now start a period from it instead of from the traces.
        "0015_spend_journal",
        [
            """
            CREATE TABLE spend_ledger (
                ticket VARCHAR(64) NOT NULL,
                kind VARCHAR(8) NOT NULL,
                key_id VARCHAR(128) NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                amount DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION,
                process VARCHAR(32),
                PRIMARY KEY (ticket, kind)
            )
            """,
            "CREATE INDEX ix_spend_ledger_key_at ON spend_ledger (key_id, at)",
            "CREATE INDEX ix_spend_ledger_at ON spend_ledger (at)",
            {
                "sqlite": SEED_JOURNAL.format(now="CAST(strftime('%s', 'now') AS REAL)"),
                "postgresql": SEED_JOURNAL.format(now="EXTRACT(EPOCH FROM now())"),
            },
            {"postgresql": KEY_USAGE_FROM_JOURNAL},
        ],
    ),
    (
        # Fine-tuned models (strato.tune.registry): LoRA adapters served on their bases.
        "0016_tuned_models",
        [
            """
            CREATE TABLE tuned_models (
                name VARCHAR(256) PRIMARY KEY,
                base VARCHAR(256) NOT NULL,
                adapter TEXT NOT NULL,
                job_id VARCHAR(64) NOT NULL,
                dataset VARCHAR(128) NOT NULL,
                version INTEGER NOT NULL,
                stage VARCHAR(16) NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                gate TEXT
            )
            """,
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
