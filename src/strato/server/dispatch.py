"""The model routes' own way in: a POST to `/v1/chat/completions`, `/v1/completions` or
`/v1/embeddings` goes from the outermost middleware straight to its endpoint.

Those three routes are the request path's hot end, and they need nothing FastAPI does per request:
their endpoints read their own bodies and return their own responses (`routes.DirectRoute`), and
they depend on no dependency. Passing them through FastAPI's stack (the admin guard, the exception
middleware, the exit stack, the router matching the path against every route, the route's own
wrappers) cost about a fifth of a gateway request's CPU. Here they get the middleware that does
apply to them (the trace context, the body limit, the Unicode check) and the same error answers
(`errors.error_answer`); every other request, other methods on these paths included, goes through
FastAPI as before. The routes stay registered with FastAPI, which documents them in the OpenAPI
schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from strato.server.errors import error_answer
from strato.server.middleware import BodyLimitMiddleware, TraceContextMiddleware, UnicodeBodyMiddleware

Endpoint = Callable[[Request], Awaitable[Response]]


class ModelRouteDispatch:
    """Outermost middleware: POSTs to `routes`' paths are answered by their endpoints through
    their own short chain; everything else goes on to `app` (the rest of FastAPI's stack)."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute], limit: int, timeout: float) -> None:
        self.app = app
        self.endpoints: dict[str, Endpoint] = {
            route.path: route.endpoint
            for route in routes
            if isinstance(route, APIRoute) and "POST" in (route.methods or ())
        }
        self.direct: ASGIApp = TraceContextMiddleware(
            BodyLimitMiddleware(UnicodeBodyMiddleware(self._answer), limit=limit, timeout=timeout)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.endpoints:
            await self.direct(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Any
        try:
            response = await self.endpoints[scope["path"]](request)
        except Exception as exc:  # what FastAPI's exception handlers would have answered
            response = await error_answer(request, exc)
        # A failure once the answer is under way (a stream cut by a bug) has no answer of its own:
        # it reaches the server, which closes the connection, as it does for FastAPI's routes.
        await response(scope, receive, send)
