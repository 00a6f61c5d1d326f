"""The SQL store, on SQLAlchemy Core: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from strato.store.database import open_database
from strato.store.storable import storable, storable_json
from strato.store.tables import scores, traces
from strato.types import Endpoint, Score, Span, Spend, Trace, TraceQuery

MIN_PREFIX = 6  # shortest id prefix `trace()` resolves, as `git show` does for commits
FEEDBACK = "feedback"  # the score name POST /v1/feedback records

# The fields `spend()` can group by, as users name them.
SPEND_GROUPS = {
    "model": traces.c.requested_model,
    "deployment": traces.c.deployment,
    "key": traces.c.api_key,
    "user": traces.c.user_id,
}


class SQLStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> SQLStore:
        """Connect and migrate (one-off use; a running server shares the composition root's engine)."""
        return cls(open_database(url))

    def record(self, items: Sequence[Trace]) -> None:
        if not items:
            return
        rows = [_to_row(t) for t in items]
        with self.engine.begin() as conn:
            # Replace semantics, portable across both backends: delete the ids, insert the rows.
            conn.execute(delete(traces).where(traces.c.id.in_([r["id"] for r in rows])))
            insert_rows(conn, "traces", rows)

    def traces(
        self,
        query: TraceQuery,
        *,
        api_key: str | None = None,
        statuses: tuple[int, int] | None = None,
        older_than: tuple[float, str] | None = None,
    ) -> list[Trace]:
        # The id breaks ties between traces started in the same instant, so pages never overlap.
        order = (traces.c.started_at.desc(), traces.c.id.desc())
        where = _filters(query, self.engine.dialect.name)
        stmt = select(traces).order_by(*order).limit(query.limit).where(*where)
        if api_key is not None:
            stmt = stmt.where(traces.c.api_key == api_key)
        if statuses is not None:
            stmt = stmt.where(traces.c.status >= statuses[0], traces.c.status < statuses[1])
        if older_than is not None:
            at, trace_id = older_than
            stmt = stmt.where(
                or_(traces.c.started_at < at, and_(traces.c.started_at == at, traces.c.id < trace_id))
            )
        with self.engine.connect() as conn:
            return [_from_row(row._mapping) for row in conn.execute(stmt)]

    def trace(self, trace_id: str) -> Trace | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(traces).where(traces.c.id == trace_id)).first()
            if row is None and len(trace_id) >= MIN_PREFIX and trace_id.isalnum():
                rows = conn.execute(select(traces).where(traces.c.id.startswith(trace_id)).limit(2)).all()
                row = rows[0] if len(rows) == 1 else None
        return _from_row(row._mapping) if row is not None else None

    def spans(self, trace_id: str) -> list[Span]:
        trace = self.trace(trace_id)
        return trace.spans if trace is not None else []

    def spend(self, by: str, since: float | None = None) -> list[Spend]:
        column = SPEND_GROUPS[by]
        unpriced = case((traces.c.cost.is_(None) & (traces.c.status < 400), 1), else_=0)
        stmt = (
            select(
                column,
                func.count(),
                func.coalesce(func.sum(traces.c.prompt_tokens), 0),
                func.coalesce(func.sum(traces.c.completion_tokens), 0),
                func.coalesce(func.sum(traces.c.cost), 0.0),
                func.coalesce(func.sum(unpriced), 0),
            )
            .group_by(column)
            .order_by(func.coalesce(func.sum(traces.c.cost), 0.0).desc(), func.count().desc())
        )
        if since is not None:
            stmt = stmt.where(traces.c.started_at >= since)
        with self.engine.connect() as conn:
            return [
                Spend(row[0], int(row[1]), int(row[2]), int(row[3]), float(row[4]), int(row[5]))
                for row in conn.execute(stmt)
            ]

    def add_scores(self, items: Sequence[Score]) -> None:
        if items:
            with self.engine.begin() as conn:
                conn.execute(scores.insert(), [_score_row(s) for s in items])

    def scores(self, name: str | None = None, trace_ids: Sequence[str] | None = None) -> list[Score]:
        stmt = select(scores).order_by(scores.c.created_at)
        if name is not None:
            stmt = stmt.where(scores.c.name == name)
        if trace_ids is not None:
            stmt = stmt.where(scores.c.trace_id.in_(list(trace_ids)))
        with self.engine.connect() as conn:
            return [Score(**dict(row._mapping)) for row in conn.execute(stmt)]

    def span_count(self) -> int:
        """Spans stored, over all traces (benchmarks count what was stored with it)."""
        total = 0
        with self.engine.connect() as conn:
            for (text_,) in conn.execution_options(yield_per=1000).execute(select(traces.c.spans)):
                total += len(json.loads(text_)) if text_ else 0
        return total

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(traces)).scalar_one())

    def close(self) -> None:
        self.engine.dispose()


