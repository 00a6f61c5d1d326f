"""Rate limits and budgets shared by every gateway process through Redis.

Each check-and-take is one Lua script, which Redis runs atomically: two replicas admitting the last
request of a minute, or holding the last dollar of a budget, at the same instant cannot both win.

Per key (the key id in braces, so a Redis Cluster keeps a key's counters on one node):
- `{id}:rpm`: a sorted set of the last minute's admitted requests (member: ticket, score: when);
- `{id}:tpm`: a sorted set of the last minute's answers (member: `<ticket>:<tokens>`, score: when);
- `{id}:spent:day:2026-03-31`, `{id}:spent:month:2026-03`: USD settled in the period, seeded from
  the key's traces when missing (a new period, or a Redis that lost its data), expiring a day after
  the period ends;
- `{id}:holds` (when each hold lapses) and `{id}:held` (its USD): worst-case costs of requests still
  running. A hold lapses after `hold_seconds`, so a replica that dies mid-request does not keep
  the budget blocked.

Calls are synchronous: the auth step runs on the event loop without an await, and a script on a
local Redis answers in well under a millisecond.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

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

SPENT_GRACE = 86400  # seconds a period's spend counter outlives the period

# KEYS: rpm, tpm. ARGV: now, rpm (-1: none), tpm (-1: none), ticket, window.
# Returns nil when admitted, else the seconds to wait (a string: Redis truncates Lua numbers).
ADMIT = """
local now, rpm, tpm, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if rpm >= 0 and redis.call('ZCARD', KEYS[1]) >= rpm then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(first[2]) + window - now)
end
if tpm >= 0 then
  local answers = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local total = 0
  for i = 1, #answers, 2 do total = total + tonumber(string.match(answers[i], ':(%d+)$')) end
  if total >= tpm then
    local excess, sum = total - tpm, 0
    for i = 1, #answers, 2 do
      sum = sum + tonumber(string.match(answers[i], ':(%d+)$'))
      if sum > excess then return tostring(tonumber(answers[i + 1]) + window - now) end
    end
  end
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
end
return nil
"""

# KEYS: holds, held, then the spend counter of each budgeted period. ARGV: now, amount, ticket,
# hold seconds, slack, then each period's budget. Returns nil when held, {'seed', i} when counter i
# is missing, {'over', i} when period i's budget cannot take the amount.
RESERVE = """
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {'seed', i - 2} end
end
local now, amount = tonumber(ARGV[1]), tonumber(ARGV[2])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, ticket in ipairs(lapsed) do
  redis.call('ZREM', KEYS[1], ticket)
  redis.call('HDEL', KEYS[2], ticket)
end
local held = 0
for _, value in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(value) end
for i = 3, #KEYS do
  local spent = tonumber(redis.call('GET', KEYS[i]))
  if spent + held + amount > tonumber(ARGV[i + 3]) + tonumber(ARGV[5]) then return {'over', i - 2} end
