"""The filters the traces API pages with, against SQLite and the machine's PostgreSQL: one key's
traces, a status range, and keyset paging that neither skips nor repeats traces started together."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strato.store import Store, open_store
from strato.types import Endpoint, Trace, TraceQuery


def trace(trace_id: str, at: float, key: str | None, status: int = 200) -> Trace:
    return Trace(trace_id, at, Endpoint.CHAT, "m", {"messages": []}, api_key=key, status=status)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    # Three traces share one start time: only the id orders them.
    opened.record(
        [
            trace("t1", 100.0, "key-a"),
            trace("t2", 200.0, "key-b", 429),
            trace("t3", 200.0, "key-a", 502),
            trace("t4", 200.0, "key-a"),
            trace("t5", 300.0, None, 401),
        ]
    )
    yield opened
    opened.close()


def ids(found: list[Trace]) -> list[str]:
    return [t.id for t in found]


def test_newest_first_with_ties_by_id(store: Store) -> None:
    assert ids(store.traces(TraceQuery())) == ["t5", "t4", "t3", "t2", "t1"]


def test_one_keys_traces(store: Store) -> None:
    assert ids(store.traces(TraceQuery(), api_key="key-a")) == ["t4", "t3", "t1"]
    assert ids(store.traces(TraceQuery(), api_key="key-z")) == []


def test_status_ranges(store: Store) -> None:
    assert ids(store.traces(TraceQuery(), statuses=(400, 500))) == ["t5", "t2"]
    assert ids(store.traces(TraceQuery(), statuses=(429, 430))) == ["t2"]
    assert ids(store.traces(TraceQuery(), statuses=(0, 400), api_key="key-a")) == ["t4", "t1"]


def test_keyset_pages_neither_skip_nor_repeat(store: Store) -> None:
    seen: list[str] = []
    cursor: tuple[float, str] | None = None
    while page := store.traces(TraceQuery(limit=2), older_than=cursor):
        seen += ids(page)
        cursor = (page[-1].started_at, page[-1].id)
    assert seen == ["t5", "t4", "t3", "t2", "t1"]
    assert ids(store.traces(TraceQuery(), older_than=(200.0, ""))) == ["t1"]  # started before 200
    assert ids(store.traces(TraceQuery(since=200.0), older_than=(300.0, ""))) == ["t4", "t3", "t2"]
