"""What routing did for one request, collected for its trace: each provider call (retries and
fallbacks) and, when a `router` model chose between groups, its decision.

The gateway opens a `Notes` per request with `collect()`; routing providers add to it. A context
variable carries it, so routing needs no handle on the trace, and streams (iterated in another task
that inherits the context) add to the same notes.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

from strato.errors import StratoError

_current: ContextVar[Notes | None] = ContextVar("strato_routing_notes", default=None)


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: str
    provider: str
    status: int  # 200, or the error's HTTP status
    latency_ms: float
    error_code: str | None = None
    error: str | None = None
    started_at: float = 0.0  # seconds since the epoch, for the attempt's span (not in the trace's list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "started_at"}


@dataclass(frozen=True, slots=True)
class Decision:
    """A router's choice for one request: which target, by which rule or score, in how long."""

    router: str
    target: str
    reason: str  # the rule that matched, or "learned"
    score: float | None = None  # the learned router's estimate that the strong model is needed
    decision_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def header(self) -> str:
        """The `x-strato-route` response header: `target; reason=...; score=...`."""
        parts = [self.target, f"reason={self.reason}"]
        if self.score is not None:
            parts.append(f"score={self.score:.3f}")
        return "; ".join(parts)


@dataclass(slots=True)
class Notes:
    attempts: list[Attempt] = field(default_factory=list)
    decision: Decision | None = None
    decided_at: float | None = None  # seconds since the epoch when the decision was made (its span)


def collect() -> Notes:
    notes = Notes()
    _current.set(notes)
    return notes


def record(attempt: Attempt) -> None:
    notes = _current.get()
    if notes is not None:
        notes.attempts.append(attempt)


def record_call(deployment: str, provider: str, started: float, error: StratoError | None) -> None:
    """Record one call to `deployment` that began at `started` (time.perf_counter())."""
    elapsed = time.perf_counter() - started
    record(
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
    """Record a router's decision (an inner router, reached through an outer one, wins)."""
    notes = _current.get()
    if notes is not None:
        notes.decision = decision
        notes.decided_at = time.time()
