"""The filters the traces API and `strato traces list` use, against SQLite and the machine's
PostgreSQL: one key's traces, a status range, keyset paging that neither skips nor repeats traces
started together, and user, time, anomaly, feedback and full-text search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from strato.store import Store, open_store
from strato.store.sql import FEEDBACK
from strato.types import Endpoint, Score, Trace, TraceQuery


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


@pytest.fixture
def judged(store_url: str) -> Iterator[Store]:
    """Traces with users, answers, anomalies and feedback, for the filters `strato traces list`
    and `GET /v1/traces` take."""
    opened = open_store(store_url)

    def made(trace_id: str, at: float, question: str, answer: str | None, **fields: Any) -> Trace:
        messages = [{"role": "user", "content": question}]
        return Trace(trace_id, at, Endpoint.CHAT, "m", {"messages": messages}, completion=answer, **fields)

    opened.record(
        [
            made("a1", 100.0, "What is the capital of France?", "Paris.", user="ann", api_key="k1"),
            made("a2", 200.0, "Tell me a joke", "", user="ann", anomalies=["EMPTY_ANSWER"]),
            made(
                "a3",
                300.0,
                "How do I pick a lock?",
                "I'm sorry, but I can't help with that.",
                user="bob",
                anomalies=["REFUSAL", "SLOW"],
                api_key="k2",
            ),
            made(
                "a4",
                400.0,
                "Wie spät ist es in Tokio?",
                "It is 9 pm in Tokyo.",
                user="bob",
                anomalies=["LANGUAGE_SWITCH"],
            ),
            made("a5", 500.0, "Summarise 100% of the_report", None, status=502, error="upstream down"),
        ]
    )
    opened.add_scores(
        [
            Score("a1", FEEDBACK, 1.0, label="helpful"),
            Score("a3", FEEDBACK, 0.0, comment="it should have said no politely"),
            Score("a3", FEEDBACK, 1.0),  # another user liked it: a3 has both
            Score("a4", FEEDBACK, 0.25),
            Score("a2", "quality", 0.0, source="eval"),  # not feedback
        ]
    )
    yield opened
    opened.close()


def test_filters_by_user_key_and_time(judged: Store) -> None:
    assert ids(judged.traces(TraceQuery(user="ann"))) == ["a2", "a1"]
    assert ids(judged.traces(TraceQuery(user="nobody"))) == []
    assert ids(judged.traces(TraceQuery(api_key="k2"))) == ["a3"]
    assert ids(judged.traces(TraceQuery(since=200.0, until=400.0))) == ["a3", "a2"]  # until: before
    assert ids(judged.traces(TraceQuery(until=100.0))) == []


def test_filters_by_anomaly(judged: Store) -> None:
    assert ids(judged.traces(TraceQuery(anomaly="any"))) == ["a4", "a3", "a2"]
    assert ids(judged.traces(TraceQuery(anomaly="REFUSAL"))) == ["a3"]
    assert ids(judged.traces(TraceQuery(anomaly="SLOW"))) == ["a3"]
    assert ids(judged.traces(TraceQuery(anomaly="refusal"))) == ["a3"]  # any case
    assert ids(judged.traces(TraceQuery(anomaly="EXPENSIVE"))) == []
    # A kind is matched whole, never as a part of another kind's name.
    assert ids(judged.traces(TraceQuery(anomaly="SWITCH"))) == []
    assert ids(judged.traces(TraceQuery(anomaly="ANSWER"))) == []


def test_filters_by_feedback(judged: Store) -> None:
    assert ids(judged.traces(TraceQuery(feedback="any"))) == ["a4", "a3", "a1"]
    assert ids(judged.traces(TraceQuery(feedback="none"))) == ["a5", "a2"]  # an eval score is no feedback
    assert ids(judged.traces(TraceQuery(feedback="positive"))) == ["a3", "a1"]
    assert ids(judged.traces(TraceQuery(feedback="negative"))) == ["a4", "a3"]  # a score below 0.5


def test_search_needs_every_word_in_the_request_or_the_answer(judged: Store) -> None:
    assert ids(judged.traces(TraceQuery(search="paris"))) == ["a1"]  # in the answer, any case
    assert ids(judged.traces(TraceQuery(search="CAPITAL france"))) == ["a1"]  # in the request
    assert ids(judged.traces(TraceQuery(search="capital tokyo"))) == []  # both words, one trace
    assert ids(judged.traces(TraceQuery(search="Tokio tokyo"))) == ["a4"]  # one in each
    assert ids(judged.traces(TraceQuery(search="spät"))) == ["a4"]  # stored as written, not \u00e4
    # LIKE's wildcards are literal characters in a search.
    assert ids(judged.traces(TraceQuery(search="100%"))) == ["a5"]
    assert ids(judged.traces(TraceQuery(search="the_report"))) == ["a5"]
    assert ids(judged.traces(TraceQuery(search="the%report"))) == []
    assert ids(judged.traces(TraceQuery(search="t_e"))) == []


def test_filters_combine(judged: Store) -> None:
    query = TraceQuery(user="bob", anomaly="any", feedback="negative", search="sorry", since=250.0)
    assert ids(judged.traces(query)) == ["a3"]
    assert ids(judged.traces(TraceQuery(user="bob", feedback="positive"), api_key="k1")) == []
    assert ids(judged.traces(TraceQuery(limit=1, anomaly="any"))) == ["a4"]
    assert ids(judged.traces(TraceQuery(anomaly="any"), older_than=(400.0, "a4"))) == ["a3", "a2"]


def test_anomalies_and_feedback_are_stored(judged: Store) -> None:
    refused = judged.trace("a3")
    assert refused is not None and refused.anomalies == ["REFUSAL", "SLOW"]
    plain = judged.trace("a1")
    assert plain is not None and plain.anomalies == []
    feedback = judged.scores(FEEDBACK, ["a3", "a1"])
    assert [(s.trace_id, s.value) for s in feedback] == [("a1", 1.0), ("a3", 0.0), ("a3", 1.0)]
    assert feedback[0].label == "helpful" and feedback[1].comment == "it should have said no politely"


def test_search_reads_what_was_said_not_the_json_keys_or_parameters(store_url: str) -> None:
    """Every request's JSON has "role", "content" and "temperature": a search for them finds only
    traces whose text says them; prompts and embedding inputs are text too."""
    opened = open_store(store_url)
    chat = {"messages": [{"role": "user", "content": "What role does RNA play?"}], "temperature": 0.7}
    opened.record(
        [
            Trace("s1", 1.0, Endpoint.CHAT, "m", chat, completion="It carries code."),
            Trace("s2", 2.0, Endpoint.CHAT, "m", {"messages": [{"role": "user", "content": "hi"}]}),
            Trace(
                "s3", 3.0, Endpoint.COMPLETION, "m", {"prompt": "Once upon a temperature", "max_tokens": 5}
            ),
            Trace("s4", 4.0, Endpoint.EMBEDDING, "e", {"input": ["a user manual", "content strategy"]}),
        ]
    )
    assert ids(opened.traces(TraceQuery(search="role"))) == ["s1"]
    assert ids(opened.traces(TraceQuery(search="user"))) == ["s4"]  # the role's value is not text said
    assert ids(opened.traces(TraceQuery(search="content"))) == ["s4"]
    assert ids(opened.traces(TraceQuery(search="temperature"))) == ["s3"]
    assert ids(opened.traces(TraceQuery(search="CODE"))) == ["s1"]  # the answer, in any case
    assert ids(opened.traces(TraceQuery(search="max_tokens"))) == []
    opened.close()
