"""strato in a Python program: the official `openai` client over the in-process transport takes
the same request path as a served request (guards, cache, traces), with no server and no port."""

from __future__ import annotations

import asyncio
from pathlib import Path

from strato.embedded import Strato
from strato.store.sql import SQLStore
from strato.types import TraceQuery
from tests.support.inprocess import settings_for
from tests.support.upstream import Upstream


async def test_the_openai_client_in_process_is_guarded_cached_and_traced(
    tmp_path: Path, upstream: Upstream
) -> None:
    settings = settings_for(
        tmp_path,
        [upstream.model("echo")],
        cache={"models": {"echo": {"mode": "exact"}}},
        guards={"pii": {"enforce": True}},
    )
    async with Strato.open(settings=settings) as stack:
        client = stack.client()
        question = [{"role": "user", "content": "Mail me at jane.doe@example.com please"}]
        first = await client.chat.completions.create(model="echo", messages=question, temperature=0)  # type: ignore[arg-type]
        sent = upstream.requests[-1]["messages"][-1]["content"]
        assert "jane.doe@example.com" not in sent  # the PII guard redacted it before the model
        assert first.choices[0].message.content is not None
        assert "jane.doe@example.com" in first.choices[0].message.content  # and put it back
        calls = upstream.calls
        again = await client.chat.completions.create(model="echo", messages=question, temperature=0)  # type: ignore[arg-type]
        assert again.choices[0].message.content == first.choices[0].message.content
        assert upstream.calls == calls  # served from the answer cache

        stream = await client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "one two"}], stream=True
        )
        assert (
            "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "echo: one two"
        )
    store = SQLStore.open(f"sqlite:///{tmp_path / 'strato.db'}")
    try:
        traces = store.traces(TraceQuery(limit=10))
    finally:
        store.close()
    # Closing the stack stored everything queued; oldest first: the call, its cached repeat, the stream.
    assert [t.cache for t in reversed(traces)] == [None, "exact", None]


async def test_a_streamed_answer_arrives_as_it_is_written_and_closing_it_ends_the_request(
    tmp_path: Path, upstream: Upstream
) -> None:
    settings = settings_for(tmp_path, [upstream.model("stalls", "stall")])
    async with Strato.open(settings=settings) as stack:
        asked = stack.client().chat.completions.create(
            model="stalls", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
        stream = await asyncio.wait_for(asked, 30)  # a buffering transport would wait out the stall
        chunks = aiter(stream)
        first = [await asyncio.wait_for(anext(chunks), 30) for _ in range(2)]  # role, then "echo:"
        assert first[1].choices[0].delta.content == "echo:"  # the rest has not been written yet
        await asyncio.wait_for(stream.close(), 30)  # the client stops reading
        [trace] = stack.runtime.traces.traces(TraceQuery(limit=5)) if stack.runtime.recorder.flush() else []
        assert trace.status == 499 and trace.stream and trace.completion == "echo:"


async def test_the_httpx_client_streams_too_and_gets_errors_as_the_server_sends_them(
    tmp_path: Path, upstream: Upstream
) -> None:
    settings = settings_for(tmp_path, [upstream.model("stalls", "stall")])
    async with Strato.open(settings=settings) as stack:
        http = stack.http()
        body = {"model": "stalls", "messages": [{"role": "user", "content": "hi there"}], "stream": True}
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            lines = aiter(response.aiter_lines())
            assert (await asyncio.wait_for(anext(lines), 30)).startswith("data: ")
        missing = await http.post("/v1/chat/completions", json={**body, "model": "nope"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
