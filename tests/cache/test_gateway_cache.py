"""The answer cache end to end: `strato serve` with a cache, the official openai SDK as the client,
the tests' real upstream server (which counts its calls: a hit never reaches it) and the embedded
SmolLM2 model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.cache.gateways import cached_gateway
from tests.support.gateway import GatewayProcess
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GatewayProcess]:
    with cached_gateway(tmp_path_factory.mktemp("cached"), upstream) as process:
        yield process


@pytest.fixture(scope="module")
def sdk(served: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0, timeout=60) as client:
        yield client


def unique(text: str) -> str:
    """`text` made unique to this run, so no earlier test's answer can be in the cache."""
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def chat(sdk: openai.OpenAI, content: str, model: str = "cached-echo", **options: Any) -> tuple[str, Any]:
    """(x-strato-cache header, parsed completion)."""
    messages = [{"role": "user", "content": content}]
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=messages, **{"temperature": 0, **options}
    )
    return raw.headers.get("x-strato-cache", "absent"), raw


def test_a_repeated_request_is_answered_from_the_cache_not_the_upstream(
    sdk: openai.OpenAI, served: GatewayProcess, upstream: Upstream
) -> None:
    question = unique("What is the capital of France?")
    before = upstream.calls
    first_header, first = chat(sdk, question)
    second_header, second = chat(sdk, question)
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
def test_a_changed_parameter_or_model_misses(
    sdk: openai.OpenAI, upstream: Upstream, change: dict[str, Any]
) -> None:
    question = unique("Name a prime number.")
    assert chat(sdk, question)[0] == "miss"
    before = upstream.calls
    header, _ = chat(sdk, question, **({"model": "cached-echo"} | change))
    assert header == ("absent" if change.get("model") == "plain-echo" else "miss")  # uncached: no header
    assert upstream.calls == before + 1


def test_opt_out_headers(sdk: openai.OpenAI, upstream: Upstream) -> None:
    question = unique("How tall is Mount Everest?")
    assert chat(sdk, question)[0] == "miss"
    before = upstream.calls
    # no-cache: answered fresh, and the fresh answer is stored
    assert chat(sdk, question, extra_headers={"Cache-Control": "no-cache"})[0] == "skip"
    assert upstream.calls == before + 1
    assert chat(sdk, question)[0] == "hit-exact"
    # x-strato-cache: off: around the cache, even when an answer is stored
    assert chat(sdk, question, extra_headers={"x-strato-cache": "off"})[0] == "skip"
    assert upstream.calls == before + 2
    # no-store: a stored answer may be served, a new one is not kept
    assert chat(sdk, question, extra_headers={"Cache-Control": "no-store"})[0] == "hit-exact"
    other = unique("How deep is the Mariana Trench?")
    assert chat(sdk, other, extra_headers={"Cache-Control": "no-store, max-age=0"})[0] == "miss"
    assert chat(sdk, other, extra_headers={"x-strato-cache": "off"})[0] == "skip"
    assert chat(sdk, other)[0] == "miss"
    assert upstream.calls == before + 5


def stream_chat(
    sdk: openai.OpenAI, content: str, model: str = "cached-echo"
) -> tuple[str, str, Any, str | None]:
    """(x-strato-cache header, text, usage, finish reason) of a streamed chat with include_usage."""
    with sdk.chat.completions.with_streaming_response.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        header = response.headers.get("x-strato-cache", "absent")
        text, usage, finish = "", None, None
        for chunk in response.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    return header, text, usage, finish


def test_streamed_answers_are_stored_and_cached_answers_are_streamed(
    sdk: openai.OpenAI, upstream: Upstream
) -> None:
    question = unique("Tell me about the moon landing.")
    before = upstream.calls
    header, text, usage, finish = stream_chat(sdk, question)
    assert (header, text, finish) == ("miss", f"echo: {question}", "stop")
    assert usage is not None and usage.prompt_tokens_details.cached_tokens == 0
    # the streamed answer was stored: a plain request and another stream are served from the cache
    plain_header, plain = chat(sdk, question)
    assert plain_header == "hit-exact" and plain.parse().choices[0].message.content == text
    header, cached_text, cached_usage, cached_finish = stream_chat(sdk, question)
    assert (header, cached_text, cached_finish) == ("hit-exact", text, "stop")
    assert cached_usage.prompt_tokens == usage.prompt_tokens
    assert cached_usage.completion_tokens == usage.completion_tokens
    assert cached_usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens
    assert upstream.calls == before + 1


