"""Plain ASGI middleware: a trace id for every API request, and a cap on request body size."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strato.errors import RequestTooLarge
from strato.gateway import CallContext
from strato.server.caching import cache_policy
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
    chunked body. The refusal is traced like any other rejected request."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

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

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
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
        ctx = scope.get("state", {}).get("strato_ctx")
        endpoint = ENDPOINTS.get(scope["path"])
        gateway = getattr(getattr(scope.get("app"), "state", None), "gateway", None)
        if ctx is not None and endpoint is not None and gateway is not None:
            gateway.record_rejected(ctx, endpoint, None, None, error)
        body = json.dumps(error.to_body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
