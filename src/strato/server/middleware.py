"""Plain ASGI middleware: a trace id for every API request, a cap on request body size, and bodies
whose text is Unicode."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strato.errors import InvalidRequest, RequestTimeout, RequestTooLarge, StratoError
from strato.gateway import CallContext
from strato.server.caching import cache_policy
from strato.store.storable import SURROGATE, has_unencodable
from strato.types import Endpoint

ENDPOINTS = {
    "/v1/chat/completions": Endpoint.CHAT,
    "/v1/completions": Endpoint.COMPLETION,
    "/v1/embeddings": Endpoint.EMBEDDING,
}


class TraceContextMiddleware:
    """Creates the request's `CallContext` (trace id, start time, what its headers allow the answer
    cache) and returns its id as a header, with what the gateway has to say about the request by
    then (cache hit, routing decision)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        ctx = CallContext(cache=cache_policy(headers), credential=bearer_token(headers))
        scope.setdefault("state", {})["strato_ctx"] = ctx

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *ctx.response_headers()]
            await send(message)

        await self.app(scope, receive, send_with_id)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, None when there is none."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


class BodyLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413, by Content-Length or while reading a
    chunked body, and bodies still arriving `timeout` seconds after the request began with 408 (a
    client that trickles its body must not hold a connection and a task forever). The refusal is
    traced like any other rejected request."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, send)
                return
        received = 0
        refused = False
        complete = False  # the whole body is in: from then on receive() waits for the disconnect
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counted() -> Message:
            nonlocal received, refused, complete
            if refused:
                return {"type": "http.disconnect"}
            try:
                if complete:
                    message = await receive()
                else:
                    async with asyncio.timeout_at(deadline):  # no task of its own, unlike wait_for
                        message = await receive()
            except TimeoutError:
                refused = True
                slow = RequestTimeout(f"The request body did not arrive within {self.timeout:g} s.")
                await refuse(scope, send, slow)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.limit and not refused:
                    refused = True
                    await self._refuse(scope, send)
            # After refusing, the app sees a disconnected client and its own answer is dropped.
            return {"type": "http.disconnect"} if refused else message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = RequestTooLarge(f"The request body is larger than this server accepts ({self.limit} bytes).")
        await refuse(scope, send, error)


# A JSON escape of a UTF-16 surrogate: only then can the decoded body hold a lone one. Valid pairs
# (how many encoders write an emoji) match too, so a match is confirmed on the decoded body.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class UnicodeBodyMiddleware:
    """Refuses a JSON body whose text is not Unicode: a lone UTF-16 surrogate (`"\\ud800"`) decodes
    to a Python string no encoder accepts, which would fail in a guard, an upstream call or the
    trace store far from its cause. The client gets a 400 naming the field; bodies without such an
    escape (almost all) pass after one regular-expression scan."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left (or the body limit refused it): nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        where = lone_surrogate(body) if SURROGATE_ESCAPE.search(body) else None
        if where is not None:
            param, char = where
            field = f"'{param}'" if param else "the request body"
            await refuse(
                scope,
                send,
                InvalidRequest(
                    f"Invalid value for {field}: it holds a lone UTF-16 surrogate ({char}), which is not a "
                    "Unicode character. Send text as UTF-8, with surrogates only in valid pairs.",
                    param=param or None,
                    code="invalid_text",
                ),
            )
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then passes on what the client sends
    next (its disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def lone_surrogate(body: bytes) -> tuple[str, str] | None:
    """Where the decoded JSON body holds a lone surrogate: (dotted path, the escape), or None (also
    when the body is not JSON: the route reports that as it always has)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    found = _find_surrogate(document, [])
    if found is None:
        return None
    path, text = found
    char = SURROGATE.search(text)
    assert char is not None
    return ".".join(path), f"\\u{ord(char.group()):04x}"


def _find_surrogate(value: Any, path: list[str]) -> tuple[list[str], str] | None:
    """Iteratively, so a deeply nested body cannot exhaust the stack."""
    stack: list[tuple[Any, list[str]]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if has_unencodable(item):
                return where, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                if has_unencodable(key):
                    return where, key
                stack.append((inner, [*where, key]))
        elif isinstance(item, list):
            stack.extend((inner, [*where, str(i)]) for i, inner in enumerate(item))
    return None


async def refuse(scope: Scope, send: Send, error: StratoError) -> None:
    """Answer `error` before the app has seen the request; an API request's refusal is traced like
    any other rejected request."""
    ctx = scope.get("state", {}).get("strato_ctx")
    endpoint = ENDPOINTS.get(scope["path"])
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    if ctx is not None and endpoint is not None and runtime is not None:
        runtime.gateway.record_rejected(ctx, endpoint, None, None, error)
    body = json.dumps(error.to_body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
