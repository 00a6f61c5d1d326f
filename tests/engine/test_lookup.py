"""Prompt-lookup decoding: the n-gram index drafts what followed the current suffix before, and the
engine keeps exactly the drafted tokens the sampler would have produced anyway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from strato.engine.batcher import Batcher
from strato.engine.lookup import DraftCost, Lookup, LookupOptions
from strato.providers.local import LlamaCppProvider
from strato.providers.registry import ModelTable
from strato.types import GenerationRequest, ResponseFormat
from tests.engine.conftest import SMOLLM, chat, entry, local
from tests.engine.test_batcher import assert_identical

ON = LookupOptions(max_draft=4, ngram=3, min_ngram=2)


def test_drafts_what_followed_the_longest_earlier_match() -> None:
    lookup = Lookup(ON, [1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 1, 2, 3])
    # "1 2 3" occurred at the start, followed by 4 5 9 2; "2 3" alone last occurred before 7 8.
    assert lookup.draft(10) == [4, 5, 9, 2]
    assert lookup.draft(2) == [4, 5]
    lookup.append(4)  # "2 3 4" still matches the start
    assert lookup.draft(10) == [5, 9, 2, 3]


def test_falls_back_to_shorter_suffixes_and_to_nothing() -> None:
    lookup = Lookup(ON, [5, 6, 7, 8, 6, 7])
    assert lookup.draft(3) == [8, 6, 7]  # only the 2-gram "6 7" occurred before
    lookup.append(42)
    assert lookup.draft(3) == []  # "7 42" is new
    assert Lookup(LookupOptions(max_draft=0), [1, 1, 1, 1]).draft(5) == []


def test_a_draft_may_run_into_the_present() -> None:
    lookup = Lookup(ON, [3, 3, 3])  # "3 3" ended at 2; what followed is the last token
    assert lookup.draft(4) == [3]


def test_draft_length_follows_acceptance_and_comes_back_after_misses() -> None:
    lookup = Lookup(LookupOptions(max_draft=8), [])
    assert lookup.length(0.4) == 1  # no record yet: a one-token probe
    for _ in range(10):
        lookup.observe(4, 4)
    assert lookup.length(0.4) == 8  # a request that copies drafts as far as allowed
    assert lookup.length(0.05) == 8
    lengths = []
    for _ in range(12):
        lookup.observe(4, 0)
        lengths.append(lookup.length(0.4))
    assert lengths == sorted(lengths, reverse=True) and lengths[0] < 8  # misses: drafts shrink...
    assert lengths[-1] == 0  # ...and stop...
    steps = 0
    while lookup.length(0.4) == 0:
        lookup.observe(0, 0)  # ...until, after `probe_every` steps without a draft, one probe
        steps += 1
    assert steps == lookup.options.probe_every
    assert lookup.length(0.4) == 1
    lookup.observe(1, 0)  # the probe missed: back to waiting, the record unchanged by the wait
    assert lookup.length(0.4) == 0
    for _ in range(6):
        lookup.observe(1, 1)  # probes that hit: the request copies again, drafts grow
        lookup.idle = lookup.options.probe_every
    assert lookup.length(0.4) > 1


def test_draft_cost_is_measured_from_single_sequence_steps() -> None:
    cost = DraftCost(initial=0.4)
    assert cost.share == 0.4
    cost.observe(9, 0.040)  # nothing to compare with yet
    assert cost.share == 0.4
    for _ in range(5):
        cost.observe(1, 0.010)
        cost.observe(9, 0.040)  # 8 more tokens cost 30 ms: 3.75 ms each, 0.375 of a step
    assert abs(cost.share - 0.375) < 0.01
    cost.observe(1, 5.0)  # a stall (the machine busy elsewhere) moves the mean a little only
    assert cost.step_seconds is not None and cost.step_seconds < 0.015
    slow = DraftCost(initial=0.4)
    slow.observe(1, 0.010)
    slow.observe(2, 0.030)
    assert slow.share == 0.45  # capped: requests with no record (p = 1/2) still probe


PASSAGE = (
    "The lighthouse keeper climbed the stairs every evening at six, lit the lamp, wound the clock, "
    "and wrote the weather in a book that nobody read."
)


def copy_request(model: str, **params: Any) -> GenerationRequest:
    settings: dict[str, Any] = {"temperature": 0, "max_tokens": 48, "logprobs": True, "top_logprobs": 2}
    return chat(model, f"Repeat this sentence exactly, word for word:\n\n{PASSAGE}", **{**settings, **params})


def two_models(models: Callable[..., ModelTable]) -> tuple[LlamaCppProvider, LlamaCppProvider]:
    table = models(
        entry("plain", **SMOLLM, slots=1, context_length=512, lookup_draft=0),
        entry("lookup", **SMOLLM, slots=1, context_length=512, lookup_draft=8),
    )
    return local(table, "plain"), local(table, "lookup")


def batcher_of(provider: LlamaCppProvider) -> Batcher:
    engine = provider.pool.loaded(provider.name)
    assert engine is not None
    return engine.batcher


async def test_lookup_gives_plain_decodings_answer_in_fewer_steps(models: Callable[..., ModelTable]) -> None:
    plain, fast = two_models(models)
    expected = await plain.generate(copy_request("plain"))
    got = await fast.generate(copy_request("lookup"))
    batcher = batcher_of(fast)
    print(f"\nlookup: {batcher.accepted}/{batcher.drafted} drafted tokens accepted in {batcher.steps} steps")
    assert_identical(expected, got)
    # Every step samples one token (the first step reads the prompt), plus its accepted draft.
    # The end-of-text token is sampled too but is not part of the completion.
    sampled = got.usage.completion_tokens + (got.finish_reason == "stop")
    assert batcher.accepted > sampled / 3, (batcher.accepted, sampled, got.text)
    assert batcher.steps == sampled - batcher.accepted
    assert batcher_of(plain).steps == expected.usage.completion_tokens + (expected.finish_reason == "stop")


async def test_drafts_respect_max_tokens_stop_strings_and_streaming(
    models: Callable[..., ModelTable],
) -> None:
    plain, fast = two_models(models)
    for params in ({"max_tokens": 7}, {"stop": ["lamp"]}, {"max_tokens": 30, "stop": ["nobody"]}):
        expected = await plain.generate(copy_request("plain", **params))
        got = await fast.generate(copy_request("lookup", **params))
        assert_identical(expected, got)
        assert got.usage.completion_tokens <= params.get("max_tokens", 48)
        assert got.finish_reason == expected.finish_reason
        streamed = [chunk.text async for chunk in await fast.stream(copy_request("lookup", **params))]
        assert "".join(streamed) == got.text
    assert batcher_of(fast).accepted > 0


async def test_sampled_requests_keep_their_seed(models: Callable[..., ModelTable]) -> None:
    plain, fast = two_models(models)
    params = {"temperature": 0.7, "seed": 11, "logprobs": False}
    expected = await plain.generate(copy_request("plain", **params))
    got = await fast.generate(copy_request("lookup", **params))
    again = await fast.generate(copy_request("lookup", **params))
    assert got.text == again.text  # the same seed gives the same text
    # Sampling draws one random number per token, drafted or not, so the text is plain decoding's
    # (unless batched kernels moved a probability across a draw, which this seed does not hit).
    assert got.text == expected.text
    assert batcher_of(fast).accepted > 0


async def test_structured_output_with_lookup_is_valid_json(models: Callable[..., ModelTable]) -> None:
    _, fast = two_models(models)
    request = chat(
        "lookup",
        'Return {"a": "x", "b": "x", "c": "x"} as JSON.',
        temperature=0,
        max_tokens=40,
        response_format=ResponseFormat(type="json_object"),
    )
    result = await fast.generate(request)
    json.loads(result.text)


async def test_busy_engines_do_not_draft(models: Callable[..., ModelTable]) -> None:
    table = models(
        entry("lookup", **SMOLLM, slots=2, context_length=512, lookup_draft=8, lookup_max_streams=1)
    )
    provider = local(table, "lookup")
    await asyncio.gather(*(provider.generate(copy_request("lookup", max_tokens=24)) for _ in range(2)))
    batcher = batcher_of(provider)
    drafted_together = batcher.drafted
    await provider.generate(copy_request("lookup", max_tokens=24))
    # Both streams run side by side for nearly all of their tokens; drafting starts when one is alone.
    assert batcher.drafted > drafted_together
