"""Prefix reuse: a shared system prompt or a growing chat skips recomputing what the KV cache holds,
and gives what a cold run gives."""

from __future__ import annotations

from collections.abc import Callable

from strato.providers.registry import ModelTable
from strato.types import Generation, GenerationRequest, Message, SamplingParams
from tests.engine.conftest import SMOLLM, chat, entry, local

# A prompt whose prefix comes from the cache has its remaining tokens evaluated as a smaller batch
# than a cold run evaluates the whole prompt in, and llama.cpp's kernels round differently for
# different batch shapes (log probabilities move by up to ~0.4 for SmolLM2 Q4_1). Where a warm and
# a cold run disagree, the two best candidates at the first differing token must have been close.
TIE_MARGIN = 0.5


def first_divergence(a: Generation, b: Generation) -> int | None:
    assert a.logprobs is not None and b.logprobs is not None
    for i, (x, y) in enumerate(zip(a.logprobs, b.logprobs, strict=False)):
        if x.token != y.token:
            return i
    return None if len(a.logprobs) == len(b.logprobs) else min(len(a.logprobs), len(b.logprobs))


def assert_same_or_near_tie(cold: Generation, warm: Generation) -> None:
    if cold.text == warm.text:
        return
    i = first_divergence(cold, warm)
    assert i is not None, (cold.text, warm.text)
    assert cold.logprobs is not None and warm.logprobs is not None
    # One run may have ended where the other went on: the end token has no entry of its own, so
    # look at the run that has a token there (the end token is among its top candidates).
    top = (cold.logprobs if i < len(cold.logprobs) else warm.logprobs)[i].top
    assert len(top) >= 2 and top[0].logprob - top[1].logprob < TIE_MARGIN, (i, top, cold.text, warm.text)


SYSTEM = (
    "You are the support assistant of Northwind Bikes, a shop that sells city bikes, e-bikes and "
    "children's bikes. Answer briefly and politely. Opening hours are 9 to 18 on weekdays and 10 to "
    "16 on Saturdays; the shop is closed on Sundays. Repairs take two working days. Returns are "
    "accepted within 30 days with the receipt. Never invent prices; say a colleague will call back."
)


PARAMS = SamplingParams(temperature=0, max_tokens=24, logprobs=True, top_logprobs=2)


def ask(model: str, question: str) -> GenerationRequest:
    return chat(model, question, system=SYSTEM, temperature=0, max_tokens=24, logprobs=True, top_logprobs=2)


async def test_shared_system_prompt_is_reused(models: Callable[..., ModelTable]) -> None:
    warm = local(models(entry("s", **SMOLLM, slots=2, context_length=1024)), "s")
    cold = local(models(entry("s", **SMOLLM, slots=2, context_length=1024)), "s")
    first = await warm.generate(ask("s", "When are you open on Saturday?"))
    assert first.usage.cached_tokens == 0
    second = await warm.generate(ask("s", "How long does a repair take?"))
    assert second.usage.cached_tokens >= 80  # the system prompt and the template around it
    reference = await cold.generate(ask("s", "How long does a repair take?"))
    assert reference.usage.cached_tokens == 0
    assert_same_or_near_tie(reference, second)


async def test_prefix_is_shared_from_a_busy_slot(models: Callable[..., ModelTable]) -> None:
    warm = local(models(entry("s", **SMOLLM, slots=2, context_length=1024)), "s")
    cold = local(models(entry("s", **SMOLLM, slots=2, context_length=1024)), "s")
    busy = await warm.stream(chat("s", "Tell me everything about your bikes.", system=SYSTEM, max_tokens=200))
    await anext(busy)  # slot 0 holds the system prompt and keeps generating
    second = await warm.generate(ask("s", "Can I return a bike?"))
    await busy.aclose()
    assert second.usage.cached_tokens >= 80
    reference = await cold.generate(ask("s", "Can I return a bike?"))
    assert_same_or_near_tie(reference, second)


async def test_growing_chat_reuses_the_history(models: Callable[..., ModelTable]) -> None:
    warm = local(models(entry("s", **SMOLLM, slots=2, context_length=1024)), "s")
    cold = local(models(entry("s", **SMOLLM, slots=2, context_length=1024)), "s")
    first = await warm.generate(ask("s", "Do you sell e-bikes?"))
    follow = GenerationRequest(
        model="s",
        params=PARAMS,
        messages=(
            Message("system", SYSTEM),
            Message("user", "Do you sell e-bikes?"),
            Message("assistant", first.text),
            Message("user", "And children's bikes?"),
        ),
    )
    second = await warm.generate(follow)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens
    reference = await cold.generate(follow)
    assert reference.usage.cached_tokens == 0
    assert_same_or_near_tie(reference, second)