def _to_row(t: Trace) -> dict[str, Any]:
    """A trace as a row. Every text a client can put in a trace goes through `storable`: one value
    no database can encode must not cost the whole batch (nor block the writer retrying it)."""
    return {
        "id": t.id,
        "started_at": t.started_at,
        "ended_at": t.ended_at,
        "endpoint": str(t.endpoint),
        "requested_model": _fit(t.requested_model, 256),
        "api_key": _fit(t.api_key, 128),
        "user_id": _fit(t.user, 256),
        "deployment": _fit(t.deployment, 256),
        "provider": _fit(t.provider, 64),
        "stream": t.stream,
        "request": storable_json(t.request),
        "completion": storable(t.completion),
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "cached_tokens": t.cached_tokens,
        "ttft_ms": t.ttft_ms,
        "latency_ms": t.latency_ms,
        "status": t.status,
        "error": storable(t.error),
        "error_code": _fit(t.error_code, 64),
        "finish_reason": _fit(t.finish_reason, 16),
        "attempts": storable_json(t.attempts) if t.attempts else None,
        "route": storable_json(t.route) if t.route else None,
        "cache_hit": t.cache,
        "cost": t.cost,
        "anomalies": storable_json(t.anomalies) if t.anomalies else None,
        "spans": storable_json([_span_dict(s) for s in t.spans]) if t.spans else None,
    }


# Most bound values in one statement: SQLite's default limit is 32,766, PostgreSQL's 65,535.
MAX_PARAMETERS = 32_000


