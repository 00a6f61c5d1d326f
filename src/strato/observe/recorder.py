"""Writes traces (and the audit log's request-path entries) off the request path: the gateway hands
an item over in O(1), a writer thread stores them in batches. `close()` drains the queue, so a clean
shutdown loses nothing. On a crash (`kill -9`) at most the last `flush_interval` seconds are lost,
except for items handed over with `submit_durable`, which are committed before their future is done
(`observe.durable`; the spend journal always).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from strato.store import Store
from strato.types import Trace

log = logging.getLogger(__name__)


@dataclass
class _Flush:
    """Asks the writer to store what it holds now, not at the end of the interval; done once stored."""

    done: Future[None] = field(default_factory=Future)

    def set(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


_STOP = object()
T = TypeVar("T")


class BatchWriter(Generic[T]):
    """Stores items of one kind (`what`, for log messages) through `write`, in batches, on a thread."""

    def __init__(
        self,
        write: Callable[[list[T]], None],
        *,
        what: str,
        flush_interval: float = 0.2,
        batch_size: int = 500,
        salvage: Callable[[T, Exception], T | None] | None = None,
    ) -> None:
        """`salvage(item, error)`: what to store instead of an item that cannot be stored (a
        stripped copy that still records it), or None to drop it."""
        self._write = write
        self._salvage = salvage
        self.salvaged = 0  # items stored as their salvaged copy
        self.dropped = 0  # items given up on (logged each time)
        self.what = what
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue[T | _Flush | object] = queue.SimpleQueue()
        self._wake = threading.Event()  # set when a batch should be written before the interval ends
        self._thread = threading.Thread(target=self._write_loop, name=f"strato writer ({what})", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, item: T) -> None:
        """Accept an item for writing. Never blocks. The writer wakes for the first item of a batch
        and then at the end of the interval (or once a batch is full), not for every item: each
        wake-up would take the GIL from the event loop."""
        self._queue.put(item)
        if self._queue.qsize() >= self.batch_size - 1:  # the writer holds a batch's first item
            self._wake.set()

    def submit_durable(self, item: T) -> Future[None]:
        """Accept an item to be written at once: the future is done when it is committed. Items that
        arrive meanwhile share the transaction (a group commit), so the wait is one commit, however
        many requests are waiting. A clean shutdown still stores it; a database that is down keeps
        the future pending while the writer retries (callers wait with a timeout)."""
        marker = _Flush()
        self._queue.put(item)
        self._urgent(marker)
        return marker.done

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is stored."""
        marker = _Flush()
        self._urgent(marker)
        try:
            marker.done.result(timeout)
        except FutureTimeout:
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Store everything still queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._urgent(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error(
                "%s writer did not finish within %.0fs; what is still queued is lost", self.what, timeout
            )

    def _urgent(self, marker: object) -> None:
        """Queue a marker somebody waits for (a flush, a stop): the writer stops gathering a batch."""
        self._queue.put(marker)
        self._wake.set()

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()  # an idle writer sleeps here
            if not (first is _STOP or isinstance(first, _Flush)):
                self._wake.wait(self.flush_interval)  # gather a batch, unless someone waits
            self._wake.clear()  # cleared before draining: a marker queued from now on sets it again
            pending: list[T] = []
            markers: list[_Flush] = []
            item: object = first
            while True:
                if item is _STOP:
                    stopping = True  # what follows the stop is still stored (a request finishing)
                elif isinstance(item, _Flush):
                    markers.append(item)
                else:
                    pending.append(item)  # type: ignore[arg-type]
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            for start in range(0, len(pending), self.batch_size):
                self._store(pending[start : start + self.batch_size], final=stopping)
            for marker in markers:
                marker.set()

    def _store(self, batch: list[T], *, final: bool) -> None:
        """Write a batch, retrying while the database is unavailable (keeping the items in memory).
        Any other failure is some item's fault: the items are written one by one, so the others are
        stored, and an item that fails on its own is salvaged or, failing that, dropped and logged.
        One bad item never holds up the rest, and the queue keeps draining."""
        delay = 0.1
        for attempt in range(1000):
            try:
                self._write(batch)
                return
            except Exception as exc:
                if not unavailable(exc):
                    self._isolate(batch, exc, final=final)
                    return
                if final and attempt >= 5:
                    log.error("could not store %d %s at shutdown: %s", len(batch), self.what, exc)
                    self.dropped += len(batch)
                    return
                log.warning("storing %d %s failed (%s); retrying in %.1fs", len(batch), self.what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.dropped += len(batch)

    def _isolate(self, batch: list[T], exc: Exception, *, final: bool) -> None:
        if len(batch) > 1:
            for item in batch:
                self._store([item], final=final)
            return
        item = batch[0]
        replacement = self._salvage(item, exc) if self._salvage is not None else None
        if replacement is not None:
            try:
                self._write([replacement])
                self.salvaged += 1
                log.error("stored a stripped copy of one of the %s, which failed (%s)", self.what, exc)
                return
            except Exception as again:
                exc = again
        self.dropped += 1
        log.error("dropped one of the %s, which could not be stored: %s", self.what, exc)


def unavailable(exc: BaseException) -> bool:
    """Whether a write failed because the database could not be reached or was busy (worth
    retrying as it is), rather than because of what was written."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout | OSError)


class TraceRecorder(BatchWriter[Trace]):
    def __init__(self, store: Store, *, flush_interval: float = 0.2, batch_size: int = 500) -> None:
        super().__init__(
            store.record,
            what="traces",
            flush_interval=flush_interval,
            batch_size=batch_size,
            salvage=stripped_trace,
        )
        self.store = store


def stripped_trace(trace: Trace, error: Exception) -> Trace:
    """A trace that could not be stored, kept as what strato itself knows of the request (when,
    which model, status, tokens, cost) without what the client sent, which is what failed."""
    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:500]
    return dataclasses.replace(
        trace,
        request={"unstorable": reason},
        completion=None,
        attempts=[],
        route=None,
        spans=[],
    )
