"""Log probabilities from a remote OpenAI-compatible upstream reach the client, in the chat and the
legacy completions shape, streamed and not (they used to be dropped)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream


@pytest.fixture
async def served(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, [upstream.model("remote", "echo")]) as s:
        yield s


async def test_chat_logprobs_pass_through(served: InProcess, upstream: Upstream) -> None:
    client = served.sdk()
    completion = await client.chat.completions.create(
        model="remote", messages=[{"role": "user", "content": "one two"}], logprobs=True, top_logprobs=2
    )
    sent = upstream.requests[-1]
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["echo:", " one", " two"]
    first = logprobs.content[0]
    assert first.logprob == -0.5 and first.bytes == list(b"echo:")
    assert [(a.token, a.logprob) for a in first.top_logprobs] == [("echo:#0", -1.0), ("echo:#1", -2.0)]


async def test_streamed_chat_logprobs_pass_through(served: InProcess) -> None:
    stream = await served.sdk().chat.completions.create(
        model="remote",
        messages=[{"role": "user", "content": "one two"}],
        logprobs=True,
        top_logprobs=1,
        stream=True,
    )
    tokens = []
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.logprobs is not None and choice.logprobs.content:
                tokens += [(t.token, len(t.top_logprobs)) for t in choice.logprobs.content]
    assert tokens == [("echo:", 1), (" one", 1), (" two", 1)]


async def test_completion_logprobs_pass_through(served: InProcess, upstream: Upstream) -> None:
    completion = await served.sdk().completions.create(model="remote", prompt="one two", logprobs=2)
    assert upstream.requests[-1]["logprobs"] == 2
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens == ["echo:", " one", " two"]
    assert logprobs.token_logprobs == [-0.5, -0.5, -0.5]
    assert logprobs.top_logprobs is not None and logprobs.top_logprobs[0] == {
        "echo:#0": -1.0,
        "echo:#1": -2.0,
    }


async def test_without_logprobs_none_are_asked_for_or_shown(served: InProcess, upstream: Upstream) -> None:
    completion = await served.sdk().chat.completions.create(
        model="remote", messages=[{"role": "user", "content": "one"}]
    )
    assert "logprobs" not in upstream.requests[-1]
    assert completion.choices[0].logprobs is None
