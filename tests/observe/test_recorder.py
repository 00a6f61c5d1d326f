"""The batched trace writer, on a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from strato.observe.recorder import TraceRecorder
from strato.store.sql import SQLStore
from strato.types import Endpoint, Trace, TraceQuery


def trace(i: int) -> Trace:
    return Trace(
        id=f"t{i}", started_at=float(i), endpoint=Endpoint.CHAT, requested_model="m", request={"i": i}
    )


class CountingStore(SQLStore):
    """The real store, counting the transactions it is asked for and failing the first few."""

    def __init__(self, url: str, failures: int = 0) -> None:
        super().__init__(SQLStore.open(url).engine)
        self.batches: list[int] = []
        self.failures = failures
        self.written = threading.Event()  # set by each stored batch

    def record(self, items: Sequence[Trace]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        self.batches.append(len(items))
        super().record(items)
        self.written.set()


def test_writes_in_batches_and_flush_waits(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path}/r.db")
    recorder = TraceRecorder(store, flush_interval=0.5, batch_size=100)
    for i in range(250):
        recorder.submit(trace(i))
    assert recorder.flush()
    assert store.count() == 250
    assert len(store.batches) < 10  # batched, not one transaction per trace
    recorder.close()


def test_a_full_batch_is_written_without_waiting_out_the_interval(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path}/r.db")
    recorder = TraceRecorder(store, flush_interval=60, batch_size=50)
    for i in range(49):
        recorder.submit(trace(i))
    assert not store.batches  # an unfinished batch waits for the interval
    recorder.submit(trace(49))
    assert store.written.wait(10)
    assert store.batches == [50]
    for i in range(50, 170):
        recorder.submit(trace(i))
    recorder.close()
    assert store.count() == 170 and max(store.batches) <= 50


def test_close_drains_everything(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path}/r.db")
    recorder = TraceRecorder(store, flush_interval=60, batch_size=10_000)
    for i in range(1000):
        recorder.submit(trace(i))
    recorder.close()
    assert store.count() == 1000
    assert store.traces(TraceQuery(limit=1))[0].id == "t999"


def test_keeps_traces_while_the_database_is_down(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path}/r.db", failures=3)
    recorder = TraceRecorder(store, flush_interval=0.01)
    for i in range(50):
        recorder.submit(trace(i))
    assert recorder.flush(timeout=30)
    recorder.close()
    assert store.count() == 50


class OneBadRowStore(SQLStore):
    """The real store, refusing any batch holding the trace `bad` as a driver refuses a value it
    cannot encode (not a connection problem: retrying the same batch can never succeed)."""

    def __init__(self, url: str, bad: str, stripped_fails: bool = False) -> None:
        super().__init__(SQLStore.open(url).engine)
        self.bad = bad
        self.stripped_fails = stripped_fails

    def record(self, items: Sequence[Trace]) -> None:
        for t in items:
            if t.id == self.bad and ("unstorable" not in t.request or self.stripped_fails):
                raise ValueError("a value in this row cannot be encoded")
        super().record(items)


def test_one_bad_trace_does_not_hold_up_the_others(tmp_path: Path) -> None:
    store = OneBadRowStore(f"sqlite:///{tmp_path}/r.db", bad="t3")
    recorder = TraceRecorder(store, flush_interval=0.01)
    for i in range(10):
        recorder.submit(trace(i))
    assert recorder.flush(timeout=10)
    later = trace(99)
    recorder.submit(later)
    assert recorder.flush(timeout=10)
    assert store.count() == 11
    bad = store.trace("t3")
    assert bad is not None and bad.requested_model == "m"  # still recorded, without what failed
    assert bad.request["unstorable"].startswith("ValueError: a value in this row cannot be encoded")
    assert recorder.salvaged == 1 and recorder.dropped == 0
    recorder.close()


def test_a_trace_that_cannot_be_stored_at_all_is_dropped_and_counted(tmp_path: Path) -> None:
    store = OneBadRowStore(f"sqlite:///{tmp_path}/r.db", bad="t1", stripped_fails=True)
    recorder = TraceRecorder(store, flush_interval=0.01)
    for i in range(3):
        recorder.submit(trace(i))
    recorder.close()  # a clean shutdown still drains the queue
    assert store.count() == 2 and store.trace("t1") is None
    assert recorder.dropped == 1
