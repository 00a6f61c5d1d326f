"""The store seam: persistence for traces (and, later, everything else strato keeps).

One URL picks the backend: `sqlite:///path` (the default, WAL mode) or `postgresql://...`. The same
schema and migrations serve both, and one test suite runs against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from strato.types import Score, Spend, Trace, TraceQuery


class Store(Protocol):
    """Called from the trace writer thread and the CLI; implementations must be thread-safe."""

    def record(self, traces: Sequence[Trace]) -> None:
        """Persist traces in one transaction (all or none). Recording an existing id replaces it."""
        ...

    def traces(
        self,
        query: TraceQuery,
        *,
        api_key: str | None = None,
        statuses: tuple[int, int] | None = None,
        older_than: tuple[float, str] | None = None,
    ) -> list[Trace]:
        """Most recent first (ties by id, descending). Optionally only the traces of one key id, with
        a status in [low, high), or after (older than) the trace at `older_than` = (started_at, id)
        in that order: the traces API pages with it. `(t, "")` means started before t."""
        ...

    def trace(self, trace_id: str) -> Trace | None:
        """The trace with this id, or with this unique id prefix (6 characters or more)."""
        ...

    def spend(self, by: str, since: float | None = None) -> list[Spend]:
        """Requests, tokens and cost per value of `by` (model, deployment, key or user), costliest
        first."""
        ...

    def add_scores(self, items: Sequence[Score]) -> None:
        """Store judgements of traces (feedback, evaluations, judges) in one transaction."""
        ...

    def scores(self, name: str | None = None, trace_ids: Sequence[str] | None = None) -> list[Score]:
        """Scores, oldest first, optionally only those named `name` or about `trace_ids`."""
        ...

    def close(self) -> None: ...


def open_store(url: str) -> Store:
    """Connect, create what is missing and apply pending migrations."""
    from strato.store.sql import SQLStore

    return SQLStore.open(url)
