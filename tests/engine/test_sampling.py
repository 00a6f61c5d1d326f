"""Sampling parameters, structured output and log probabilities on the real SmolLM2 model."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

import pytest

from strato.errors import InvalidRequest
from strato.providers.local import LlamaCppProvider
from strato.providers.registry import ModelTable, build_models
from strato.types import ResponseFormat
from tests.engine.conftest import SMOLLM, chat, entry, local

STORY = "Tell me a short story about a fox."


@pytest.fixture(scope="module")
async def smollm() -> AsyncIterator[LlamaCppProvider]:
    table: ModelTable = build_models([entry("s", **SMOLLM, slots=4, context_length=1024)])
    yield local(table, "s")
    await table.aclose()


async def test_same_seed_same_text(smollm: LlamaCppProvider) -> None:
    runs = [
        await smollm.generate(chat("s", STORY, temperature=1.0, seed=s, max_tokens=24)) for s in (7, 7, 8, 9)
    ]
    assert runs[0].text == runs[1].text
    assert len({r.text for r in runs}) > 1  # other seeds draw other text


async def test_top_k_one_and_min_p_one_are_greedy(smollm: LlamaCppProvider) -> None:
    greedy = await smollm.generate(chat("s", STORY, temperature=0, max_tokens=24))
    top_k = await smollm.generate(chat("s", STORY, temperature=1.5, top_k=1, seed=3, max_tokens=24))
    min_p = await smollm.generate(chat("s", STORY, temperature=1.5, min_p=1.0, seed=3, max_tokens=24))
    assert top_k.text == greedy.text == min_p.text


async def test_penalties_discourage_repetition(smollm: LlamaCppProvider) -> None:
    ask = "Repeat the word 'apple' twenty times."
    plain = await smollm.generate(chat("s", ask, temperature=0, max_tokens=40))
    penalised = await smollm.generate(chat("s", ask, temperature=0, frequency_penalty=2.0, max_tokens=40))
    presence = await smollm.generate(chat("s", ask, temperature=0, presence_penalty=2.0, max_tokens=40))
    assert plain.text.lower().count("apple") > penalised.text.lower().count("apple")
    assert presence.text != plain.text


async def test_logprobs(smollm: LlamaCppProvider) -> None:
    result = await smollm.generate(
        chat("s", "What is 2+2?", temperature=0, max_tokens=8, logprobs=True, top_logprobs=3)
    )
    assert result.logprobs is not None and len(result.logprobs) == result.usage.completion_tokens
    assert "".join(t.token for t in result.logprobs) == result.text
    for token in result.logprobs:
        assert token.logprob <= 0
        assert len(token.top) == 3
        assert [a.logprob for a in token.top] == sorted((a.logprob for a in token.top), reverse=True)
        assert token.top[0].token == token.token  # greedy picks the most likely token
        assert sum(math.exp(a.logprob) for a in token.top) <= 1.0001
    plain = await smollm.generate(chat("s", "What is 2+2?", temperature=0, max_tokens=8))
    assert plain.logprobs is None and plain.text == result.text


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}


async def test_json_schema_output_parses_and_validates(smollm: LlamaCppProvider) -> None:
    fmt = ResponseFormat(type="json_schema", schema=PERSON, name="person")
    for seed in range(3):
        result = await smollm.generate(
            chat(
                "s",
                "Invent a person and describe them as JSON.",
                temperature=0.8,
                seed=seed,
                max_tokens=120,
                response_format=fmt,
            )
        )
        assert result.finish_reason == "stop", result.text
        data = json.loads(result.text)
        assert set(data) == {"name", "age", "pets"}
        assert isinstance(data["name"], str) and isinstance(data["age"], int)
        assert len(data["pets"]) <= 3 and all(isinstance(p, str) for p in data["pets"])


async def test_json_object_output(smollm: LlamaCppProvider) -> None:
    result = await smollm.generate(
        chat(
            "s",
            "Describe Paris.",
            temperature=0,
            max_tokens=120,
            response_format=ResponseFormat(type="json_object"),
        )
    )
    assert result.finish_reason == "stop", result.text
    assert isinstance(json.loads(result.text), dict)


async def test_unusable_schema_is_refused_before_generation(smollm: LlamaCppProvider) -> None:
    fmt = ResponseFormat(
        type="json_schema", schema={"type": "object", "properties": {"a": {"$ref": "#/nope"}}}
    )
    with pytest.raises(InvalidRequest) as refused:
        await smollm.stream(chat("s", "hi", response_format=fmt))
    assert refused.value.param == "response_format"
