"""Rate limits and budgets shared through the machine's Redis and PostgreSQL: the Lua scripts and the
SQL, each "replica" with its own connection, with an explicit clock and under real concurrency."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strato.auth import Authority, BudgetExceeded, Grant, KeySpec, KeyStore, RateLimited, VirtualKey
from strato.auth.journal import SpendJournal
from strato.auth.limits import (
    InProcessLedger,
    Ledger,
    Limiter,
    LimitsUnavailable,
    SlidingWindowLimiter,
    next_period_start,
    period_start,
)
from strato.auth.postgres import PostgresLedger, PostgresLimiter
from strato.auth.redis import RedisLedger, RedisLimiter, connect
from strato.auth.shared import limits_backend
from strato.config import ConfigError, Settings, load_settings
from strato.store.sql import SQLStore
from strato.types import GenerationRequest, Message, Price, SamplingParams
from tests.auth.conftest import REDIS_URL
from tests.support.upstream import free_port

T = float(int(time.time()))  # a whole second, so waits come out exact
NOON = period_start("day", time.time()) + 12 * 3600  # today, UTC: spend counters expire after it


@dataclass
class Replicas:
    """Makes limiters and ledgers as separate gateway processes would: each with its own connection,
    all counting in one place."""

    url: str  # the store's database: keys and traces
    limiter_for: Callable[[], Limiter]
    ledger_for: Callable[[float], Ledger]
    opened: list[Limiter | Ledger] = field(default_factory=list)

    def limiter(self) -> Limiter:
        self.opened.append(made := self.limiter_for())
        return made

    def ledger(self, hold_seconds: float = 900.0) -> Ledger:
        self.opened.append(made := self.ledger_for(hold_seconds))
        return made

    def record_spend(self, key_id: str, cost: float, at: float) -> None:
        """A settled request in the spend journal, as a gateway's auth step commits it."""
        journal = SpendJournal(SQLStore.open(self.url).engine)
        assert journal.settle(key_id, uuid.uuid4().hex, cost, at).result(10) is None
        journal.close()
        journal.engine.dispose()


