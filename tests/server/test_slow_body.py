"""A client that trickles its body is refused with 408 once `server.body_timeout_seconds` pass; a
finished body is never timed out, however long the answer then takes."""

from __future__ import annotations

import asyncio
import json

from starlette.types import Message, Receive, Scope, Send

from strato.server.middleware import BodyLimitMiddleware

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": [], "state": {}}


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, then waits for the client to go (as a streaming answer does)."""
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await receive()  # the disconnect, whenever it comes
    await send({"type": "http.response.body", "body": b"done"})


async def test_a_body_that_stops_arriving_is_a_408() -> None:
    sent: list[Message] = []
    stalled = asyncio.Event()

    async def receive() -> Message:
        if not stalled.is_set():
            stalled.set()
            return {"type": "http.request", "body": b'{"model": "m", ', "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await BodyLimitMiddleware(reading_app, limit=1_000_000, timeout=0.2)(SCOPE, receive, send)
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_timeout"
    assert len(sent) == 2  # the app's own answer is dropped


async def test_waiting_for_the_disconnect_after_the_body_is_not_timed_out() -> None:
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]
    gone = asyncio.Event()

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.start":
            asyncio.get_running_loop().call_later(0.4, gone.set)  # the client leaves after the timeout

    await BodyLimitMiddleware(reading_app, limit=1_000_000, timeout=0.2)(SCOPE, receive, send)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [200]
    assert sent[-1]["body"] == b"done"
