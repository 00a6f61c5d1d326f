"""strato in a Python program: the official `openai` client over the in-process transport takes
the same request path as a served request (guards, cache, traces), with no server and no port."""

from __future__ import annotations

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
