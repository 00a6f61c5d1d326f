"""The batched trace writer, on a real SQLite store."""

from __future__ import annotations

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

    def record(self, items: Sequence[Trace]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        self.batches.append(len(items))
        super().record(items)


def test_writes_in_batches_and_flush_waits(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path}/r.db")
    recorder = TraceRecorder(store, flush_interval=0.5, batch_size=100)
    for i in range(250):
        recorder.submit(trace(i))
    assert recorder.flush()
    assert store.count() == 250
    assert len(store.batches) < 10  # batched, not one transaction per trace
    recorder.close()


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
