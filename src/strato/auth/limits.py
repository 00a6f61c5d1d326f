"""Per-key rate limits and budgets, in this process.

Both are seams (`Limiter`, `Ledger`) so replicas can later share them through Redis or PostgreSQL;
the in-process versions here are exact under concurrency because admission is a synchronous
check-and-take on the event loop thread, with no await in between.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from strato.auth.keys import VirtualKey
from strato.window import MinuteWindow


class Limiter(Protocol):
    def admit(self, key: VirtualKey, now: float) -> float | None:
        """Count one request against `key`'s rpm; None when it may run, else seconds to wait."""
        ...

    def record(self, key: VirtualKey, tokens: int, now: float) -> None:
        """Count the tokens a finished request used against `key`'s tpm."""
        ...


class Ledger(Protocol):
    def reserve(self, key: VirtualKey, amount: float, now: float) -> float | None:
        """Hold `amount` USD of `key`'s budgets; None when held, else seconds until a budget resets."""
        ...

    def settle(self, key: VirtualKey, reserved: float, actual: float, now: float) -> None:
        """Replace a hold with what the request really cost (0 when it failed)."""
        ...


class SlidingWindowLimiter:
    """rpm and tpm over a sliding minute, per key."""

    def __init__(self) -> None:
        self._windows: dict[str, MinuteWindow] = {}

    def admit(self, key: VirtualKey, now: float) -> float | None:
        if key.rpm is None and key.tpm is None:
            return None
        window = self._windows.setdefault(key.id, MinuteWindow())
        wait = window.wait(key.rpm, key.tpm, now)
        if wait is None:
            window.add_request(now)
        return wait

    def record(self, key: VirtualKey, tokens: int, now: float) -> None:
        if key.tpm is None or tokens <= 0:
            return
        self._windows.setdefault(key.id, MinuteWindow()).add_tokens(now, tokens)


@dataclass
class _Period:
    start: float
    spent: float  # settled spend this period, loaded from the store once
    held: float = 0.0  # reservations of requests still running


class InProcessLedger:
    """Daily and monthly USD budgets, per key. Spend survives restarts: the first request of a period
    loads it from the store (`spent(key_id, since)`, the sum of the key's traced costs)."""

    def __init__(self, spent: Callable[[str, float], float]) -> None:
        self._spent = spent
        self._periods: dict[tuple[str, str], _Period] = {}

    def reserve(self, key: VirtualKey, amount: float, now: float) -> float | None:
        periods = self._current(key, now)
        for (kind, budget), period in periods:
            if period.spent + period.held + amount > budget + 1e-12:
                return _next_start(kind, now) - now
        for _, period in periods:
            period.held += amount
        return None

    def settle(self, key: VirtualKey, reserved: float, actual: float, now: float) -> None:
        for _, period in self._current(key, now):
            period.held = max(0.0, period.held - reserved)
            period.spent += actual

    def _current(self, key: VirtualKey, now: float) -> list[tuple[tuple[str, float], _Period]]:
        found = []
        for kind, budget in (("day", key.budget_daily), ("month", key.budget_monthly)):
            if budget is None:
                continue
            start = _period_start(kind, now)
            period = self._periods.get((key.id, kind))
            if period is None or period.start != start:
                held = period.held if period is not None else 0.0  # requests running across midnight
                period = _Period(start, self._spent(key.id, start), held)
                self._periods[(key.id, kind)] = period
            found.append(((kind, budget), period))
        return found


def _period_start(kind: str, now: float) -> float:
    at = datetime.fromtimestamp(now, UTC)
    first = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "month":
        first = first.replace(day=1)
    return first.timestamp()


def _next_start(kind: str, now: float) -> float:
    at = datetime.fromtimestamp(_period_start(kind, now), UTC)
    if kind == "day":
        return at.timestamp() + 86400
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return at.replace(year=year, month=month).timestamp()


def retry_after(seconds: float) -> str:
    """A `retry-after` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
