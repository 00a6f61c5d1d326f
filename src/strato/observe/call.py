"""The record of the request being served, for the stages that write to it without a handle.

The gateway's `CallContext` is the one record of a request: its spans, what routing did, what it
cost. The gateway enters it here when the request begins; model groups and routers add their
provider calls and decisions, and the guard step opens its spans, through `current()`. A context
variable carries it, so a stream (iterated in another task that inherits the context) writes to the
same record. Outside a request (`strato eval` calling a provider directly, a test) there is none and
the writes are skipped.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import Any, Protocol

from strato.errors import StratoError
from strato.observe.spans import SpanRecorder
from strato.routing.attempts import Attempt, Decision, Notes
from strato.types import Span


class CallRecord(Protocol):
    """What the stages of a request see of its record."""

    @property
    def spans(self) -> SpanRecorder: ...

    @property
    def notes(self) -> Notes: ...


_current: ContextVar[CallRecord | None] = ContextVar("strato_call", default=None)


def enter(record: CallRecord) -> None:
    """Make `record` the current request's in this context (and the tasks it starts)."""
    _current.set(record)


def current() -> CallRecord | None:
    """The record of the request being served in this context (None outside a request)."""
    return _current.get()


def record_call(deployment: str, provider: str, started: float, error: StratoError | None) -> None:
    """Routing made one call to `deployment`, begun at `started` (time.perf_counter())."""
    record = _current.get()
    if record is None:
        return
    elapsed = time.perf_counter() - started
    record.notes.attempts.append(
        Attempt(
            deployment=deployment,
            provider=provider,
            status=200 if error is None else error.status,
            latency_ms=round(elapsed * 1000, 3),
            error_code=None if error is None else error.code,
            error=None if error is None else error.internal,
            started_at=time.time() - elapsed,
        )
    )


def decide(decision: Decision) -> None:
    """A router's decision (an inner router, reached through an outer one, wins)."""
    record = _current.get()
    if record is not None:
        record.notes.decision = decision
        record.notes.decided_at = time.time()


def stage(name: str, attributes: dict[str, Any]) -> AbstractContextManager[Span | None]:
    """`with stage(name, attributes) as span:` a span of the current request (none outside one)."""
    record = _current.get()
    if record is None:
        return nullcontext()
    return record.spans.span(name, attributes)
