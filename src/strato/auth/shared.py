"""Pick where keys' rate limits and budgets are counted (`limits.backend`): in Redis or PostgreSQL,
shared by every gateway replica, or in this process."""

from __future__ import annotations

from strato.auth.journal import SpendJournal
from strato.auth.keys import KeyStore
from strato.auth.limits import InProcessLedger, Ledger, Limiter, SlidingWindowLimiter
from strato.config import ConfigError, Settings
from strato.store.database import is_postgres


def limits_backend(settings: Settings) -> str:
    """`redis`, `postgresql` or `process`: what `limits.backend` (maybe `auto`) means here."""
    chosen = settings.limits.backend
    postgres = is_postgres(settings.store.resolved_url())
    if chosen == "auto":
        return "redis" if settings.cache.redis_url else "postgresql" if postgres else "process"
    if chosen == "redis" and not settings.cache.redis_url:
        raise ConfigError("limits.backend is redis, but no Redis is configured (cache.redis_url)")
    if chosen == "postgresql" and not postgres:
        raise ConfigError("limits.backend is postgresql, but the store is not (store.database_url)")
    return chosen


def open_limits(settings: Settings, keys: KeyStore, journal: SpendJournal) -> tuple[Limiter, Ledger]:
    """The limiter and ledger for `settings`; budgets start each period from the spend `journal`
    in `keys`' database (PostgreSQL's functions read it there themselves)."""
    backend = limits_backend(settings)
    if backend == "redis":
        from strato.auth.redis import RedisLedger, RedisLimiter, connect

        assert settings.cache.redis_url is not None
        client, prefix = connect(settings.cache.redis_url), settings.limits.redis_prefix
        ledger = RedisLedger(client, journal.spent, prefix, settings.limits.hold_seconds)
        return RedisLimiter(client, prefix), ledger
    if backend == "postgresql":
        from strato.auth.postgres import PostgresLedger, PostgresLimiter

        return PostgresLimiter(keys.engine), PostgresLedger(keys.engine, settings.limits.hold_seconds)
    return SlidingWindowLimiter(), InProcessLedger(journal.spent, journal.open_holds)
