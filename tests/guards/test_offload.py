"""Long texts are scanned off the event loop, and texts too long to scan are refused, not passed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from strato.config import GuardsSettings
from strato.guards.step import TextTooLongToScan, build_guards
from strato.types import GenerationRequest, Message, SamplingParams

DOCUMENT = "The quarterly report covers revenue, costs and the outlook for next year. " * 4_000  # 296k chars


def chat(text: str) -> GenerationRequest:
    return GenerationRequest(model="m", params=SamplingParams(), messages=(Message("user", text),))


async def loop_turns_during(work: asyncio.Future[object] | asyncio.Task[object]) -> int:
    """How many times the event loop ran another task while `work` was running."""
    turns = 0
    while not work.done():
        await asyncio.sleep(0)
        turns += 1
    await work
    return turns


async def test_a_long_document_is_scanned_on_a_worker_thread() -> None:
    settings = GuardsSettings.model_validate({"pii": {"enforce": True}})
    guards = build_guards(settings)
    threads: set[str] = set()
    pii = next(g for g in guards.guards if g.name == "pii")
    scan_now = pii.scan_now  # type: ignore[attr-defined]

    def recorded(*args: object) -> object:
        threads.add(threading.current_thread().name)
        return scan_now(*args)

    pii.scan_now = recorded  # type: ignore[attr-defined]
    task = asyncio.ensure_future(guards.check_input(chat(DOCUMENT + " mail me at john@example.com"), None))
    turns = await loop_turns_during(task)
    guarded = task.result()
    assert "<EMAIL_ADDRESS_1>" in (guarded.request.messages or ())[0].content  # still scanned, whole
    assert threads and all(name.startswith("strato-guards") for name in threads)
    assert turns > 10  # the loop kept serving while the scan ran
    guards.close()


async def test_a_chat_turn_is_scanned_in_place() -> None:
    guards = build_guards(GuardsSettings.model_validate({"pii": {"enforce": True}}))
    task = asyncio.ensure_future(guards.check_input(chat("mail me at john@example.com"), None))
    assert await loop_turns_during(task) <= 1  # no thread hop: done within the task's first step
    guards.close()


async def test_more_than_max_scan_chars_is_refused() -> None:
    guards = build_guards(GuardsSettings.model_validate({"max_scan_chars": 100_000}))
    with pytest.raises(TextTooLongToScan, match=r"296,000 characters.*100,000") as refused:
        await guards.check_input(chat(DOCUMENT), None)
    assert refused.value.status == 413 and refused.value.param == "messages"
    with pytest.raises(TextTooLongToScan):
        await guards.scan(DOCUMENT, "input")
