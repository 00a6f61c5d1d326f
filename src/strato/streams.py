"""A stream whose end always runs.

A generator function runs its `finally` only once it has started: closed before its first item (a
client that left before the response began), it leaves what it wraps open (an upstream
connection, an engine slot, a budget hold, an unrecorded trace). Every layer of the streaming
path that wraps another stream wraps it in a `Stream`, naming what it wraps; closing the outermost
closes every layer below, started or not, exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Stream(AsyncGenerator[T, None], Generic[T]):
    """`body`'s items. Closing (or reaching the end, or a failure) closes `body`, then each stream
    in `wraps` (what `body` reads from), then calls `on_close`, once."""

    def __init__(
        self,
        body: AsyncGenerator[T, None],
        *wraps: AsyncGenerator[Any, None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._body = body
        self._wraps = wraps
        self._on_close = on_close
        self.started = False  # whether anyone asked for an item
        self._closed = False

    async def asend(self, value: None) -> T:
        self.started = True
        try:
            return await self._body.asend(value)
        except BaseException:
            await self.aclose()
            raise

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> T:
        await self.aclose()
        raise typ if val is None else val

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._body.aclose()
        finally:
            try:
                for inner in self._wraps:
                    await inner.aclose()
            finally:
                if self._on_close is not None:
                    self._on_close()
