"""Remote OpenAI-compatible upstreams, through the gateway, against a real HTTP upstream the test runs."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.support.inprocess import InProcess
from tests.support.upstream import Upstream


async def test_remote_chat_forwards_model_key_and_parameters(strato: InProcess, upstream: Upstream) -> None:
    raw = await strato.sdk().chat.completions.with_raw_response.create(
        model="remote-echo",
        messages=[{"role": "user", "content": "hello there"}],
        temperature=0.3,
        max_tokens=12,
        seed=5,
        stop=["zz"],
        user="bob",
        extra_body={"frequency_penalty": 0.5},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.model == "remote-echo"
    sent, headers = upstream.requests[-1], upstream.headers[-1]
    assert sent["model"] == "echo"
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert (sent["temperature"], sent["max_tokens"], sent["seed"], sent["stop"], sent["user"]) == (
        0.3,
        12,
        5,
        ["zz"],
        "bob",
    )
    assert sent["frequency_penalty"] == 0.5  # fields strato does not interpret pass through
    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert (trace.provider, trace.prompt_tokens, trace.completion_tokens) == ("openai", 7, 3)


async def test_remote_stream_passes_through_unchanged(strato: InProcess) -> None:
    raw = await strato.sdk().chat.completions.with_raw_response.create(
        model="remote-echo",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    async for chunk in raw.parse():
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        usage = chunk.usage or usage
    assert pieces[1:] == ["echo:", " one", " two", " three", " four", ""]
    assert usage is not None and usage.completion_tokens == 5
    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert trace.completion == "echo: one two three four"
    assert trace.ttft_ms is not None and trace.stream


async def test_remote_stream_without_include_usage_still_traces_tokens(strato: InProcess) -> None:
    raw = await strato.sdk().chat.completions.with_raw_response.create(
        model="remote-echo", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    chunks = [c async for c in raw.parse()]
    assert all(c.usage is None for c in chunks)
    assert strato.trace(raw.headers["x-strato-trace-id"]).completion_tokens == 3


async def test_remote_text_completion_and_embeddings(strato: InProcess) -> None:
    client = strato.sdk()
    assert (await client.completions.create(model="remote-echo", prompt="hi")).choices[0].text == "echo: hi"
    streamed = await client.completions.create(model="remote-echo", prompt="a b", stream=True)
    assert "".join([c.choices[0].text async for c in streamed if c.choices]) == "echo: a b"
    embedded = await client.embeddings.create(
        model="remote-embed", input=["abc", "de"], encoding_format="float"
    )
    vectors = embedded.data
    assert [v.embedding for v in vectors] == [[3.0, 1.0], [2.0, 1.0]]


@pytest.mark.parametrize(
    ("model", "status", "code", "words"),
    [
        ("remote-fail", 502, "upstream_error", "500"),
        ("remote-reject", 400, "upstream_rejected", "too hot"),
        ("remote-hang", 504, "upstream_timeout", "in time"),
        ("remote-down", 502, "upstream_error", "failed"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failures_map_to_clear_errors(
    strato: InProcess, model: str, status: int, code: str, words: str, stream: bool
) -> None:
    response, trace = await strato.failing_chat(model, status, stream=stream)
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert (trace.status, trace.error_code) == (status, code)


async def test_upstream_that_cuts_the_stream(strato: InProcess) -> None:
    raw = await strato.sdk().chat.completions.with_raw_response.create(
        model="remote-cut", messages=[{"role": "user", "content": "one two three four"}], stream=True
    )
    with pytest.raises(openai.APIError, match="upstream"):
        async for _chunk in raw.parse():
            pass
    trace = strato.trace(raw.headers["x-strato-trace-id"])
    assert trace.status == 502 and trace.error_code == "upstream_error"
    assert trace.completion == "echo: one"  # what had arrived before the cut is kept
