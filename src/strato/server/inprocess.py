"""HTTP to the app in this process, streamed: what `strato.embedded` gives its clients.

httpx's own `ASGITransport` runs the app to the end before it returns the response, so a streamed
answer arrives whole, after its last token. Here the app runs in a task of its own: the response
is returned once its headers are sent, and its body is read as the app sends it. Closing the
response early (a client that stops reading) tells the app the client has gone, as a server
would, and waits until the app has finished (the request traced, its budget settled).

`transport(app, httpx)` serves `Strato.http()`, `transport(app, httpx2)` the `openai` client (httpx2
is what it is built on); both go through `Exchange`, which knows nothing of either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message

if TYPE_CHECKING:
    import httpx
    import httpx2

CLIENT = ("127.0.0.1", 123)  # the address in-process requests come from (a loopback client)
_END = b""  # queued after the last part of the body


class Exchange:
    """One request to an ASGI app: its status and headers once sent, then its body as it comes."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any], body: AsyncIterable[bytes]) -> None:
        self._app = app
        self._scope = scope
        self._body = body.__aiter__()
        self._body_done = False
        self._parts: asyncio.Queue[bytes] = asyncio.Queue()
        self._started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._gone = asyncio.Event()  # the client closed the response
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Run the app until it sends the response's status and headers (or fails first)."""
        self._task = asyncio.create_task(self._run())
        return await self._started

    async def parts(self) -> AsyncIterator[bytes]:
        while (part := await self._parts.get()) is not _END:
            yield part
        if self._task is not None:
            await self._task  # the app's own failure after the response began, if any

    async def aclose(self) -> None:
        """The client is done with the response: the app sees a disconnect if it is still sending."""
        self._gone.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def _run(self) -> None:
        try:
            await self._app(self._scope, self._receive, self._send)
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
                return
            raise
        finally:
            if not self._started.done():
                self._started.set_exception(RuntimeError("the app ended without sending a response"))
            self._parts.put_nowait(_END)

    async def _receive(self) -> Message:
        if not self._body_done:
            try:
                chunk = await self._body.__anext__()
            except StopAsyncIteration:
                self._body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._started.set_result((message["status"], list(message.get("headers", []))))
        elif message["type"] == "http.response.body" and not self._gone.is_set() and message.get("body"):
            self._parts.put_nowait(message["body"])


def scope_of(request: httpx.Request | httpx2.Request) -> dict[str, Any]:
    """The ASGI scope of an httpx (or httpx2) request, as httpx's own ASGI transport builds it."""
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "server": (url.host, url.port),
        "client": CLIENT,
        "root_path": "",
    }


def transport(app: ASGIApp, library: ModuleType) -> Any:
    """A streaming transport to `app` for `library.AsyncClient`, where `library` is `httpx` or
    `httpx2` (the `openai` client's): the two share an API but not their classes."""

    class Body(library.AsyncByteStream):  # type: ignore[name-defined,misc]  # either library's
        def __init__(self, exchange: Exchange) -> None:
            self._exchange = exchange

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for part in self._exchange.parts():
                yield part

        async def aclose(self) -> None:
            await self._exchange.aclose()

    class Transport(library.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        async def handle_async_request(self, request: Any) -> Any:
            assert isinstance(request.stream, AsyncIterable)
            exchange = Exchange(app, scope_of(request), request.stream)
            status, headers = await exchange.start()
            return library.Response(status, headers=headers, stream=Body(exchange), request=request)

    return Transport()
