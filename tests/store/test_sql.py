"""The store contract, run against SQLite and the machine's PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from strato.config import ConfigError
from strato.store import open_store
from strato.store.migrations import MIGRATIONS
from strato.store.sql import SQLStore
from strato.types import Endpoint, Score, Span, Trace, TraceQuery


def make_trace(i: int, **fields: object) -> Trace:
    base = dict(
        id=f"trace-{i:04d}",
        started_at=1_700_000_000.0 + i,
        endpoint=Endpoint.CHAT,
        requested_model="m1" if i % 2 else "m2",
        request={"messages": [{"role": "user", "content": f"question {i} — ünïcode ✓"}], "temperature": 0.0},
        ended_at=1_700_000_000.5 + i,
        user="alice",
        deployment="m1",
        provider="llama_cpp",
        stream=bool(i % 3),
        completion=f"answer {i}",
        prompt_tokens=10 + i,
        completion_tokens=i,
        ttft_ms=12.5,
        latency_ms=100.25,
        status=200 if i % 5 else 502,
        error=None if i % 5 else "upstream failed",
        error_code=None if i % 5 else "upstream_error",
        finish_reason="stop",
    )
    base.update(fields)
    return Trace(**base)  # type: ignore[arg-type]


def test_spans_anomalies_and_feedback_round_trip(store_url: str) -> None:
    store = open_store(store_url)
    try:
        root = Span("a" * 16, "chat m1", 1.0, 2.0, status="ok", attributes={"gen_ai.request.model": "m1"})
        child = Span("b" * 16, "strato.auth", 1.0, 1.1, parent_id=root.span_id, status="ok")
        trace = make_trace(3, spans=[root, child], anomalies=["EMPTY_ANSWER", "REFUSAL"])
        store.record([trace])
        assert store.trace(trace.id) == trace
        # Recording the id again replaces the spans too, in the same transaction.
        store.record([make_trace(3, spans=[child])])
        assert store.spans(trace.id) == [child]
        assert isinstance(store, SQLStore) and store.span_count() == 1
        feedback = Score(trace.id, "feedback", 0.0, label="wrong", correction="42", comment="off by one")
        store.add_scores([feedback])
        assert store.scores("feedback", [trace.id]) == [feedback]
    finally:
        store.close()


def test_round_trip_keeps_every_field(store_url: str) -> None:
    store = open_store(store_url)
    try:
        original = make_trace(7)
        store.record([original])
        assert store.trace(original.id) == original
        assert store.trace("missing") is None
        store.record([make_trace(8, id="abcdef0001"), make_trace(9, id="abcdef0002")])
        assert store.trace("trace-00") is None  # not alphanumeric: never a pattern
        assert store.trace("abcdef000") is None  # ambiguous
        assert store.trace("abcdef0002"[:7]) is None
        assert store.trace("abcdef0001") is not None
        store.record([make_trace(10, id="fedcba9999")])
        assert store.trace("fedcba") == make_trace(10, id="fedcba9999")
        assert store.trace("fedcb") is None  # too short to be meant as a prefix
    finally:
        store.close()


def test_query_newest_first_with_filters(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.record([make_trace(i) for i in range(1, 21)])
        newest = store.traces(TraceQuery(limit=5))
        assert [t.id for t in newest] == [f"trace-{i:04d}" for i in range(20, 15, -1)]
        assert {t.requested_model for t in store.traces(TraceQuery(model="m1", limit=100))} == {"m1"}
        assert len(store.traces(TraceQuery(model="m1", limit=100))) == 10
        assert {t.status for t in store.traces(TraceQuery(errors_only=True, limit=100))} == {502}
        assert len(store.traces(TraceQuery(since=1_700_000_016.0, limit=100))) == 5
    finally:
        store.close()


def test_recording_an_existing_id_replaces_it(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.record([make_trace(1, completion="first")])
        store.record([make_trace(1, completion="second"), make_trace(2)])
        assert store.trace("trace-0001").completion == "second"  # type: ignore[union-attr]
        assert len(store.traces(TraceQuery(limit=10))) == 2
    finally:
        store.close()


def test_migrations_run_once_and_are_recorded(store_url: str) -> None:
    first = open_store(store_url)
    first.record([make_trace(1)])
    first.close()
    second = open_store(store_url)  # reopening applies nothing twice and keeps the data
    try:
        assert isinstance(second, SQLStore)
        with second.engine.connect() as conn:
            names = [row[0] for row in conn.execute(text("SELECT name FROM strato_migrations ORDER BY name"))]
        assert names == [name for name, _ in MIGRATIONS]
        assert second.trace("trace-0001") is not None
    finally:
        second.close()


def test_concurrent_writers(store_url: str) -> None:
    store = open_store(store_url)
    try:

        def write(offset: int) -> None:
            for batch in range(5):
                store.record([make_trace(offset + batch * 20 + i) for i in range(20)])

        threads = [threading.Thread(target=write, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert isinstance(store, SQLStore)
        assert store.count() == 400
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path: object) -> None:
    store = SQLStore.open(f"sqlite:///{tmp_path}/wal.db")
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://root@127.0.0.1/test", "SQLite or PostgreSQL"),
        ("not a url", "not a valid URL"),
        ("postgresql://root@127.0.0.1:1/none?connect_timeout=1", "cannot prepare the database"),
    ],
)
def test_unusable_urls_fail_with_one_clear_line(url: str, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=words) as caught:
        open_store(url)
    assert "\n" not in str(caught.value)
    assert time.monotonic() - started < 30


def test_overlong_names_from_a_client_do_not_cost_the_batch(store_url: str) -> None:
    """A model or user name longer than its column is cut, and the traces batched with it are kept
    (PostgreSQL refuses an over-long VARCHAR and with it the whole insert)."""
    store = open_store(store_url)
    try:
        long_name = "m" * 300
        batch = [make_trace(1), make_trace(2, requested_model=long_name, user="u" * 300), make_trace(3)]
        store.record(batch)
        stored = store.trace("trace-0002")
        assert stored is not None and stored.requested_model == long_name[:256] and stored.user == "u" * 256
        assert store.trace("trace-0001") is not None and store.trace("trace-0003") is not None
    finally:
        store.close()
