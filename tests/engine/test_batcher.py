"""Continuous batching with the real SmolLM2 model: concurrent requests decode together, give what
they give alone, join a running batch, free their slot on disconnect, and wait in a bounded queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from strato.engine.batcher import QueueFull
from strato.providers.registry import ModelTable
from strato.types import Generation, GenerationRequest
from tests.engine.conftest import SMOLLM, chat, entry, local

# Every slot has its own KV stream and llama.cpp's CPU kernels compute each row of a batch on
# its own, so a generating sequence's logits do not depend on what else is in the batch or on
# prompt-lookup drafts: outputs, log probabilities included, are bit-identical, and the tests say
# so. (With one unified KV cache for all slots they were not: the cells a sequence got changed
# the order of attention's sums.) A prompt read in other chunks (part of it from the prefix cache)
# is different: see `assert_same_or_near_tie` in test_prefix.py.

QUESTIONS = [
    "What is the capital of France?",
    "Name three colors of the rainbow.",
    "Why is the sky blue?",
    "Write a haiku about the sea.",
    "What is 12 times 12?",
    "Give me a synonym for happy.",
    "What do bees make?",
    "Describe a cat in one sentence.",
]


def assert_identical(a: Generation, b: Generation) -> None:
    assert a.text == b.text
    assert a.logprobs == b.logprobs
    assert a.finish_reason == b.finish_reason


def request(question: str, seed: int) -> GenerationRequest:
    return chat("s", question, temperature=0, seed=seed, max_tokens=32, logprobs=True, top_logprobs=2)


async def test_eight_concurrent_streams_match_running_alone(models: Callable[..., ModelTable]) -> None:
    table = models(entry("s", **SMOLLM, slots=8, context_length=512))
    provider = local(table, "s")
    requests = [request(q, seed) for seed, q in enumerate(QUESTIONS)]
    alone = [await provider.generate(r) for r in requests]
    engine = provider.pool.loaded("s")
    assert engine is not None
    steps_before = engine.batcher.steps
    together = await asyncio.gather(*(provider.generate(r) for r in requests))
    steps = engine.batcher.steps - steps_before
    tokens = sum(g.usage.completion_tokens for g in together)
    # Decoded together: far fewer engine steps than tokens (one step serves every running stream).
    assert steps < tokens / 3, (steps, tokens)
    for a, t in zip(alone, together, strict=True):
        assert_identical(a, t)
    assert all(g.text for g in together)

    async def joining_late(request: GenerationRequest, delay: float) -> Generation:
        await asyncio.sleep(delay)
        return await provider.generate(request)

    # Arriving one by one: prompts are read in the same steps as other streams' tokens.
    staggered = await asyncio.gather(*(joining_late(r, 0.04 * i) for i, r in enumerate(requests)))
    for a, s in zip(alone, staggered, strict=True):
        assert_identical(a, s)


async def test_a_new_request_joins_the_running_batch(models: Callable[..., ModelTable]) -> None:
    provider = local(models(entry("s", **SMOLLM, slots=2, context_length=512)), "s")
    long = await provider.stream(
        chat("s", "Write a long story about a dragon.", temperature=0, max_tokens=200)
    )
    await anext(long)  # the long request is decoding
    started = time.perf_counter()
    short = await provider.generate(chat("s", "Say hi.", temperature=0, max_tokens=4))
    short_done = time.perf_counter() - started
    rest = [chunk async for chunk in long]
    assert short.usage.completion_tokens <= 4
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens == 200
    long_done = time.perf_counter() - started
    # The short one did not wait for the long one to finish.
    assert short_done < long_done / 2, (short_done, long_done)


async def test_disconnect_frees_the_slot_for_the_next_in_queue(models: Callable[..., ModelTable]) -> None:
    provider = local(models(entry("s", **SMOLLM, slots=1, context_length=512)), "s")
    first = await provider.stream(chat("s", "Write a very long story.", temperature=0, max_tokens=400))
    await anext(first)
    waiting = await provider.stream(chat("s", "Say hi.", temperature=0, max_tokens=3))
    engine = provider.pool.loaded("s")
    assert engine is not None and len(engine.batcher.queue) == 1  # one slot, taken: the second waits
    await first.aclose()  # the client went away
    chunks = [chunk async for chunk in waiting]
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert usage and usage[-1].completion_tokens <= 3
    assert not engine.batcher.busy


async def test_queue_is_bounded(models: Callable[..., ModelTable]) -> None:
    provider = local(models(entry("s", **SMOLLM, slots=1, max_queue=1, context_length=512)), "s")
    # Greedy, so the story runs its full length and keeps the only slot for the whole test.
    running = await provider.stream(chat("s", "Write a very long story.", temperature=0, max_tokens=300))
    await anext(running)
    queued = await provider.stream(chat("s", "Say hi.", temperature=0, max_tokens=2))
    engine = provider.pool.loaded("s")
    assert engine is not None and len(engine.batcher.queue) == 1
    with pytest.raises(QueueFull) as refused:
        await provider.stream(chat("s", "And me?", max_tokens=2))
    assert refused.value.status == 429
    assert refused.value.headers["retry-after"]
    await running.aclose()
    assert [chunk async for chunk in queued]


async def test_cancelling_a_queued_request_leaves_the_queue(models: Callable[..., ModelTable]) -> None:
    provider = local(models(entry("s", **SMOLLM, slots=1, context_length=512)), "s")
    running = await provider.stream(chat("s", "Write a very long story.", max_tokens=300))
    await anext(running)
    queued = await provider.stream(chat("s", "Say hi.", max_tokens=2))
    engine = provider.pool.loaded("s")
    assert engine is not None and len(engine.batcher.queue) == 1
    await queued.aclose()
    assert len(engine.batcher.queue) == 0
    await running.aclose()
