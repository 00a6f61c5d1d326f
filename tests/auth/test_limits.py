"""Rate limits and budgets, with an explicit clock."""

from __future__ import annotations

from datetime import UTC, datetime

from strato.auth import InProcessLedger, SlidingWindowLimiter, VirtualKey

NOON = datetime(2026, 3, 31, 12, tzinfo=UTC).timestamp()


def test_rpm_counts_a_sliding_minute() -> None:
    limiter, key = SlidingWindowLimiter(), VirtualKey("k", "k", rpm=2)
    assert limiter.admit(key, NOON) is None
    assert limiter.admit(key, NOON + 10) is None
    assert limiter.admit(key, NOON + 20) == 40.0  # the first request leaves the window at +60
    assert limiter.admit(key, NOON + 60.5) is None


def test_tpm_counts_used_tokens() -> None:
    limiter, key = SlidingWindowLimiter(), VirtualKey("k", "k", tpm=100)
    assert limiter.admit(key, NOON) is None
    limiter.record(key, 80, NOON)
    assert limiter.admit(key, NOON + 1) is None
    limiter.record(key, 30, NOON + 1)
    assert limiter.admit(key, NOON + 2) == 58.0  # once the first 80 tokens leave the window
    assert limiter.admit(key, NOON + 61) is None


def test_budget_holds_worst_case_then_settles_real_cost() -> None:
    ledger, key = InProcessLedger(lambda _id, _since: 0.0), VirtualKey("k", "k", budget_daily=10.0)
    assert ledger.reserve(key, 6.0, NOON) is None
    assert ledger.reserve(key, 6.0, NOON) == 12 * 3600  # held 6 + 6 > 10: wait for midnight UTC
    ledger.settle(key, 6.0, 1.0, NOON)  # it cost 1
    assert ledger.reserve(key, 6.0, NOON) is None
    ledger.settle(key, 6.0, 0.0, NOON)  # failed: costs nothing
    assert ledger.reserve(key, 9.0, NOON) is None


def test_budget_reloads_spend_from_the_store_each_period() -> None:
    asked: list[float] = []

    def spent(_id: str, since: float) -> float:
        asked.append(since)
        return 4.0 if since < datetime(2026, 4, 1, tzinfo=UTC).timestamp() else 0.0

    ledger, key = InProcessLedger(spent), VirtualKey("k", "k", budget_monthly=5.0)
    assert ledger.reserve(key, 2.0, NOON) == datetime(2026, 4, 1, tzinfo=UTC).timestamp() - NOON
    assert ledger.reserve(key, 1.0, NOON) is None
    assert asked == [datetime(2026, 3, 1, tzinfo=UTC).timestamp()]  # loaded once (a restart loads again)
    next_month = datetime(2026, 4, 2, tzinfo=UTC).timestamp()
    assert ledger.reserve(key, 3.0, next_month) is None  # 0 spent + 1 still held from March + 3
    assert ledger.reserve(key, 2.0, next_month) is not None
    assert asked[-1] == datetime(2026, 4, 1, tzinfo=UTC).timestamp()