def insert_rows(conn: Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) with one multi-row INSERT per few hundred rows.

    An executemany steps the database once per row, and each step gives up the GIL and waits to get
    it back: with the gateway's event loop busy, that is up to a switch interval (5 ms) per row, and
    a batch of 500 traces took over 4 s to store instead of 50 ms, widening what a crash can lose.
    One statement is one step. Column names come from strato's own rows, never from a request."""
    if not rows:
        return
    columns = list(rows[0])
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per = max(1, MAX_PARAMETERS // len(columns))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * len(chunk))}"
        conn.exec_driver_sql(sql, tuple(row[c] for row in chunk for c in columns))


def _filters(query: TraceQuery, dialect: str) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a trace query (every filter set must hold)."""
    c = traces.c
    where: list[ColumnElement[bool]] = []
    if query.model:
        where.append(c.requested_model == query.model)
    if query.errors_only:
        where.append(c.status >= 400)
    if query.since is not None:
        where.append(c.started_at >= query.since)
    if query.until is not None:
        where.append(c.started_at < query.until)
    if query.api_key is not None:
        where.append(c.api_key == query.api_key)
    if query.user is not None:
        where.append(c.user_id == query.user)
    if query.anomaly == "any":
        where.append(c.anomalies.is_not(None))
    elif query.anomaly:
        where.append(c.anomalies.like(f'%"{_escape_like(query.anomaly.upper())}"%', escape="\\"))
    if query.feedback is not None:
        where.append(_feedback_filter(query.feedback))
    for word in (query.search or "").split():
        pattern = f"%{_escape_like(word)}%"
        where.append(or_(_said(pattern, dialect), c.completion.ilike(pattern, escape="\\")))
    return where


# Where a request's text is in its stored JSON: what was said, not the parameters or the JSON keys.
TEXT_PATHS = ("lax $.messages[*].content", "lax $.prompt", "lax $.input[*]")


def _said(pattern: str, dialect: str) -> ColumnElement[bool]:
    """Whether the text the request carried (its messages' content, its prompt, its embedding
    inputs) matches `pattern`, case-insensitively: searching for "role" or "temperature" must not
    find every trace because every request's JSON has those keys."""
    if dialect == "postgresql":
        document = cast(traces.c.request, JSONB)
        found = []
        for path in TEXT_PATHS:  # strato's own constants, never a client's text
            value = func.jsonb_path_query(document, literal_column(f"'{path}'::jsonpath")).column_valued("v")
            said = value.op("#>>")(literal_column("'{}'::text[]"))
            matches = said.ilike(pattern, escape="\\")
            found.append(exists(select(1).where(func.jsonb_typeof(value) == "string", matches)))
        return or_(*found)
    tree = func.json_tree(traces.c.request).table_valued("key", "fullkey", "path", "type", "value")
    text_value = or_(
        tree.c.key == "content",
        tree.c.fullkey == "$.prompt",
        tree.c.path == "$.input",
        tree.c.fullkey == "$.input",
    )
    return exists(
        select(1)
        .select_from(tree)
        .where(tree.c.type == "text", text_value, tree.c.value.ilike(pattern, escape="\\"))
    )


def _feedback_filter(kind: str) -> ColumnElement[bool]:
    feedback = (scores.c.trace_id == traces.c.id) & (scores.c.name == FEEDBACK)
    if kind == "none":
        return not_(exists().where(feedback))
    if kind == "positive":
        return exists().where(feedback & (scores.c.value >= 0.5))
    if kind == "negative":
        return exists().where(feedback & (scores.c.value < 0.5))
    return exists().where(feedback)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _span_dict(span: Span) -> dict[str, Any]:
    record: dict[str, Any] = {
        "span_id": span.span_id,
        "name": span.name,
        "started_at": span.started_at,
        "ended_at": span.ended_at,
        "status": span.status,
    }
    if span.parent_id is not None:
        record["parent_id"] = span.parent_id
    if span.attributes:
        record["attributes"] = span.attributes
    return record


def _from_span_dict(record: dict[str, Any]) -> Span:
    return Span(
        span_id=record["span_id"],
        name=record["name"],
        started_at=record["started_at"],
        ended_at=record["ended_at"],
        parent_id=record.get("parent_id"),
        status=record["status"],
        attributes=record.get("attributes", {}),
    )


def _fit(value: str | None, length: int) -> str | None:
    """A value cut to its column's length: PostgreSQL refuses a longer one, and with it the whole
    batch of traces (a client can send a model name of any length)."""
    value = storable(value)  # first: an escape is longer than the character it stands for
    return value if value is None or len(value) <= length else value[:length]


def _score_row(s: Score) -> dict[str, Any]:
    return {
        "id": s.id,
        "trace_id": s.trace_id,
        "name": s.name,
        "value": s.value,
        "source": s.source,
        "comment": storable(s.comment),
        "created_at": s.created_at,
        "label": _fit(s.label, 128),
        "correction": storable(s.correction),
    }


def _from_row(row: Any) -> Trace:
    return Trace(
        id=row["id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        endpoint=Endpoint(row["endpoint"]),
        requested_model=row["requested_model"],
        api_key=row["api_key"],
        user=row["user_id"],
        deployment=row["deployment"],
        provider=row["provider"],
        stream=bool(row["stream"]),
        request=json.loads(row["request"]),
        completion=row["completion"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cached_tokens=row["cached_tokens"],
        ttft_ms=row["ttft_ms"],
        latency_ms=row["latency_ms"],
        status=row["status"],
        error=row["error"],
        error_code=row["error_code"],
        finish_reason=row["finish_reason"],
        attempts=json.loads(row["attempts"]) if row["attempts"] else [],
        route=json.loads(row["route"]) if row["route"] else None,
        cache=row["cache_hit"],
        cost=row["cost"],
        anomalies=json.loads(row["anomalies"]) if row["anomalies"] else [],
        spans=[_from_span_dict(r) for r in json.loads(row["spans"])] if row["spans"] else [],
    )
