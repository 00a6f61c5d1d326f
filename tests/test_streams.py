"""`Stream`: closing ends every layer below, whether or not anyone read an item."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from strato.streams import Stream


class Source(AsyncGenerator[int, None]):
    """A stream holding a resource (as a connection would), released by `aclose` only."""

    def __init__(self, items: list[int]) -> None:
        self.items = items
        self.closed = 0

    async def asend(self, value: None) -> int:
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)

    async def athrow(self, typ: object, val: object = None, tb: object = None) -> int:
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed += 1


async def doubled(source: AsyncGenerator[int, None]) -> AsyncGenerator[int, None]:
    try:
        async for item in source:
            yield item * 2
    finally:
        await source.aclose()


async def test_a_generator_function_left_unread_leaks_what_it_wraps() -> None:
    """Why `Stream` exists: a generator closed before it started never runs its `finally`."""
    source = Source([1, 2])
    await doubled(source).aclose()
    assert source.closed == 0


async def test_closing_an_unread_stream_closes_what_it_wraps_once() -> None:
    source, ends = Source([1, 2]), []
    stream = Stream(doubled(source), source, on_close=lambda: ends.append("end"))
    await stream.aclose()
    await stream.aclose()
    assert source.closed == 1 and ends == ["end"] and not stream.started


async def test_a_stream_read_to_the_end_closes_once() -> None:
    source, ends = Source([1, 2]), []
    stream = Stream(doubled(source), source, on_close=lambda: ends.append("end"))
    assert [item async for item in stream] == [2, 4]
    await stream.aclose()
    assert ends == ["end"] and stream.started and source.closed >= 1


async def test_a_failing_body_closes_and_raises() -> None:
    async def failing(source: AsyncGenerator[int, None]) -> AsyncGenerator[int, None]:
        yield 1
        raise ValueError("upstream broke")

    source, ends = Source([]), []
    stream = Stream(failing(source), source, on_close=lambda: ends.append("end"))
    with pytest.raises(ValueError, match="upstream broke"):
        _ = [item async for item in stream]
    assert source.closed == 1 and ends == ["end"]
