"""Several local models at once: loaded on first use, unloaded least-recently-used under a budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from strato.engine.weights import EngineError
from strato.providers.registry import ModelTable
from strato.types import GenerationRequest, SamplingParams
from tests.engine.conftest import GEMMA, SMOLLM, chat, entry, local


def complete(model: str, prompt: str) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=prompt, params=SamplingParams(temperature=0, max_tokens=6))


def loaded(table: ModelTable) -> set[str]:
    return {info.name for info in table.infos() if info.loaded}


async def test_two_models_serve_at_once(models: Callable[..., ModelTable]) -> None:
    table = models(
        entry("chat", **SMOLLM, slots=2, context_length=256),
        entry("base", **GEMMA, slots=2, context_length=256),
    )
    assert loaded(table) == set()  # nothing loads before it is used
    answer, completion = await asyncio.gather(
        table.generator("chat").generate(
            chat("chat", "What is the capital of France?", temperature=0, max_tokens=12)
        ),
        table.generator("base").generate(complete("base", "Monday, Tuesday, Wednesday,")),
    )
    assert answer.text and answer.finish_reason == "length"
    assert completion.text.startswith(" Thursday, Friday")
    assert loaded(table) == {"chat", "base"}
    info = {i.name: i for i in table.infos()}
    assert info["base"].memory_bytes is not None and info["chat"].memory_bytes is not None
    assert info["base"].memory_bytes > info["chat"].memory_bytes > 90 * 2**20


async def test_least_recently_used_model_is_unloaded_under_the_budget(
    models: Callable[..., ModelTable],
) -> None:
    # Room for either model alone (SmolLM2 ~170 MiB, Gemma 3 270M ~330 MiB), not for both.
    table = models(
        entry("chat", **SMOLLM, slots=1, context_length=256),
        entry("base", **GEMMA, slots=1, context_length=256),
        memory_budget_mb=420,
    )
    await table.generator("chat").generate(chat("chat", "hi", max_tokens=2))
    assert loaded(table) == {"chat"}
    await table.generator("base").generate(complete("base", "One, two,"))
    assert loaded(table) == {"base"}
    await table.generator("chat").generate(chat("chat", "hi", max_tokens=2))
    assert loaded(table) == {"chat"}


async def test_a_busy_model_is_not_unloaded(models: Callable[..., ModelTable]) -> None:
    table = models(
        entry("chat", **SMOLLM, slots=1, context_length=256),
        entry("base", **GEMMA, slots=1, context_length=256),
        memory_budget_mb=420,
    )
    stream = await table.generator("chat").stream(chat("chat", "Write a long story.", max_tokens=200))
    await anext(stream)
    with pytest.raises(EngineError) as refused:
        await table.generator("base").generate(complete("base", "One, two,"))
    assert refused.value.status == 503 and refused.value.headers["retry-after"]
    await stream.aclose()
    await table.generator("base").generate(complete("base", "One, two,"))
    assert loaded(table) == {"base"}


async def test_a_model_larger_than_the_budget_is_refused(models: Callable[..., ModelTable]) -> None:
    table = models(entry("base", **GEMMA, slots=1, context_length=256), memory_budget_mb=100)
    with pytest.raises(EngineError, match="memory budget"):
        await local(table, "base").generate(complete("base", "One, two,"))
