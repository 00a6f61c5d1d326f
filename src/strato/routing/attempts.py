"""What routing did for one request, collected for its trace: each provider call (retries and
fallbacks) and, when a `router` model chose between groups, its decision.

A request's `Notes` ride on its record (`strato.observe.call`); model groups and routers add to
them with `record_call` and `decide` there, without a handle on the trace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
