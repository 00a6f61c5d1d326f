"""Per-key rate limits and budgets: the seams, and the versions that count in this process.

`Limiter` and `Ledger` are seams: `strato.auth.redis` and `strato.auth.postgres` share them between
gateway replicas (`strato.auth.shared` picks one). The in-process versions here are exact under
concurrency because admission is a synchronous check-and-take on the event loop thread, with no
await in between.

Every admitted request carries a ticket (a random id): the limiter counts the request under it, so a
request refused after admission (over budget, blocked by a guard) gives its rpm count back, and a
ledger holds the request's worst-case cost under it until the request settles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from strato.auth.keys import VirtualKey
from strato.errors import StratoError
from strato.window import WINDOW, MinuteWindow

BUDGET_SLACK = 1e-12  # USD: float sums of costs may land a hair above an exactly used-up budget


class LimitsUnavailable(StratoError):
    """The shared limits (Redis, PostgreSQL) did not answer: refuse rather than run unmetered."""

    status = 503
    type = "api_error"
    code = "limits_unavailable"


class Limiter(Protocol):
    def admit(self, key: VirtualKey, now: float, ticket: str = "") -> float | None:
        """Count one request against `key`'s rpm; None when it may run, else seconds to wait."""
        ...

    def release(self, key: VirtualKey, ticket: str) -> None:
        """Take back the count of an admitted request that was refused after all (budget, guard)."""
        ...

    def record(self, key: VirtualKey, tokens: int, now: float) -> None:
        """Count the tokens a finished request used against `key`'s tpm."""
        ...

    def close(self) -> None: ...


class Ledger(Protocol):
    def reserve(self, key: VirtualKey, amount: float, now: float, ticket: str = "") -> float | None:
        """Hold `amount` USD of `key`'s budgets; None when held, else seconds until a budget resets."""
        ...

    def settle(self, key: VirtualKey, reserved: float, actual: float, now: float, ticket: str = "") -> None:
        """Replace a hold with what the request really cost (0 when it failed)."""
        ...

    def close(self) -> None: ...


class SlidingWindowLimiter:
    """rpm and tpm over a sliding minute, per key."""

    def __init__(self) -> None:
        self._windows: dict[str, MinuteWindow] = {}
        # ticket -> when, for the last minute's requests, oldest first: what `release` gives back
        self._admitted: dict[str, float] = {}

    def admit(self, key: VirtualKey, now: float, ticket: str = "") -> float | None:
        if key.rpm is None and key.tpm is None:
            return None
        window = self._windows.setdefault(key.id, MinuteWindow())
        wait = window.wait(key.rpm, key.tpm, now)
        if wait is None:
            window.add_request(now)
            if ticket and key.rpm is not None:
                self._forget_before(now - WINDOW)
                self._admitted[ticket] = now
        return wait

    def release(self, key: VirtualKey, ticket: str) -> None:
        at = self._admitted.pop(ticket, None)
        window = self._windows.get(key.id)
        if at is not None and window is not None and at in window.requests:
            window.requests.remove(at)  # removing one keeps the rest in time order

    def record(self, key: VirtualKey, tokens: int, now: float) -> None:
        if key.tpm is None or tokens <= 0:
            return
        self._windows.setdefault(key.id, MinuteWindow()).add_tokens(now, tokens)

    def close(self) -> None:
        pass

    def _forget_before(self, since: float) -> None:
        # Tickets are kept in admission order; one older than the window has nothing to give back.
        while self._admitted:
            ticket, at = next(iter(self._admitted.items()))
            if at > since:
                break
            del self._admitted[ticket]


@dataclass
class _Period:
    start: float
    spent: float  # settled spend this period, loaded from the store once
    held: float = 0.0  # reservations of requests still running
    # (USD, lapses at): holds of requests another process was running when it died, loaded once
    orphans: list[tuple[float, float]] = field(default_factory=list)

    def holding(self, now: float) -> float:
        return self.held + sum(amount for amount, lapses in self.orphans if lapses > now)


OpenHolds = Callable[[str, float, float], list[tuple[float, float]]]


class InProcessLedger:
    """Daily and monthly USD budgets, per key. Spend survives restarts and crashes: the first request
    of a period loads it from the store (`spent(key_id, since)`: the spend journal's settlements),
    and `open_holds(key_id, since, now)` gives the holds of requests a dead process left running,
    which keep counting until they lapse."""

    def __init__(self, spent: Callable[[str, float], float], open_holds: OpenHolds | None = None) -> None:
        self._spent = spent
        self._open_holds = open_holds
        self._periods: dict[tuple[str, str], _Period] = {}

    def reserve(self, key: VirtualKey, amount: float, now: float, ticket: str = "") -> float | None:
        periods = self._current(key, now)
        for (kind, budget), period in periods:
            if period.spent + period.holding(now) + amount > budget + BUDGET_SLACK:
                return next_period_start(kind, now) - now
        for _, period in periods:
            period.held += amount
        return None

    def settle(self, key: VirtualKey, reserved: float, actual: float, now: float, ticket: str = "") -> None:
        for _, period in self._current(key, now):
            period.held = max(0.0, period.held - reserved)
            period.spent += actual

    def close(self) -> None:
        pass

    def _current(self, key: VirtualKey, now: float) -> list[tuple[tuple[str, float], _Period]]:
        found = []
        for kind, budget in budgets(key):
            start = period_start(kind, now)
            period = self._periods.get((key.id, kind))
            if period is None or period.start != start:
                held = period.held if period is not None else 0.0  # requests running across midnight
                orphans = self._open_holds(key.id, start, now) if self._open_holds is not None else []
                period = _Period(start, self._spent(key.id, start), held, orphans)
                self._periods[(key.id, kind)] = period
            found.append(((kind, budget), period))
        return found


def budgets(key: VirtualKey) -> list[tuple[str, float]]:
    """The key's budgets as (period kind, USD), day before month."""
    found = (("day", key.budget_daily), ("month", key.budget_monthly))
    return [(kind, budget) for kind, budget in found if budget is not None]


def period_start(kind: str, now: float) -> float:
    """When the UTC day or month (`kind`) around `now` began."""
    at = datetime.fromtimestamp(now, UTC)
    first = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "month":
        first = first.replace(day=1)
    return first.timestamp()


def next_period_start(kind: str, now: float) -> float:
    """When the UTC day or month (`kind`) after the one around `now` begins."""
    at = datetime.fromtimestamp(period_start(kind, now), UTC)
    if kind == "day":
        return at.timestamp() + 86400
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return at.replace(year=year, month=month).timestamp()


def period_name(kind: str, now: float) -> str:
    """The UTC period around `now` as shared counters name it: `day:2026-03-31`, `month:2026-03`."""
    at = datetime.fromtimestamp(now, UTC)
    return f"day:{at:%Y-%m-%d}" if kind == "day" else f"month:{at:%Y-%m}"


def retry_after(seconds: float) -> str:
    """A `retry-after` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
