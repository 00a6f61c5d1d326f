"""The answer cache end to end, in process: the gateway with a cache, the official openai SDK as the
client, the tests' real upstream server (which counts its calls: a hit never reaches it) and the
embedded SmolLM2 model. Replicas sharing a cache through Redis run as processes
(test_redis_gateways)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from strato.server.inprocess import transport
from tests.cache.gateways import CACHE, cached_models
from tests.support.inprocess import BASE_URL, InProcess, in_process
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path_factory.mktemp("cached"), cached_models(upstream), cache=CACHE) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def sdk(served: InProcess) -> openai.AsyncOpenAI:
    return served.sdk()


def unique(text: str) -> str:
    """`text` made unique to this run, so no earlier test's answer can be in the cache."""
    return f"{text} [{uuid.uuid4().hex[:8]}]"


async def chat(
    sdk: openai.AsyncOpenAI, content: str, model: str = "cached-echo", **options: Any
) -> tuple[str, Any]:
    """(x-strato-cache header, parsed completion)."""
    messages = [{"role": "user", "content": content}]
    raw = await sdk.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        **{"temperature": 0, **options},
    )
    return raw.headers.get("x-strato-cache", "absent"), raw


async def test_a_repeated_request_is_answered_from_the_cache_not_the_upstream(
    sdk: openai.AsyncOpenAI, served: InProcess, upstream: Upstream
) -> None:
    question = unique("What is the capital of France?")
    before = upstream.calls
    first_header, first = await chat(sdk, question)
    second_header, second = await chat(sdk, question)
    assert (first_header, second_header) == ("miss", "hit-exact")
    assert upstream.calls == before + 1
    original, cached = first.parse(), second.parse()
    assert cached.choices[0].message.content == original.choices[0].message.content == f"echo: {question}"
    assert cached.choices[0].finish_reason == "stop"
    assert cached.usage.prompt_tokens == original.usage.prompt_tokens
    assert cached.usage.completion_tokens == original.usage.completion_tokens
    assert original.usage.prompt_tokens_details.cached_tokens == 0
    assert cached.usage.prompt_tokens_details.cached_tokens == cached.usage.prompt_tokens  # marked cached

    trace = served.trace(second.headers["x-strato-trace-id"])
    assert (trace.cache, trace.provider, trace.cost) == ("exact", "cache", 0.0)
    assert trace.completion == f"echo: {question}"
    assert served.trace(first.headers["x-strato-trace-id"]).cache is None


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 50},
        {"seed": 42},
        {"stop": ["\n\n"]},
        {"top_p": 0.5},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
        {"model": "plain-echo"},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_a_changed_parameter_or_model_misses(
    sdk: openai.AsyncOpenAI, upstream: Upstream, change: dict[str, Any]
) -> None:
    question = unique("Name a prime number.")
    assert (await chat(sdk, question))[0] == "miss"
    before = upstream.calls
    header, _ = await chat(sdk, question, **({"model": "cached-echo"} | change))
    assert header == ("absent" if change.get("model") == "plain-echo" else "miss")  # uncached: no header
    assert upstream.calls == before + 1


async def test_opt_out_headers(sdk: openai.AsyncOpenAI, upstream: Upstream) -> None:
    question = unique("How tall is Mount Everest?")
    assert (await chat(sdk, question))[0] == "miss"
    before = upstream.calls
    # no-cache: answered fresh, and the fresh answer is stored
    assert (await chat(sdk, question, extra_headers={"Cache-Control": "no-cache"}))[0] == "skip"
    assert upstream.calls == before + 1
    assert (await chat(sdk, question))[0] == "hit-exact"
    # x-strato-cache: off: around the cache, even when an answer is stored
    assert (await chat(sdk, question, extra_headers={"x-strato-cache": "off"}))[0] == "skip"
    assert upstream.calls == before + 2
    # no-store: a stored answer may be served, a new one is not kept
    assert (await chat(sdk, question, extra_headers={"Cache-Control": "no-store"}))[0] == "hit-exact"
    other = unique("How deep is the Mariana Trench?")
    assert (await chat(sdk, other, extra_headers={"Cache-Control": "no-store, max-age=0"}))[0] == "miss"
    assert (await chat(sdk, other, extra_headers={"x-strato-cache": "off"}))[0] == "skip"
    assert (await chat(sdk, other))[0] == "miss"
    assert upstream.calls == before + 5


async def stream_chat(
    sdk: openai.AsyncOpenAI, content: str, model: str = "cached-echo"
) -> tuple[str, str, Any, str | None]:
    """(x-strato-cache header, text, usage, finish reason) of a streamed chat with include_usage."""
    async with sdk.chat.completions.with_streaming_response.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        header = response.headers.get("x-strato-cache", "absent")
        text, usage, finish = "", None, None
        async for chunk in await response.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    return header, text, usage, finish


