"""The local engine's features as a user reaches them: the official OpenAI SDK and plain HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from tests.conftest import ADMIN_KEY, CHAT_MODEL, NARROW_MODEL
from tests.support.inprocess import InProcess
from tests.support.lora import write_lora

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
SYSTEM = (
    "You are the assistant of a small bakery. Bread is baked at 6 every morning, cakes need two days' "
    "notice, and the shop is closed on Mondays. Answer in one short sentence."
)


async def test_json_schema_response_format(strato: InProcess) -> None:
    response = await strato.sdk().chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}},
        temperature=0,
        max_tokens=60,
    )
    data = json.loads(response.choices[0].message.content or "")
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


async def test_logprobs_in_chat_and_completions(strato: InProcess) -> None:
    client = strato.sdk()
    chat = await client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is 2+2?"}],
        temperature=0,
        max_tokens=8,
        logprobs=True,
        top_logprobs=2,
    )
    content = chat.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and chat.usage is not None
    assert len(content) == chat.usage.completion_tokens
    assert "".join(t.token for t in content) == chat.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)

    streamed = await client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is 2+2?"}],
        temperature=0,
        max_tokens=8,
        logprobs=True,
        stream=True,
    )
    tokens = [
        t.token
        async for c in streamed
        for ch in c.choices
        if ch.logprobs and ch.logprobs.content
        for t in ch.logprobs.content
    ]
    assert "".join(tokens) == chat.choices[0].message.content

    legacy = await client.completions.create(
        model=CHAT_MODEL, prompt="One, two,", max_tokens=4, temperature=0, logprobs=2
    )
    logprobs = legacy.choices[0].logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.top_logprobs
    assert "".join(logprobs.tokens) == legacy.choices[0].text
    assert all(len(top) == 2 for top in logprobs.top_logprobs)


async def test_prefix_cache_hits_are_reported(strato: InProcess) -> None:
    async def ask(question: str) -> openai.types.chat.ChatCompletion:
        return await strato.sdk().chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            temperature=0,
            max_tokens=12,
        )

    await ask("When do you bake bread?")
    second = await ask("Are you open on Monday?")
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and cached >= 40
    trace = strato.trace(second.id.removeprefix("chatcmpl-"))
    assert trace.cached_tokens == cached
    metrics = (await strato.http.get("/metrics")).text
    assert f'strato_prefix_cache_requests_total{{model="{CHAT_MODEL}",result="hit"}}' in metrics
    assert f'strato_tokens_total{{model="{CHAT_MODEL}",type="cached"}}' in metrics
    assert f'strato_engine_slots{{model="{CHAT_MODEL}",state="free"}}' in metrics


@pytest.fixture
async def streaming_client(strato: InProcess) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK over a transport that hands a stream over as the app sends it, and tells the app the
    client has gone when one is closed early: httpx's own ASGI transport would return the first
    long stream only once its story had ended and freed the slot."""
    async with strato.streaming() as http:
        yield strato.sdk(http=http)


async def test_a_full_queue_answers_429(strato: InProcess, streaming_client: openai.AsyncOpenAI) -> None:
    async def long_stream() -> openai.AsyncStream[openai.types.chat.ChatCompletionChunk]:
        return await streaming_client.chat.completions.create(
            model=NARROW_MODEL,
            messages=[{"role": "user", "content": "Write a very long story."}],
            max_tokens=300,
            temperature=0,  # greedy: the story runs its full length and keeps the slot
            stream=True,
        )

    running = await long_stream()  # takes the only slot
    await anext(aiter(running))
    queued = await long_stream()  # waits in the queue (the one place there is)
    body = {"model": NARROW_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    refused = await strato.http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "queue_full"
    with pytest.raises(openai.RateLimitError):
        await streaming_client.chat.completions.create(
            model=NARROW_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    await running.close()
    # The slot is free again: the queued request runs to its end.
    received = [c async for c in queued]
    assert received and received[-1].choices[0].finish_reason in {"stop", "length"}


async def test_attach_and_detach_a_lora_adapter_over_http(strato: InProcess, tmp_path: Path) -> None:
    client = strato.sdk()
    adapter = write_lora(tmp_path / "tuned.gguf")
    spec = {"name": "smollm2-tuned", "provider": "llama_cpp", "base": CHAT_MODEL, "adapter": str(adapter)}
    assert (await strato.http.post("/admin/models", json=spec)).status_code == 403
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    added = await strato.http.post("/admin/models", json=spec, headers=headers)
    assert added.status_code == 201, added.text
    assert "smollm2-tuned" in {m.id async for m in client.models.list()}

    async def answer(model: str) -> str:
        response = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            temperature=0,
            max_tokens=12,
        )
        return response.choices[0].message.content or ""

    assert await answer("smollm2-tuned") != await answer(CHAT_MODEL)
    bad = await strato.http.post("/admin/models", json={**spec, "name": "x", "base": "nope"}, headers=headers)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]["message"]
    removed = await strato.http.delete("/admin/models/smollm2-tuned", headers=headers)
    assert removed.status_code == 200
    with pytest.raises(openai.NotFoundError):
        await answer("smollm2-tuned")


async def test_prompt_lookup_decoding_is_on_and_counted(strato: InProcess) -> None:
    sentence = "The bakery opens at seven, closes at six, and sells rye bread on Saturdays only."
    stream = await strato.sdk().chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": f"Repeat this sentence exactly:\n\n{sentence}"}],
        temperature=0,
        max_tokens=40,
        stream=True,
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert "rye bread" in text
    metrics = (await strato.http.get("/metrics")).text
    counts = {
        result: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        for result in ("drafted", "accepted")
        if line.startswith(f'strato_engine_lookup_tokens{{model="{CHAT_MODEL}",result="{result}"}}')
    }
    assert counts["accepted"] > 5, (counts, text)
    assert counts["drafted"] >= counts["accepted"]
