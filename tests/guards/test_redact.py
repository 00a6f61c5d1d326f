"""Redaction with stable placeholders, and the caller's values put back into the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from strato.config import GuardsSettings
from strato.guards.pii import PIIGuard
from strato.guards.step import Guarded, GuardSet
from strato.guards.verdict import ScanContext
from strato.types import Chunk, Generation, GenerationRequest, Message, SamplingParams, Usage


def test_same_value_same_placeholder_and_round_trip() -> None:
    guard = PIIGuard(GuardsSettings())
    context = ScanContext()
    text = "Ann is ann@example.com, Bob is bob@example.com; cc ann@example.com, card 4111111111111111"
    verdict = guard.scan_now(text, context)
    assert verdict.action == "redact"
    assert verdict.text == (
        "Ann is <EMAIL_ADDRESS_1>, Bob is <EMAIL_ADDRESS_2>; cc <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    )
    answer = "Sure: <EMAIL_ADDRESS_2> and <EMAIL_ADDRESS_1> (card <CREDIT_CARD_1>, not <PERSON_9>)."
    assert context.placeholders.restore(answer) == (
        "Sure: bob@example.com and ann@example.com (card 4111111111111111, not <PERSON_9>)."
    )


def test_placeholders_are_per_request() -> None:
    guard = PIIGuard(GuardsSettings())
    first, second = ScanContext(), ScanContext()
    guard.scan_now("a@example.com", first)
    assert guard.scan_now("b@example.com", second).text == "<EMAIL_ADDRESS_1>"
    assert second.placeholders.restore("<EMAIL_ADDRESS_1>") == "b@example.com"


def request(*contents: str) -> GenerationRequest:
    messages = tuple(Message(role="user", content=c) for c in contents)
    return GenerationRequest(model="m", params=SamplingParams(), messages=messages)


def enforcing(**pii: object) -> GuardsSettings:
    return GuardsSettings.model_validate({"pii": {"enforce": True, **pii}})


def guard_input(settings: GuardsSettings, request: GenerationRequest) -> Guarded:
    """The input-guards step with the PII guard alone."""
    return asyncio.run(GuardSet(settings, [PIIGuard(settings)]).check_input(request, None))


def test_messages_share_placeholders_and_the_answer_is_restored() -> None:
    guarded = guard_input(enforcing(), request("I am ann@example.com", "again: ann@example.com"))
    assert guarded.request.messages is not None
    assert [m.content for m in guarded.request.messages] == [
        "I am <EMAIL_ADDRESS_1>",
        "again: <EMAIL_ADDRESS_1>",
    ]
    result = guarded.answer(Generation(text="Hello <EMAIL_ADDRESS_1>", finish_reason="stop", usage=Usage()))
    assert result.text == "Hello ann@example.com"
    assert guarded.decisions[0]["findings"][0]["type"] == "EMAIL_ADDRESS"


def test_a_streamed_placeholder_cut_in_two_is_restored() -> None:
    guarded = guard_input(enforcing(), request("I am ann@example.com"))

    async def chunks() -> AsyncGenerator[Chunk, None]:
        for text in ["Hi <EMAIL", "_ADDRESS", "_1>, and <", "b> stays"]:
            yield Chunk(text=text)
        yield Chunk(text="", finish_reason="stop")

    async def collect() -> str:
        return "".join([c.text async for c in guarded.chunks(chunks())])

    assert asyncio.run(collect()) == "Hi ann@example.com, and <b> stays"


def test_not_enforced_leaves_the_request_alone() -> None:
    original = request("I am ann@example.com")
    guarded = guard_input(GuardsSettings(), original)
    assert guarded.request is original and guarded.decisions == []