async def test_streamed_answers_are_stored_and_cached_answers_are_streamed(
    sdk: openai.AsyncOpenAI, upstream: Upstream
) -> None:
    question = unique("Tell me about the moon landing.")
    before = upstream.calls
    header, text, usage, finish = await stream_chat(sdk, question)
    assert (header, text, finish) == ("miss", f"echo: {question}", "stop")
    assert usage is not None and usage.prompt_tokens_details.cached_tokens == 0
    # the streamed answer was stored: a plain request and another stream are served from the cache
    plain_header, plain = await chat(sdk, question)
    assert plain_header == "hit-exact" and plain.parse().choices[0].message.content == text
    header, cached_text, cached_usage, cached_finish = await stream_chat(sdk, question)
    assert (header, cached_text, cached_finish) == ("hit-exact", text, "stop")
    assert cached_usage.prompt_tokens == usage.prompt_tokens
    assert cached_usage.completion_tokens == usage.completion_tokens
    assert cached_usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens
    assert upstream.calls == before + 1


async def test_an_abandoned_stream_is_not_stored(sdk: openai.AsyncOpenAI, served: InProcess) -> None:
    question = unique("Count slowly: " + " ".join(str(i) for i in range(300)))
    body = {"model": "cached-echo", "messages": [{"role": "user", "content": question}], "temperature": 0}
    # strato's own in-process transport streams (httpx's runs the app to its end first), so the
    # client can leave mid-answer.
    streaming = httpx.AsyncClient(transport=transport(served.app, httpx), base_url=BASE_URL)
    async with (
        streaming,
        streaming.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response,
    ):
        trace_id = response.headers["x-strato-trace-id"]
        lines = response.aiter_lines()
        assert [line async for line in _first(lines, 4) if "content" in line]
    assert served.trace(trace_id).status == 499  # the gateway saw the client leave
    assert (await chat(sdk, question))[0] == "miss"


async def test_a_stream_cut_by_the_upstream_is_not_stored(
    sdk: openai.AsyncOpenAI, upstream: Upstream
) -> None:
    question = unique("Tell me a long story about rivers and mountains.")
    with pytest.raises(openai.APIError):  # the gateway ends the stream with an error event
        await stream_chat(sdk, question, model="cached-cut")
    before = upstream.calls
    assert (await chat(sdk, question, model="cached-cut"))[0] == "miss"  # (the upstream cuts streams only)
    assert (await chat(sdk, question, model="cached-cut"))[0] == "hit-exact"
    assert upstream.calls == before + 1


@pytest.mark.parametrize(
    ("model", "error"),
    [("cached-fail", openai.InternalServerError), ("cached-reject", openai.BadRequestError)],
)
async def test_errors_are_not_cached(
    sdk: openai.AsyncOpenAI, upstream: Upstream, model: str, error: type[openai.APIStatusError]
) -> None:
    question = unique("Will this fail?")
    before = upstream.calls
    for _ in range(2):
        with pytest.raises(error) as failed:
            await chat(sdk, question, model=model)
        assert failed.value.response.headers["x-strato-cache"] == "miss"
    assert upstream.calls == before + 2


async def test_a_paraphrase_hits_the_semantic_cache_and_its_opposite_does_not(
    sdk: openai.AsyncOpenAI, served: InProcess, upstream: Upstream
) -> None:
    # The same system prompt in each: the rest of the conversation must be identical.
    system = {"role": "system", "content": unique("You are a support agent.")}

    async def ask(question: str) -> tuple[str, Any]:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="semantic-echo",
            messages=[system, {"role": "user", "content": question}],  # type: ignore[list-item]
            temperature=0,
        )
        return raw.headers["x-strato-cache"], raw

    assert (await ask("How do I reset my password?"))[0] == "miss"
    assert (await ask("How do I enable dark mode?"))[0] == "miss"
    before = upstream.calls
    header, paraphrase = await ask("What's the way to reset my password?")
    assert header == "hit-semantic"
    assert float(paraphrase.headers["x-strato-cache-similarity"]) >= 0.88
    assert paraphrase.parse().choices[0].message.content == "echo: How do I reset my password?"
    assert served.trace(paraphrase.headers["x-strato-trace-id"]).cache == "semantic"
    assert upstream.calls == before

    header, opposite = await ask("How do I disable dark mode?")  # cosine 0.92 to the enable question
    assert header == "miss"
    assert opposite.parse().choices[0].message.content == "echo: How do I disable dark mode?"
    assert upstream.calls == before + 1


async def test_the_local_model_is_cached_too(sdk: openai.AsyncOpenAI) -> None:
    question = unique("Name one colour.")
    first_header, first = await chat(sdk, question, model="smollm2", max_tokens=8)
    second_header, second = await chat(sdk, question, model="smollm2", max_tokens=8)
    assert (first_header, second_header) == ("miss", "hit-exact")
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


async def test_cache_results_are_counted_in_metrics(sdk: openai.AsyncOpenAI, served: InProcess) -> None:
    question = unique("What is two plus two?")
    await chat(sdk, question)
    await chat(sdk, question)
    await chat(sdk, question, extra_headers={"x-strato-cache": "off"})
    text = (await served.http.get("/metrics")).text
    for result in ("miss", "hit_exact", "skip"):
        assert f'strato_cache_requests_total{{model="cached-echo",result="{result}"}}' in text
    assert 'strato_cache_requests_total{model="plain-echo"' not in text


async def _first(lines: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    """The first `count` lines, then stop reading (the client leaves)."""
    for _ in range(count):
        yield await anext(lines)
