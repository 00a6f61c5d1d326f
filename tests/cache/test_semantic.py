"""The cache step with the real embedding model (all-MiniLM-L6-v2) on both backends: a paraphrase
is answered from the cache; its negation, a question asking another thing about the same subject,
and other conversations, parameters or tenants are not."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from strato.cache import Cache, CachePolicy
from strato.cache.answers import HIT_EXACT, HIT_SEMANTIC, MISS, SKIP, AnswerCache
from strato.config import CacheSettings, default_models
from strato.providers.registry import ModelTable, build_models
from strato.types import Generation, GenerationRequest, Message, SamplingParams, Usage

SYSTEM = Message("system", "You are a helpful assistant.")
ANSWER = Generation("Open Settings > Security > Reset password.", "stop", Usage(21, 9))


@pytest.fixture(scope="module")
async def embedders() -> AsyncIterator[ModelTable]:
    table = build_models([m for m in default_models() if m.name == "all-minilm-l6-v2"])
    yield table
    await table.aclose()


@pytest.fixture
def make_cache(backend: Cache, embedders: ModelTable) -> Any:
    def make(**settings: Any) -> AnswerCache:
        models = {"chat": {"mode": "semantic"}, "strict": {"mode": "semantic", "threshold": 0.99}}
        models["exact"] = {"mode": "exact"}
        config = CacheSettings.model_validate({"models": models, **settings})
        return AnswerCache(config, backend, embedders.embedder)

    return make


def ask(question: str, model: str = "chat", system: Message = SYSTEM, **params: Any) -> GenerationRequest:
    return GenerationRequest(
        model=model,
        messages=(system, Message("user", question)),
        params=SamplingParams(temperature=0, **params),
    )


async def remember(cache: AnswerCache, request: GenerationRequest, scope: str = "tenant-a") -> None:
    lookup = await cache.lookup(request, scope, CachePolicy())
    assert lookup.result == MISS
    await cache.store(lookup, ANSWER)


async def test_a_paraphrase_is_answered_with_the_stored_answer(make_cache: Any) -> None:
    cache = make_cache()
    await remember(cache, ask("How do I reset my password?"))
    hit = await cache.lookup(ask("What's the way to reset my password?"), "tenant-a", CachePolicy())
    assert hit.result == HIT_SEMANTIC and hit.kind == "semantic"
    assert hit.answer is not None and hit.answer.text == ANSWER.text
    assert hit.answer.usage == Usage(21, 9, cached_tokens=21)  # the original counts, all of it cached
    assert hit.score is not None and 0.88 <= hit.score < 1
    assert hit.headers() == {
        "x-strato-cache": "hit-semantic",
        "x-strato-cache-similarity": f"{hit.score:.3f}",
    }


async def test_the_opposite_question_is_not_answered_unless_the_guard_is_off(make_cache: Any) -> None:
    cache = make_cache()
    await remember(cache, ask("How do I enable dark mode?"))
    assert (await cache.lookup(ask("How do I disable dark mode?"), "tenant-a", CachePolicy())).result == MISS
    unguarded = make_cache(semantic={"guard": False})  # MiniLM puts the two at cosine 0.92
    assert (await unguarded.lookup(ask("How do I disable dark mode?"), "tenant-a", CachePolicy())).result == (
        HIT_SEMANTIC
    )


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        (  # MiniLM: cosine 0.92
            "What was the total number of sheltered homeless people in 2008 report?",
            "In 2008 report what percentage of the sheltered homeless population were homeless as "
            "individuals?",
        ),
        ("When did the outbreak begin?", "Where did the outbreak begin?"),  # 0.97
        ("Who designed the first vaccine?", "Why was the first vaccine designed?"),  # 0.93
    ],
    ids=["count-vs-share", "when-vs-where", "who-vs-why"],
)
async def test_another_thing_asked_about_the_same_subject_is_not_answered_unless_the_guard_is_off(
    make_cache: Any, stored: str, asked: str
) -> None:
    cache = make_cache()
    await remember(cache, ask(stored))
    assert (await cache.lookup(ask(asked), "tenant-a", CachePolicy())).result == MISS
    unguarded = make_cache(semantic={"guard": False})
    assert (await unguarded.lookup(ask(asked), "tenant-a", CachePolicy())).result == HIT_SEMANTIC


async def test_a_paraphrase_with_another_question_word_is_answered(make_cache: Any) -> None:
    cache = make_cache()
    await remember(cache, ask("What time does the bakery open?"))
    assert (await cache.lookup(ask("When does the bakery open?"), "tenant-a", CachePolicy())).result == (
        HIT_SEMANTIC
    )


@pytest.mark.parametrize(
    "other",
    [
        ask("What's the way to reset my password?", system=Message("system", "Answer in French.")),
        ask("What's the way to reset my password?", max_tokens=5),
        ask("What's the way to reset my password?", model="strict"),  # threshold 0.99
    ],
    ids=["other-conversation", "other-parameters", "model-threshold"],
)
async def test_a_paraphrase_in_another_bucket_or_under_the_threshold_misses(
    make_cache: Any, other: GenerationRequest
) -> None:
    cache = make_cache()
    await remember(cache, ask("How do I reset my password?", model=other.model))
    assert (await cache.lookup(other, "tenant-a", CachePolicy())).result == MISS


async def test_tenants_never_see_each_others_answers(make_cache: Any) -> None:
    cache = make_cache()
    await remember(cache, ask("How do I reset my password?"), scope="tenant-a")
    for question in ("How do I reset my password?", "What's the way to reset my password?"):
        assert (await cache.lookup(ask(question), "tenant-b", CachePolicy())).result == MISS
    assert (await cache.lookup(ask("How do I reset my password?"), "tenant-a", CachePolicy())).result == (
        HIT_EXACT
    )


async def test_exact_mode_serves_only_the_same_request(make_cache: Any) -> None:
    cache = make_cache()
    await remember(cache, ask("How do I reset my password?", model="exact"))
    assert (
        await cache.lookup(
            ask("What's the way to reset my password?", model="exact"), "tenant-a", CachePolicy()
        )
    ).result == MISS
    same = await cache.lookup(ask("How do I reset my password?", model="exact"), "tenant-a", CachePolicy())
    assert same.result == HIT_EXACT and same.headers() == {"x-strato-cache": "hit-exact"}


async def test_no_cache_still_stores_for_the_next_request_and_no_store_does_not(make_cache: Any) -> None:
    cache = make_cache()
    fresh = await cache.lookup(ask("How do I reset my password?"), "tenant-a", CachePolicy(read=False))
    assert fresh.result == SKIP and fresh.answer is None
    await cache.store(fresh, ANSWER)
    assert (
        await cache.lookup(ask("What's the way to reset my password?"), "tenant-a", CachePolicy())
    ).result == (HIT_SEMANTIC)
    kept = await cache.lookup(ask("How to make pancakes?"), "tenant-a", CachePolicy(write=False))
    assert kept.result == MISS
    await cache.store(kept, ANSWER)
    assert (await cache.lookup(ask("How to make pancakes?"), "tenant-a", CachePolicy())).result == MISS


async def test_fresh_samples_are_skipped_when_sampled_requests_are_not_cached(make_cache: Any) -> None:
    cache = make_cache(sampled=False)
    sampled = dataclasses.replace(ask("Tell me a story."), params=SamplingParams(temperature=0.8))
    seeded = dataclasses.replace(ask("Tell me a story."), params=SamplingParams(temperature=0.8, seed=3))
    assert (await cache.lookup(sampled, "tenant-a", CachePolicy())).result == SKIP
    assert (await cache.lookup(seeded, "tenant-a", CachePolicy())).result == MISS
    assert (await make_cache().lookup(sampled, "tenant-a", CachePolicy())).result == MISS  # the default


async def test_incomplete_answers_are_not_stored_and_long_turns_are_cached_exactly(make_cache: Any) -> None:
    cache = make_cache()
    long_question = "Please summarise this: " + "the quick brown fox jumps over the lazy dog " * 60
    lookup = await cache.lookup(ask(long_question), "tenant-a", CachePolicy())
    assert lookup.slot is not None and lookup.slot.vector is None  # longer than MiniLM reads
    await cache.store(lookup, dataclasses.replace(ANSWER, finish_reason="tool_calls"))  # type: ignore[arg-type]
    assert (await cache.lookup(ask(long_question), "tenant-a", CachePolicy())).result == MISS
    await cache.store(lookup, ANSWER)
    assert (await cache.lookup(ask(long_question), "tenant-a", CachePolicy())).result == HIT_EXACT


async def test_a_text_completion_in_semantic_mode_is_cached_exactly(make_cache: Any) -> None:
    cache = make_cache()
    prompt = GenerationRequest(model="chat", prompt="Once upon a time", params=SamplingParams(temperature=0))
    await remember(cache, prompt)
    assert (await cache.lookup(prompt, "tenant-a", CachePolicy())).result == HIT_EXACT
    other = dataclasses.replace(prompt, prompt="Once upon a time,")
    assert (await cache.lookup(other, "tenant-a", CachePolicy())).result == MISS
