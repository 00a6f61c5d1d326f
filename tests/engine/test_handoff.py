"""The engine thread's hand-off to the event loop: one wake-up per step, merged reads, closed loops."""

from __future__ import annotations

import asyncio
import threading

from strato.engine.handoff import Item, Mailbox, Outbox
from strato.types import Chunk, TokenLogprob, Usage


def token(text: str) -> TokenLogprob:
    return TokenLogprob(token=text, logprob=-0.5, bytes=tuple(text.encode()), top=())


async def test_a_step_is_delivered_by_one_wake_up_and_a_late_reader_gets_it_merged() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox(loop)
    first, second = Mailbox(loop), Mailbox(loop)
    emit_first = outbox.sender(first, gone=lambda: None)
    emit_second = outbox.sender(second, gone=lambda: None)
    wakeups = 0
    drain = outbox._drain

    def counted() -> None:
        nonlocal wakeups
        wakeups += 1
        drain()

    outbox._drain = counted  # type: ignore[method-assign]

    def engine_step() -> None:  # as the engine thread does: emit during a step, flush after it
        for text in ("Hel", "lo", ", wor", "ld"):
            emit_first(Chunk(text=text, logprobs=(token(text),)))
        emit_second(Chunk(text="other"))
        emit_first(Chunk(text="", finish_reason="stop", usage=Usage(1, 4)))
        emit_first(None)
        emit_second(ValueError("failed"))
        outbox.flush()

    thread = threading.Thread(target=engine_step)
    thread.start()
    thread.join()
    merged = await first.get()
    assert wakeups == 1
    assert merged == Chunk(
        text="Hello, world", logprobs=tuple(token(t) for t in ("Hel", "lo", ", wor", "ld"))
    )
    last = await first.get()
    assert isinstance(last, Chunk) and last.finish_reason == "stop" and last.text == ""
    assert await first.get() is None
    assert await second.get() == Chunk(text="other")
    assert isinstance(await second.get(), ValueError)


async def test_a_waiting_reader_wakes_with_the_first_item() -> None:
    loop = asyncio.get_running_loop()
    outbox = Outbox(loop)
    mailbox = Mailbox(loop)
    emit = outbox.sender(mailbox, gone=lambda: None)
    reader = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    emit(Chunk(text="a"))
    await asyncio.to_thread(outbox.flush)
    assert await reader == Chunk(text="a")


def test_a_closed_loop_tells_every_waiting_request_it_is_gone() -> None:
    loop = asyncio.new_event_loop()
    outbox = Outbox(loop)
    gone: list[str] = []
    items: list[Item] = [Chunk(text="x"), None]
    for name in ("a", "b"):
        emit = outbox.sender(Mailbox(loop), gone=lambda name=name: gone.append(name))  # type: ignore[misc]
        for item in items:
            emit(item)
    loop.close()
    outbox.flush()
    assert sorted(set(gone)) == ["a", "b"]
    told = len(gone)
    outbox.flush()  # nothing left to deliver: nobody is told twice
    assert len(gone) == told
