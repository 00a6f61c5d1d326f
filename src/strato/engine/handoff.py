"""Handing the engine thread's tokens to the event loop: one wake-up per engine step, not per token.

The engine thread emits each request's text as it samples. Waking the event loop for every token
(`call_soon_threadsafe` once per token per stream) costs a self-pipe write, a loop iteration and a
GIL hand-over per token; at 8 streams on 2 cores those cycles come straight out of llama.cpp's
decode. Instead the engine thread drops its items into the loop's `Outbox` during a step and the
batcher flushes every outbox once the step is done: one wake-up delivers the step's tokens of all
the streams of that loop.

On the loop's side each request reads a `Mailbox`. A reader that falls behind (a slow client, a
busy loop) takes every text chunk already waiting as one chunk, so the per-chunk work downstream
(guards, trace, server-sent event) is done once per read, not once per token; the text, token log
probabilities and final chunk are unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeGuard

from strato.types import Chunk

Item = Chunk | BaseException | None  # a chunk, the failure that ends the stream, or its end (None)


class Mailbox:
    """One request's items on the event loop's side, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def deliver(self, item: Item) -> None:
        """Event loop only (the outbox's drain)."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Item:
        """The next item; text chunks already waiting behind it come merged into one."""
        while not self._items:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not _plain(item) or not self._items or not _plain(self._items[0]):
            return item
        texts, logprobs = [item.text], list(item.logprobs)
        while self._items and _plain(following := self._items[0]):
            self._items.popleft()
            texts.append(following.text)
            logprobs.extend(following.logprobs)
        return Chunk(text="".join(texts), logprobs=tuple(logprobs))


def _plain(item: Item) -> TypeGuard[Chunk]:
    """A chunk of text (and its tokens' log probabilities) only: not the last one of the stream."""
    return (
        isinstance(item, Chunk) and item.finish_reason is None and item.usage is None and item.compute is None
    )


class Outbox:
    """Items the engine thread emitted for mailboxes on one event loop, delivered at `flush`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: list[tuple[Mailbox, Item, Callable[[], None]]] = []
        self._scheduled = False

    def sender(self, mailbox: Mailbox, gone: Callable[[], None]) -> Callable[[Item], None]:
        """What the engine thread calls to emit into `mailbox`; `gone` runs (on the engine thread)
        when the event loop has closed and nobody will read it."""

        def emit(item: Item) -> None:
            with self._lock:
                self._pending.append((mailbox, item, gone))

        return emit

    def flush(self) -> None:
        """Engine thread, after a step: wake the loop once for what the step emitted. When the loop
        has closed, the waiting items' requests are told they are gone instead."""
        with self._lock:
            if not self._pending or self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the event loop is gone (shutdown): nobody is listening
            with self._lock:
                pending, self._pending = self._pending, []
            for _, _, gone in pending:
                gone()

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._scheduled = False
        for mailbox, item, _ in pending:
            mailbox.deliver(item)
