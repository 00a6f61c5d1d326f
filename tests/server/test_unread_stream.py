"""A streamed answer whose client leaves before the response begins still ends its request: the
trace is stored (499) and the budget hold is settled, so it does not lock the key's budget until
the hold lapses. The app is called as an ASGI server would call it, with a client that hangs up
right after sending its request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from strato.auth import KeySpec
from strato.types import TraceQuery
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-unread"
# $0.06 a generated token: a request with max_tokens 10 holds $0.60 of a $1.00 budget, so a hold
# that is never settled leaves no room for a second request.
PRICED = {"input_cost": 0.0, "output_cost": 60_000.0}


@pytest.fixture
async def served(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    models = [upstream.model("priced", **PRICED)]
    async with in_process(tmp_path, models, server={"master_key": MASTER}) as s:
        yield s


async def hang_up_at_once(served: InProcess, secret: str, spec_version: str) -> list[dict[str, Any]]:
    """POST a streamed chat, then disconnect before reading anything; what the app sent."""
    body = {"model": "priced", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    raw = json.dumps({**body, "stream": True}).encode()
    incoming = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if spec_version >= "2.4":
            raise OSError("the client has gone")  # what an ASGI 2.4 server does on a closed connection
        await asyncio.sleep(0)  # a real send waits for the socket: the disconnect is seen meanwhile
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"strato.test"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {secret}".encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("strato.test", 80),
        "state": {},
    }
    try:
        await served.app(scope, receive, send)
    except OSError:
        pass  # the 2.4 server's own error, raised back to it
    except Exception as exc:  # starlette's ClientDisconnect
        assert type(exc).__name__ == "ClientDisconnect"
    assert not any(m["type"] == "http.response.body" and m.get("body") for m in sent)  # nothing was read
    return sent


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_stream_never_read_is_recorded_and_settled(served: InProcess, spec_version: str) -> None:
    assert served.runtime.keys is not None
    key, secret = served.runtime.keys.create(KeySpec(name="budgeted", budget_daily=1.0))
    await hang_up_at_once(served, secret, spec_version)

    assert served.runtime.recorder.flush(10)
    traces = served.runtime.traces.traces(TraceQuery(limit=10))
    assert [(t.status, t.error_code, t.api_key) for t in traces] == [(499, "client_disconnected", key.id)]

    # The hold was settled at what the request cost (nothing): the budget has room for another.
    answer = await served.sdk(secret).chat.completions.create(
        model="priced", messages=[{"role": "user", "content": "hi"}], max_tokens=10
    )
    assert answer.choices[0].message.content == "echo: hi"
