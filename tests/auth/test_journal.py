"""The spend journal on the real database: holds and settlements committed in groups, spend read
back per period, and the holds a dead gateway left running counted until they lapse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.auth.journal import SpendJournal, spend_ledger
from strato.auth.keys import VirtualKey
from strato.auth.limits import InProcessLedger
from strato.store.migrations import migrate
from strato.store.sql import SQLStore
from strato.types import Endpoint, Trace
from tests.postgres import database_url

__all__ = ["database_url"]

NOW = 1_800_000_000.0


@pytest.fixture
def journal(database_url: str) -> Iterator[SpendJournal]:
    made = SpendJournal(SQLStore.open(database_url).engine, hold_seconds=600)
    yield made
    made.close()
    made.engine.dispose()


async def test_settled_spend_is_read_back_per_period(journal: SpendJournal) -> None:
    await asyncio.wrap_future(journal.hold("k", "t1", 5.0, NOW))
    assert journal.settle("k", "t1", 1.25, NOW).result(10) is None
    assert journal.settle("k", "old", 9.0, NOW - 86400).result(10) is None
    assert journal.settle("other", "t2", 3.0, NOW).result(10) is None
    assert journal.spent("k", NOW - 60) == 1.25
    assert journal.spent("k", NOW - 2 * 86400) == 10.25
    assert journal.open_holds("k", NOW - 60, NOW) == []  # its own, and settled anyway


async def test_a_dead_gateways_unsettled_holds_count_until_they_lapse(journal: SpendJournal) -> None:
    dead = SpendJournal(journal.engine, hold_seconds=600)
    await asyncio.wrap_future(dead.hold("k", "running", 4.0, NOW))
    await asyncio.wrap_future(dead.hold("k", "done", 2.0, NOW))
    assert dead.settle("k", "done", 1.0, NOW).result(10) is None
    dead.close()  # the process "dies": "running" never settles
    await asyncio.wrap_future(
        journal.hold("k", "mine", 7.0, NOW)
    )  # this process's own: in its ledger's memory
    assert journal.open_holds("k", NOW - 60, NOW + 1) == [(4.0, NOW + 600)]
    assert journal.open_holds("k", NOW - 60, NOW + 601) == []

    key = VirtualKey("k", "k", budget_daily=10.0)
    ledger = InProcessLedger(journal.spent, journal.open_holds)
    # 1 settled + 4 held by the dead process: 5 of 10 left now, all but the 1 once the hold lapses
    assert ledger.reserve(key, 5.5, NOW + 1, "a") is not None
    assert ledger.reserve(key, 5.0, NOW + 1, "b") is None
    ledger.settle(key, 5.0, 0.0, NOW + 1, "b")
    assert ledger.reserve(key, 9.0, NOW + 601, "c") is None


async def test_concurrent_entries_share_commits(journal: SpendJournal) -> None:
    writes: list[int] = []
    write = journal._write

    def counting(entries: object) -> None:
        writes.append(len(entries))  # type: ignore[arg-type]
        write(entries)  # type: ignore[arg-type]

    journal._writer._write = counting  # type: ignore[method-assign]
    await asyncio.gather(*(asyncio.wrap_future(journal.hold("k", f"t{i}", 0.01, NOW)) for i in range(200)))
    assert sum(writes) == 200
    assert len(writes) < 100  # grouped: far fewer transactions than entries
    with journal.engine.connect() as conn:
        assert len(conn.execute(spend_ledger.select()).all()) == 200


async def test_entries_older_than_every_budget_period_are_pruned(journal: SpendJournal) -> None:
    assert journal.settle("k", "ancient", 1.0, time.time() - 70 * 86400).result(10) is None
    assert journal.settle("k", "recent", 2.0, time.time()).result(10) is None
    assert journal.prune(time.time()) == 1
    assert journal.spent("k", 0) == 2.0


def test_the_migration_seeds_the_journal_from_recent_traced_spend(tmp_path: Path) -> None:
    """A database from before the journal keeps this month's spend: it moves over from the traces."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = SQLStore.open(url).engine
    with engine.begin() as conn:  # undo 0015, as if the database predates it
        conn.exec_driver_sql("DROP TABLE spend_ledger")
        conn.exec_driver_sql("DELETE FROM strato_migrations WHERE name = '0015_spend_journal'")
    base = {"endpoint": Endpoint.CHAT, "requested_model": "m", "request": {}}
    SQLStore(engine).record(
        [
            Trace(id="a", started_at=time.time() - 3600, api_key="key-1", cost=1.5, **base),  # type: ignore[arg-type]
            Trace(id="b", started_at=time.time() - 40 * 86400, api_key="key-1", cost=9.0, **base),  # type: ignore[arg-type]
            Trace(id="c", started_at=time.time(), api_key="master", cost=5.0, **base),  # type: ignore[arg-type]
        ]
    )
    with engine.begin() as conn:
        assert migrate(conn) == ["0015_spend_journal"]  # later migrations stay applied
    journal = SpendJournal(engine)
    assert journal.spent("key-1", time.time() - 35 * 86400) == 1.5  # the 40-day-old trace stays out
    assert journal.spent("master", 0) == 0.0
    journal.close()
