"""Rate limits and budgets shared by every gateway process through PostgreSQL (the store's database),
for deployments without Redis. Migration 0008 makes the tables and functions:

- `key_window`: the last minute's admitted requests (tokens 0) and answers (tokens > 0) per key;
- `key_usage`: USD settled per key and UTC period (`day:2026-03-31`, `month:2026-03`), a period's row
  seeded from the key's traces when it is created;
- `key_holds`: worst-case costs of requests still running, each lapsing after `hold_seconds` so a
  replica that dies mid-request does not keep the budget blocked.

Each check-and-take is one call of a PL/pgSQL function (`strato_key_admit`, `strato_key_reserve`,
`strato_key_settle`) in its own transaction, which first takes a transaction-scoped advisory lock on
the key: checks of one key run one at a time across every replica (never deadlocking: one lock per
transaction), different keys do not wait for each other, and a check costs one round trip.

Calls are synchronous, like the in-process versions: the auth step runs on the event loop.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from strato.auth.keys import VirtualKey
from strato.auth.limits import (
    BUDGET_SLACK,
    LimitsUnavailable,
    budgets,
    next_period_start,
    period_name,
    period_start,
)
from strato.window import WINDOW

SPENT_GRACE = 86400  # seconds a period's `key_usage` row outlives the period

ADMIT = text(
    "SELECT strato_key_admit(CAST(:key AS TEXT), CAST(:now AS DOUBLE PRECISION), CAST(:rpm AS INTEGER), "
    "CAST(:tpm AS INTEGER), CAST(:ticket AS TEXT), CAST(:window AS DOUBLE PRECISION))"
)
RESERVE = text(
    "SELECT strato_key_reserve(CAST(:key AS TEXT), CAST(:now AS DOUBLE PRECISION), "
    "CAST(:amount AS DOUBLE PRECISION), CAST(:ticket AS TEXT), CAST(:hold_until AS DOUBLE PRECISION), "
    "CAST(:periods AS TEXT[]), CAST(:budgets AS DOUBLE PRECISION[]), CAST(:since AS DOUBLE PRECISION[]), "
    "CAST(:expires AS DOUBLE PRECISION[]), CAST(:slack AS DOUBLE PRECISION))"
)
SETTLE = text(
    "SELECT strato_key_settle(CAST(:key AS TEXT), CAST(:now AS DOUBLE PRECISION), CAST(:ticket AS TEXT), "
    "CAST(:actual AS DOUBLE PRECISION), CAST(:periods AS TEXT[]), CAST(:since AS DOUBLE PRECISION[]), "
    "CAST(:expires AS DOUBLE PRECISION[]))"
)
RELEASE = text("SELECT strato_key_release(CAST(:ticket AS TEXT))")
RECORD = text(
    "SELECT strato_key_tokens(CAST(:key AS TEXT), CAST(:now AS DOUBLE PRECISION), CAST(:ticket AS TEXT), "
    "CAST(:tokens AS INTEGER))"
)


class PostgresLimiter:
    """rpm and tpm over a sliding minute, per key, counted in PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def admit(self, key: VirtualKey, now: float, ticket: str = "") -> float | None:
        if key.rpm is None and key.tpm is None:
            return None
        params = {"key": key.id, "now": now, "rpm": key.rpm, "tpm": key.tpm, "window": WINDOW}
        wait = _call(self.engine, ADMIT, {**params, "ticket": ticket or _ticket()})
        return None if wait is None else float(wait)

    def release(self, key: VirtualKey, ticket: str) -> None:
        if key.rpm is not None and ticket:
            _call(self.engine, RELEASE, {"ticket": ticket})

    def record(self, key: VirtualKey, tokens: int, now: float) -> None:
        if key.tpm is not None and tokens > 0:
            params = {"ticket": _ticket(), "key": key.id, "now": now, "tokens": tokens}
            _call(self.engine, RECORD, params)

    def close(self) -> None:
        self.engine.dispose()


class PostgresLedger:
    """Daily and monthly USD budgets, per key, held and settled in PostgreSQL."""

    def __init__(self, engine: Engine, hold_seconds: float = 900.0) -> None:
        self.engine = engine
        self._hold_seconds = hold_seconds

    def reserve(self, key: VirtualKey, amount: float, now: float, ticket: str = "") -> float | None:
        periods = budgets(key)
        if not periods:
            return None
        params = {
            "key": key.id,
            "now": now,
            "amount": amount,
            "ticket": ticket or _ticket(),
            "hold_until": now + self._hold_seconds,
            "budgets": [budget for _, budget in periods],
            "slack": BUDGET_SLACK,
            **_periods(key, now),
        }
        refused = int(_call(self.engine, RESERVE, params))
        return next_period_start(periods[refused - 1][0], now) - now if refused else None

    def settle(self, key: VirtualKey, reserved: float, actual: float, now: float, ticket: str = "") -> None:
        if budgets(key):
            params = {"key": key.id, "now": now, "ticket": ticket, "actual": actual, **_periods(key, now)}
            _call(self.engine, SETTLE, params)

    def close(self) -> None:
        self.engine.dispose()


def _periods(key: VirtualKey, now: float) -> dict[str, list[Any]]:
    """The key's budgeted periods around `now` as the functions take them: names, starts, expiries."""
    kinds = [kind for kind, _ in budgets(key)]
    return {
        "periods": [period_name(kind, now) for kind in kinds],
        "since": [period_start(kind, now) for kind in kinds],
        "expires": [next_period_start(kind, now) + SPENT_GRACE for kind in kinds],
    }


def _call(engine: Engine, function: Any, params: dict[str, Any]) -> Any:
    """Call one of migration 0008's functions in a transaction of its own (autocommit: no BEGIN and
    no COMMIT round trips); its result."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.execute(function, params).scalar()
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        first = str(exc).splitlines()[0]
        raise LimitsUnavailable(f"the limits and budgets in PostgreSQL did not answer ({first})") from exc


def _ticket() -> str:
    return secrets.token_hex(12)
