"""The schema the migrations create, as SQLAlchemy tables, every table strato queries in one place:
used for queries, never to create tables (tests/store/test_tables.py holds them to the migrations)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()


# Mirrors the schema the migrations create; used for queries, never to create tables.
traces = Table(
    "traces",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("endpoint", String(32), nullable=False),
    Column("requested_model", String(256)),
    Column("api_key", String(128)),
    Column("user_id", String(256)),
    Column("deployment", String(256)),
    Column("provider", String(64)),
    Column("stream", Boolean, nullable=False),
    Column("request", Text, nullable=False),
    Column("completion", Text),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("ttft_ms", Float),
    Column("latency_ms", Float),
    Column("status", Integer, nullable=False),
    Column("error", Text),
    Column("error_code", String(64)),
    Column("finish_reason", String(16)),
    Column("attempts", Text),
    Column("route", Text),
    Column("cache_hit", String(16)),
    Column("cost", Float),
    Column("anomalies", Text),
    Column("spans", Text),
)

scores = Table(
    "scores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("trace_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("value", Float, nullable=False),
    Column("source", String(64), nullable=False),
    Column("comment", Text),
    Column("created_at", Float, nullable=False),
    Column("label", String(128)),
    Column("correction", Text),
)

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("source", Text),
    Column("description", Text),
    Column("size", Integer, nullable=False),
)

dataset_items = Table(
    "dataset_items",
    metadata,
    Column("dataset", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("input", Text, nullable=False),
    Column("expected", Text),
    Column("metadata", Text),
    Column("trace_id", String(64)),
)

eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("dataset", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("model", String(256), nullable=False),
    Column("config", Text, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("status", String(16), nullable=False),
)

eval_results = Table(
    "eval_results",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("sample", Integer, primary_key=True),
    Column("output", Text),
    Column("error", Text),
    Column("scores", Text, nullable=False),
    Column("details", Text),
    Column("latency_ms", Float),
    Column("cost", Float),
    Column("trace_id", String(64)),
    Column("created_at", Float, nullable=False),
)

# Virtual keys (migration 0006).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("models", Text),
    Column("budget_daily", Float),
    Column("budget_monthly", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("expires_at", Float),
    Column("team", String(256)),
    Column("metadata", Text),
    Column("guards", Text),
    Column("created_at", Float, nullable=False),
    Column("rotated_at", Float),
    Column("revoked_at", Float),
)

# The admin keys a gateway runs with, as sha256 (migration 0010).
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("recorded_at", Float, nullable=False),
)

# The audit log (migration 0007): append-only.
audit = Table(
    "audit",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("at", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(128)),
    Column("subject", String(256)),
    Column("trace_id", String(64)),
    Column("detail", Text),
)

# The spend journal (migration 0015): budgeted requests' holds and settlements.
spend_ledger = Table(
    "spend_ledger",
    metadata,
    Column("ticket", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "hold" or "settle"
    Column("key_id", String(128), nullable=False),
    Column("at", Float, nullable=False),
    Column("amount", Float, nullable=False),  # USD: the hold, or what the request cost
    Column("expires_at", Float),  # holds: when a hold that never settled stops counting
    Column("process", String(32)),  # holds: the gateway process that made it
)

# Fine-tuned models (migration 0016): each a LoRA adapter on a configured local base, served
# under its name from start-up on.
tuned_models = Table(
    "tuned_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("base", String(256), nullable=False),
    Column("adapter", Text, nullable=False),  # the GGUF adapter file
    Column("job_id", String(64), nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("stage", String(16), nullable=False),  # trained, candidate, rejected
    Column("created_at", Float, nullable=False),
    Column("gate", Text),  # the evaluation gate's result, JSON
)
