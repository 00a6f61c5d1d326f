"""Each provider call a request made (the router's retries and fallbacks), collected for its trace.

The gateway opens a list per request with `collect()`; the router appends to it. A context variable
carries it, so the router needs no handle on the trace and streams (iterated in another task that
inherits the context) append to the same list.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

_current: ContextVar[list[Attempt] | None] = ContextVar("strato_attempts", default=None)


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: str
    provider: str
    status: int  # 200, or the error's HTTP status
    latency_ms: float
    error_code: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def collect() -> list[Attempt]:
    attempts: list[Attempt] = []
    _current.set(attempts)
    return attempts


def record(attempt: Attempt) -> None:
    attempts = _current.get()
    if attempts is not None:
        attempts.append(attempt)
