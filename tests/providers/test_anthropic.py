"""Anthropic deployments through the gateway's HTTP API in process, with the official `openai` SDK as
the client, against a real HTTP server that speaks Anthropic's Messages API and checks what it is
sent (tests/support/anthropic_upstream.py); model groups fall back from it to an OpenAI-compatible
one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from strato.config import ConfigError, ModelEntry
from strato.providers.registry import build_models
from strato.types import Trace
from tests.support.anthropic_upstream import AnthropicUpstream
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream, free_port

KEY = "sk-ant-test-key"
BEHAVIOURS = [
    *(f"status-{code}" for code in (400, 401, 403, 404, 413, 429, 500, 529)),
    "busy-once",
    "too-long",
    "garbage",
    "overloaded-mid-stream",
    "cut",
    "unfinished",
]


def claude(name: str, upstream: AnthropicUpstream, behaviour: str = "echo", **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "anthropic",
        "base_url": upstream.base_url,
        "upstream_model": behaviour,
        "api_key_env": "STRATO_TEST_ANTHROPIC_KEY",
        "max_tokens": 50,
        **options,
    }


def group(name: str, deployments: list[Any], **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "group",
        "deployments": deployments,
        "backoff": 0.01,
        "failure_threshold": 100,  # every test sees every attempt; none is skipped by a tripped circuit
        **options,
    }


@pytest.fixture(scope="module")
def anthropic() -> Iterator[AnthropicUpstream]:
    server = AnthropicUpstream(KEY).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory, anthropic: AnthropicUpstream, upstream: Upstream
) -> AsyncIterator[InProcess]:
    cheap_claude_first = {"strategy": "cost", "retries": 1}
    models = [
        claude("claude", anthropic),
        claude("claude-short", anthropic, max_tokens=3),
        *(claude(f"claude-{behaviour}", anthropic, behaviour) for behaviour in BEHAVIOURS),
        claude("claude-hang", anthropic, "hang", timeout=1.0),
        claude("claude-wrong-key", anthropic, api_key_env="STRATO_TEST_WRONG_KEY"),
        {
            "name": "claude-down",
            "provider": "anthropic",
            "base_url": f"http://127.0.0.1:{free_port()}",
            "api_key_env": None,
            "connect_timeout": 1.0,
        },
        {"name": "gpt-echo", "provider": "openai", "base_url": upstream.base_url, "upstream_model": "echo"},
        group(
            "overloaded",
            [{"model": "claude-status-529", "input_cost": 0}, {"model": "gpt-echo", "input_cost": 1}],
            **cheap_claude_first,
        ),
        group(
            "overloaded-stream",
            [
                {"model": "claude-overloaded-mid-stream", "input_cost": 0},
                {"model": "gpt-echo", "input_cost": 1},
            ],
            **cheap_claude_first,
        ),
        group("busy", ["claude-busy-once"], retries=1),
        group("long", ["claude-too-long"], context_fallbacks=["claude"]),
    ]
    data_dir = tmp_path_factory.mktemp("anthropic-gateway") / "data"
    with pytest.MonkeyPatch.context() as env:  # the deployments read their keys when they are built
        env.setenv("STRATO_TEST_ANTHROPIC_KEY", KEY)
        env.setenv("STRATO_TEST_WRONG_KEY", "sk-ant-wrong")
        async with in_process(data_dir, models) as served:
            yield served


@pytest.fixture(scope="module")
def client(gateway: InProcess) -> openai.AsyncOpenAI:
    return gateway.sdk()


def stored(gateway: InProcess, trace_id: str) -> Trace:
    trace = gateway.trace(trace_id)
    return trace


def attempts(gateway: InProcess, trace_id: str) -> list[tuple[str, int]]:
    return [(a["deployment"], a["status"]) for a in stored(gateway, trace_id).attempts]


async def failing_chat(
    gateway: InProcess, model: str, status: int, *, stream: bool
) -> tuple[httpx.Response, Trace]:
    """Post a one-message chat that must fail with `status`: the response and its stored trace."""
    body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}
    response = await gateway.http.post("/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == status, response.text
    return response, stored(gateway, response.headers["x-strato-trace-id"])


async def test_chat_is_translated_to_a_messages_request_and_back(
    client: openai.AsyncOpenAI, gateway: InProcess, anthropic: AnthropicUpstream
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "there"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "one two three"},
        ],
        temperature=0.5,
        top_p=0.9,
        max_tokens=20,
        stop=["zz"],
        user="bob",
        extra_body={"top_k": 5},
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("echo: one two three", "stop")
    assert completion.model == "claude"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    # Anthropic's input_tokens (5) leaves out the cache's: 4 read from it and 2 written to it.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (
        11,
        4,
        4,
    )
    sent, headers = anthropic.requests[-1], anthropic.headers[-1]
    assert (headers["x-api-key"], headers["anthropic-version"]) == (KEY, "2023-06-01")
    assert sent == {
        "model": "echo",
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "hello\n\nthere"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "one two three"},
        ],
        "max_tokens": 20,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["zz"],
        "metadata": {"user_id": "bob"},
    }
    trace = stored(gateway, raw.headers["x-strato-trace-id"])
    assert (trace.provider, trace.prompt_tokens, trace.completion_tokens, trace.cached_tokens) == (
        "anthropic",
        11,
        4,
        4,
    )


async def test_max_tokens_defaults_to_the_configured_limit_and_finishes_with_length(
    client: openai.AsyncOpenAI, anthropic: AnthropicUpstream
) -> None:
    completion = await client.chat.completions.create(
        model="claude-short", messages=[{"role": "user", "content": "a b c d"}]
    )
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (
        "echo: a b",
        "length",
    )
    # Only what the client set is sent: Anthropic's defaults for the rest are OpenAI's.
    assert anthropic.requests[-1] == {
        "model": "echo",
        "messages": [{"role": "user", "content": "a b c d"}],
        "max_tokens": 3,
    }


async def test_a_stop_sequence_finishes_with_stop(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "one two three"}], stop=["three"]
    )
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (
        "echo: one two",
        "stop",
    )


async def test_stream_is_translated_from_anthropic_events(
    client: openai.AsyncOpenAI, gateway: InProcess, anthropic: AnthropicUpstream
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="claude",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finishes, usage = [], [], None
    async for chunk in raw.parse():
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finishes.append(choice.finish_reason)
        usage = chunk.usage or usage
    assert pieces[1:] == ["echo:", " one", " two", " three", ""]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (11, 4)
    assert anthropic.requests[-1]["stream"] is True
    trace = stored(gateway, raw.headers["x-strato-trace-id"])
    assert trace.stream and trace.completion == "echo: one two three" and trace.ttft_ms is not None
    assert (trace.finish_reason, trace.prompt_tokens, trace.cached_tokens) == ("stop", 11, 4)

    streamed = await client.chat.completions.create(
        model="claude-short", messages=[{"role": "user", "content": "a b c d"}], stream=True
    )
    last = [c async for c in streamed if c.choices][-1]
    assert last.choices[0].finish_reason == "length"


async def test_a_text_completion_is_one_user_message(
    client: openai.AsyncOpenAI, anthropic: AnthropicUpstream
) -> None:
    completion = await client.completions.create(model="claude", prompt="hi there")
    assert completion.choices[0].text == "echo: hi there"
    assert anthropic.requests[-1]["messages"] == [{"role": "user", "content": "hi there"}]
    assert anthropic.requests[-1]["max_tokens"] == 16  # OpenAI's default for text completions
    streamed = await client.completions.create(model="claude", prompt="a b", stream=True)
    assert "".join([c.choices[0].text async for c in streamed if c.choices]) == "echo: a b"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
            "response_format",
        ),
        ({"min_p": 0.1}, "min_p"),
        ({"temperature": 1.5}, "temperature"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "content": "42", "tool_call_id": "call_1"},
                ]
            },
            "messages.1.role",
        ),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ],
)
async def test_what_anthropic_cannot_honour_is_refused_before_anything_is_sent(
    client: openai.AsyncOpenAI, anthropic: AnthropicUpstream, fields: dict[str, Any], param: str
) -> None:
    calls = anthropic.calls
    body = {"messages": [{"role": "user", "content": "x"}], **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="claude", extra_body=body, messages=body["messages"])
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param, error
    assert "anthropic" in error["message"], error
    assert anthropic.calls == calls


@pytest.mark.parametrize(
    ("model", "status", "code", "words"),
    [
        ("claude-status-400", 400, "upstream_rejected", "invalid_request_error"),
        ("claude-status-401", 502, "upstream_error", "answered 401"),
        ("claude-wrong-key", 502, "upstream_error", "invalid x-api-key"),
        ("claude-status-403", 502, "upstream_error", "answered 403"),
        ("claude-status-404", 404, "upstream_rejected", "not_found_error"),
        ("claude-status-413", 413, "upstream_rejected", "request_too_large"),
        ("claude-status-429", 429, "upstream_rejected", "rate limit"),
        ("claude-status-500", 502, "upstream_error", "answered 500"),
        ("claude-status-529", 502, "upstream_error", "answered 529: Overloaded"),
        ("claude-too-long", 400, "context_length_exceeded", "prompt is too long"),
        ("claude-hang", 504, "upstream_timeout", "in time"),
        ("claude-down", 502, "upstream_error", "failed"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failures_map_to_clear_errors(
    gateway: InProcess, model: str, status: int, code: str, words: str, stream: bool
) -> None:
    response, trace = await failing_chat(gateway, model, status, stream=stream)
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"], error
    if status == 429:
        assert response.headers["retry-after"] == "1"  # Anthropic's advice reaches the client
    assert (trace.status, trace.error_code, trace.provider) == (status, code, "anthropic")


async def test_an_answer_that_is_not_json_is_a_502(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError, match="not JSON") as caught:
        await client.chat.completions.create(
            model="claude-garbage", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 502


@pytest.mark.parametrize(
    ("model", "words", "completion"),
    [
        ("claude-cut", "failed", "echo: one"),
        ("claude-unfinished", "before finishing", "echo: one two"),
        ("claude-garbage", "failed", ""),
        ("claude-overloaded-mid-stream", "Overloaded", ""),
    ],
)
async def test_a_stream_that_breaks_after_it_began_ends_with_an_error(
    client: openai.AsyncOpenAI, gateway: InProcess, model: str, words: str, completion: str
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "one two"}], stream=True
    )
    with pytest.raises(openai.APIError, match=words):
        async for _chunk in raw.parse():
            pass
    trace = stored(gateway, raw.headers["x-strato-trace-id"])
    assert (trace.status, trace.error_code) == (502, "upstream_error")
    assert (trace.completion or "") == completion  # what had arrived before the failure is kept


async def test_a_529_falls_back_to_the_other_deployment(
    client: openai.AsyncOpenAI, gateway: InProcess
) -> None:
    messages: Any = [{"role": "user", "content": "hello"}]
    raw = await client.chat.completions.with_raw_response.create(model="overloaded", messages=messages)
    assert raw.parse().choices[0].message.content == "echo: hello"
    trace_id = raw.headers["x-strato-trace-id"]
    assert attempts(gateway, trace_id) == [("claude-status-529", 502)] * 2 + [("gpt-echo", 200)]
    assert stored(gateway, trace_id).deployment == "gpt-echo"

    streamed = await client.chat.completions.with_raw_response.create(
        model="overloaded", messages=messages, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in streamed.parse() if c.choices])
    assert text == "echo: hello"
    assert attempts(gateway, streamed.headers["x-strato-trace-id"])[-1] == ("gpt-echo", 200)


async def test_an_overloaded_event_before_the_first_token_falls_back(
    client: openai.AsyncOpenAI, gateway: InProcess
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="overloaded-stream", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == "echo: hello"
    assert attempts(gateway, raw.headers["x-strato-trace-id"]) == [
        ("claude-overloaded-mid-stream", 502),
        ("claude-overloaded-mid-stream", 502),
        ("gpt-echo", 200),
    ]


async def test_a_429_is_retried_after_its_retry_after(client: openai.AsyncOpenAI, gateway: InProcess) -> None:
    started = time.monotonic()
    raw = await client.chat.completions.with_raw_response.create(
        model="busy", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.parse().choices[0].message.content == "echo: hello"
    assert time.monotonic() - started >= 1.0
    assert attempts(gateway, raw.headers["x-strato-trace-id"]) == [
        ("claude-busy-once", 429),
        ("claude-busy-once", 200),
    ]


async def test_a_prompt_too_long_goes_to_the_context_fallback(
    client: openai.AsyncOpenAI, gateway: InProcess
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="long", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.parse().choices[0].message.content == "echo: hello"
    assert attempts(gateway, raw.headers["x-strato-trace-id"]) == [("claude-too-long", 400), ("claude", 200)]


def test_configuration_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    entry = ModelEntry.model_validate({"name": "c", "provider": "anthropic"})
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        build_models([entry])
    entry = ModelEntry.model_validate(
        {"name": "c", "provider": "anthropic", "api_key_env": None, "kind": "x"}
    )
    with pytest.raises(ConfigError, match="kind"):
        build_models([entry])