@pytest.fixture(params=["redis", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replicas]:
    made: Replicas
    if request.param == "redis":
        prefix: str = request.getfixturevalue("limits_prefix")
        url = f"sqlite:///{tmp_path / 'strato.db'}"
        keys = KeyStore.open(url)
        spent = SpendJournal(keys.engine).spent  # reads only: its writer is never used
        made = Replicas(
            url,
            lambda: RedisLimiter(connect(REDIS_URL), prefix),
            lambda hold: RedisLedger(connect(REDIS_URL), spent, prefix, hold),
        )
    else:
        url = request.getfixturevalue("postgres_url")
        keys = KeyStore.open(url)
        made = Replicas(
            url,
            lambda: PostgresLimiter(SQLStore.open(url).engine),
            lambda hold: PostgresLedger(SQLStore.open(url).engine, hold),
        )
    yield made
    for opened in made.opened:
        opened.close()
    keys.close()


def new_key(**limits: float) -> VirtualKey:
    return VirtualKey(f"key-{secrets.token_hex(6)}", "k", **limits)  # type: ignore[arg-type]


def test_rpm_counts_a_sliding_minute_across_replicas(replicas: Replicas) -> None:
    a, b, key = replicas.limiter(), replicas.limiter(), new_key(rpm=2)
    assert a.admit(key, T, "t1") is None
    assert b.admit(key, T + 10, "t2") is None
    assert a.admit(key, T + 20, "t3") == 40.0  # the first request leaves the window at +60
    assert b.admit(key, T + 20, "t4") == 40.0
    assert b.admit(key, T + 60.5, "t5") is None


def test_tpm_counts_used_tokens_across_replicas(replicas: Replicas) -> None:
    a, b, key = replicas.limiter(), replicas.limiter(), new_key(tpm=100)
    assert a.admit(key, T) is None
    a.record(key, 80, T)
    assert b.admit(key, T + 1) is None
    b.record(key, 30, T + 1)
    assert a.admit(key, T + 2) == 58.0  # once the first 80 tokens leave the window
    assert b.admit(key, T + 61) is None


def test_a_released_request_gives_its_count_back(replicas: Replicas) -> None:
    a, b, key = replicas.limiter(), replicas.limiter(), new_key(rpm=1)
    assert a.admit(key, T, "first") is None
    assert b.admit(key, T + 1, "second") == 59.0
    b.release(key, "first")  # refused after admission, by another replica's ledger
    assert a.admit(key, T + 2, "third") is None
    assert b.admit(key, T + 3, "fourth") is not None


def test_rpm_is_exact_under_concurrency(replicas: Replicas) -> None:
    limiters, key = [replicas.limiter(), replicas.limiter()], new_key(rpm=10)
    start = threading.Barrier(40)

    def one(i: int) -> bool:
        start.wait()
        return limiters[i % 2].admit(key, T + i / 1000, f"t{i}") is None

    with ThreadPoolExecutor(40) as pool:
        assert sum(pool.map(one, range(40))) == 10


def test_budget_holds_worst_case_then_settles_real_cost(replicas: Replicas) -> None:
    a, b, key = replicas.ledger(), replicas.ledger(), new_key(budget_daily=10.0)
    assert a.reserve(key, 6.0, NOON, "r1") is None
    assert b.reserve(key, 6.0, NOON, "r2") == 12 * 3600  # held 6 + 6 > 10: wait for midnight UTC
    b.settle(key, 6.0, 1.0, NOON, "r1")  # it cost 1
    assert b.reserve(key, 6.0, NOON, "r3") is None
    a.settle(key, 6.0, 0.0, NOON, "r3")  # failed: costs nothing
    assert a.reserve(key, 9.0, NOON, "r4") is None
    assert b.reserve(key, 0.5, NOON, "r5") == 12 * 3600  # 1 spent + 9 held


def test_budget_starts_from_the_journaled_spend(replicas: Replicas) -> None:
    key = new_key(budget_monthly=5.0)
    replicas.record_spend(key.id, 4.0, period_start("month", NOON))
    replicas.record_spend(key.id, 100.0, period_start("month", NOON) - 1)  # last month
    ledger = replicas.ledger()
    assert ledger.reserve(key, 2.0, NOON, "r1") == next_period_start("month", NOON) - NOON
    assert ledger.reserve(key, 1.0, NOON, "r2") is None
    ledger.settle(key, 1.0, 1.0, NOON, "r2")
    replicas.record_spend(key.id, 1.0, NOON)  # its entry: read once per period, not counted twice
    assert replicas.ledger().reserve(key, 0.01, NOON, "r3") is not None


def test_the_tighter_of_day_and_month_refuses(replicas: Replicas) -> None:
    ledger = replicas.ledger()
    month_bound = new_key(budget_daily=10.0, budget_monthly=6.0)
    assert ledger.reserve(month_bound, 7.0, NOON, "r1") == next_period_start("month", NOON) - NOON
    assert ledger.reserve(month_bound, 5.0, NOON, "r2") is None
    day_bound = new_key(budget_daily=10.0, budget_monthly=100.0)
    assert ledger.reserve(day_bound, 11.0, NOON, "r3") == 12 * 3600
    assert ledger.reserve(day_bound, 10.0, NOON, "r4") is None


def test_a_hold_lapses_when_its_request_never_settles(replicas: Replicas) -> None:
    crashed, alive, key = replicas.ledger(hold_seconds=1), replicas.ledger(), new_key(budget_daily=10.0)
    assert crashed.reserve(key, 6.0, NOON, "lost") is None  # and the replica dies mid-request
    assert alive.reserve(key, 6.0, NOON + 0.5, "r2") is not None
    assert alive.reserve(key, 6.0, NOON + 2, "r3") is None


def test_budget_is_exact_under_concurrency(replicas: Replicas) -> None:
    """100 concurrent requests on two replicas, budget for 10: 10 run, however they interleave."""
    ledgers, key = [replicas.ledger(), replicas.ledger()], new_key(budget_daily=20.0)
    start = threading.Barrier(100)

    def one(i: int) -> bool:
        start.wait()
        ledger = ledgers[i % 2]
        if ledger.reserve(key, 2.0, NOON, f"r{i}") is not None:
            return False
        ledger.settle(key, 2.0, 2.0, NOON, f"r{i}")
        return True

    with ThreadPoolExecutor(100) as pool:
        assert sum(pool.map(one, range(100))) == 10
    assert ledgers[0].reserve(key, 0.01, NOON, "after") is not None


PRICE = Price(input=0.0, output=1_000_000.0)  # $1 a generated token


def ask(auth: Authority, key: VirtualKey) -> None:
    request = GenerationRequest("m", params=SamplingParams(max_tokens=3), messages=(Message("user", "hi"),))
    auth.admit(key, request, PRICE, None)


def rpm_counts_only_admitted_requests(keys: KeyStore, limiter: Limiter, ledger: Ledger) -> None:
    auth = Authority("master", keys, limiter, ledger, clock=lambda: NOON)
    key, _ = keys.create(KeySpec(name="a", rpm=2, budget_daily=4.0))  # a request holds $3
    ask(auth, key)
    with pytest.raises(BudgetExceeded):
        ask(auth, key)  # refused by the budget: no rpm count
    unpriced = GenerationRequest("m", SamplingParams(), messages=(Message("user", "x"),))
    given_back = auth.release(auth.admit(key, unpriced, None, None))  # a guard refused it: no rpm count
    if given_back is not None:
        given_back.result(5)  # shared limits give the count back on a thread; the next request follows
    auth.admit(key, unpriced, None, None)
    with pytest.raises(RateLimited):
        auth.admit(key, unpriced, None, None)


def test_rpm_counts_only_admitted_requests(replicas: Replicas) -> None:
    keys = KeyStore.open(replicas.url)
    try:
        rpm_counts_only_admitted_requests(keys, replicas.limiter(), replicas.ledger())
    finally:
        keys.close()


def test_rpm_counts_only_admitted_requests_in_process(tmp_path: Path) -> None:
    keys = KeyStore.open(f"sqlite:///{tmp_path / 'strato.db'}")
    try:
        rpm_counts_only_admitted_requests(keys, SlidingWindowLimiter(), InProcessLedger(keys.spent))
    finally:
        keys.close()


def test_an_unreachable_store_refuses_with_503_and_never_fails_an_answer(tmp_path: Path) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    keys = KeyStore.open(f"sqlite:///{tmp_path / 'strato.db'}")
    limiter, ledger = RedisLimiter(connect(nowhere)), RedisLedger(connect(nowhere), keys.spent)
    auth = Authority("master", keys, limiter, ledger, clock=lambda: NOON)
    key, _ = keys.create(KeySpec(name="a", rpm=2, budget_daily=4.0))
    with pytest.raises(LimitsUnavailable) as caught:
        ask(auth, key)
    assert caught.value.status == 503 and caught.value.code == "limits_unavailable"
    auth.settle(Grant(key.id, key, 3.0, "t"), 10, 1.0)  # logged, not raised: the answer is out
    auth.close()


def test_the_backend_follows_the_configuration() -> None:
    def backend(**env: str) -> str:
        return limits_backend(load_settings(environ=env))

    assert backend() == "process"
    assert backend(STRATO_REDIS_URL=REDIS_URL) == "redis"
    assert backend(STRATO_DATABASE_URL="postgresql://u@h/db") == "postgresql"
    assert backend(STRATO_DATABASE_URL="postgresql://u@h/db", STRATO_REDIS_URL=REDIS_URL) == "redis"
    forced = Settings.model_validate({"limits": {"backend": "postgresql"}})
    with pytest.raises(ConfigError, match="not"):
        limits_backend(forced)