end
if amount > 0 then
  local seconds = tonumber(ARGV[4])
  redis.call('ZADD', KEYS[1], now + seconds, ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
  redis.call('EXPIRE', KEYS[1], math.ceil(seconds) + 1)
  redis.call('EXPIRE', KEYS[2], math.ceil(seconds) + 1)
end
return nil
"""

# KEYS: holds, held, then the spend counter of each budgeted period. ARGV: ticket, actual cost.
# Returns nil when settled, {'seed', i} when counter i is missing (nothing changed then).
SETTLE = """
local actual = tonumber(ARGV[2])
if actual > 0 then
  for i = 3, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then return {'seed', i - 2} end
  end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if actual > 0 then
  for i = 3, #KEYS do redis.call('INCRBYFLOAT', KEYS[i], ARGV[2]) end
end
return nil
"""


def connect(url: str) -> redis.Redis:
    """A client whose calls give up within a second: a slow Redis must not hang the event loop."""
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


class RedisLimiter:
    """rpm and tpm over a sliding minute, per key, counted in Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "strato:limits:") -> None:
        self._redis = client
        self._prefix = prefix
        self._admit = client.register_script(ADMIT)

    def admit(self, key: VirtualKey, now: float, ticket: str = "") -> float | None:
        if key.rpm is None and key.tpm is None:
            return None
        keys = [self._key(key, "rpm"), self._key(key, "tpm")]
        rpm = -1 if key.rpm is None else key.rpm
        tpm = -1 if key.tpm is None else key.tpm
        with _reachable():
            wait = self._admit(keys=keys, args=[repr(now), rpm, tpm, ticket or _ticket(), repr(WINDOW)])
        return None if wait is None else float(wait)

    def release(self, key: VirtualKey, ticket: str) -> None:
        if key.rpm is not None and ticket:
            with _reachable():
                self._redis.zrem(self._key(key, "rpm"), ticket)

    def record(self, key: VirtualKey, tokens: int, now: float) -> None:
        if key.tpm is None or tokens <= 0:
            return
        with _reachable(), self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key(key, "tpm"), {f"{_ticket()}:{tokens}": now})
            pipe.expire(self._key(key, "tpm"), int(WINDOW) + 1)
            pipe.execute()

    def close(self) -> None:
        self._redis.close()

    def _key(self, key: VirtualKey, name: str) -> str:
        return f"{self._prefix}{{{key.id}}}:{name}"


class RedisLedger:
    """Daily and monthly USD budgets, per key, held and settled in Redis. A period's spend starts from
    the key's traced costs (`spent(key_id, since)`), read when its counter is missing."""

    def __init__(
        self,
        client: redis.Redis,
        spent: Callable[[str, float], float],
        prefix: str = "strato:limits:",
        hold_seconds: float = 900.0,
    ) -> None:
        self._redis = client
        self._spent = spent
        self._prefix = prefix
        self._hold_seconds = hold_seconds
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)

    def reserve(self, key: VirtualKey, amount: float, now: float, ticket: str = "") -> float | None:
        periods = budgets(key)
        if not periods:
            return None
        args = [repr(now), repr(amount), ticket or _ticket(), repr(self._hold_seconds), repr(BUDGET_SLACK)]
        args += [repr(budget) for _, budget in periods]
        with _reachable():
            found = self._run(self._reserve, key, now, args)
        if found is None:
            return None
        kind = periods[found - 1][0]
        return next_period_start(kind, now) - now

    def settle(self, key: VirtualKey, reserved: float, actual: float, now: float, ticket: str = "") -> None:
        if budgets(key):
            with _reachable():
                self._run(self._settle, key, now, [ticket, repr(actual)])

    def close(self) -> None:
        self._redis.close()

    def _run(self, script: Any, key: VirtualKey, now: float, args: list[Any]) -> int | None:
        """Run `script` over the key's counters, seeding a missing counter from the traces and
        running it again; returns the index (1-based) of the period the script refused, if any."""
        periods = budgets(key)
        keys = [self._key(key, "holds"), self._key(key, "held")]
        keys += [self._key(key, "spent:" + period_name(kind, now)) for kind, _ in periods]
        for _ in range(len(periods) + 1):
            found = script(keys=keys, args=args)
            if found is None:
                return None
            verdict, index = found[0].decode(), int(found[1])
            if verdict == "over":
                return index
            self._seed(key, periods[index - 1][0], keys[index + 1], now)
        raise RuntimeError(f"the spend counters of key {key.id} keep disappearing from Redis")

    def _seed(self, key: VirtualKey, kind: str, counter: str, now: float) -> None:
        spent = self._spent(key.id, period_start(kind, now))
        expires = int(next_period_start(kind, now)) + SPENT_GRACE
        self._redis.set(counter, repr(spent), nx=True, exat=expires)  # another replica may be first

    def _key(self, key: VirtualKey, name: str) -> str:
        return f"{self._prefix}{{{key.id}}}:{name}"


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise LimitsUnavailable(f"the rate limits and budgets in Redis did not answer ({exc})") from exc


def _ticket() -> str:
    return secrets.token_hex(12)