def test_an_abandoned_stream_is_not_stored(sdk: openai.OpenAI, served: GatewayProcess) -> None:
    question = unique("Count slowly: " + " ".join(str(i) for i in range(300)))
    body = {"model": "cached-echo", "messages": [{"role": "user", "content": question}], "temperature": 0}
    with httpx.stream("POST", f"{served.url}/v1/chat/completions", json={**body, "stream": True}) as response:
        trace_id = response.headers["x-strato-trace-id"]
        lines = response.iter_lines()
        assert any("content" in next(lines) for _ in range(4))
    assert served.trace(trace_id).status == 499  # the gateway saw the client leave
    assert chat(sdk, question)[0] == "miss"


def test_a_stream_cut_by_the_upstream_is_not_stored(sdk: openai.OpenAI, upstream: Upstream) -> None:
    question = unique("Tell me a long story about rivers and mountains.")
    with pytest.raises(openai.APIError):  # the gateway ends the stream with an error event
        stream_chat(sdk, question, model="cached-cut")
    before = upstream.calls
    assert chat(sdk, question, model="cached-cut")[0] == "miss"  # (the upstream cuts streams only)
    assert chat(sdk, question, model="cached-cut")[0] == "hit-exact"
    assert upstream.calls == before + 1


@pytest.mark.parametrize(
    ("model", "error"),
    [("cached-fail", openai.InternalServerError), ("cached-reject", openai.BadRequestError)],
)
def test_errors_are_not_cached(
    sdk: openai.OpenAI, upstream: Upstream, model: str, error: type[openai.APIStatusError]
) -> None:
    question = unique("Will this fail?")
    before = upstream.calls
    for _ in range(2):
        with pytest.raises(error) as failed:
            chat(sdk, question, model=model)
        assert failed.value.response.headers["x-strato-cache"] == "miss"
    assert upstream.calls == before + 2


def test_a_paraphrase_hits_the_semantic_cache_and_its_opposite_does_not(
    sdk: openai.OpenAI, served: GatewayProcess, upstream: Upstream
) -> None:
    # The same system prompt in each: the rest of the conversation must be identical.
    system = {"role": "system", "content": unique("You are a support agent.")}

    def ask(question: str) -> tuple[str, Any]:
        raw = sdk.chat.completions.with_raw_response.create(
            model="semantic-echo", messages=[system, {"role": "user", "content": question}], temperature=0
        )
        return raw.headers["x-strato-cache"], raw

    assert ask("How do I reset my password?")[0] == "miss"
    assert ask("How do I enable dark mode?")[0] == "miss"
    before = upstream.calls
    header, paraphrase = ask("What's the way to reset my password?")
    assert header == "hit-semantic"
    assert float(paraphrase.headers["x-strato-cache-similarity"]) >= 0.88
    assert paraphrase.parse().choices[0].message.content == "echo: How do I reset my password?"
    assert served.trace(paraphrase.headers["x-strato-trace-id"]).cache == "semantic"
    assert upstream.calls == before

    header, opposite = ask("How do I disable dark mode?")  # cosine 0.92 to the enable question
    assert header == "miss"
    assert opposite.parse().choices[0].message.content == "echo: How do I disable dark mode?"
    assert upstream.calls == before + 1


def test_the_local_model_is_cached_too(sdk: openai.OpenAI) -> None:
    question = unique("Name one colour.")
    first_header, first = chat(sdk, question, model="smollm2", max_tokens=8)
    second_header, second = chat(sdk, question, model="smollm2", max_tokens=8)
    assert (first_header, second_header) == ("miss", "hit-exact")
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


def test_cache_results_are_counted_in_metrics(sdk: openai.OpenAI, served: GatewayProcess) -> None:
    question = unique("What is two plus two?")
    chat(sdk, question)
    chat(sdk, question)
    chat(sdk, question, extra_headers={"x-strato-cache": "off"})
    text = httpx.get(f"{served.url}/metrics").text
    for result in ("miss", "hit_exact", "skip"):
        assert f'strato_cache_requests_total{{model="cached-echo",result="{result}"}}' in text
    assert 'strato_cache_requests_total{model="plain-echo"' not in text
