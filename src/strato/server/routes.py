"""OpenAI-compatible routes. Each is thin: wire schema -> core request -> gateway -> wire response."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from strato.errors import ClientDisconnected, StratoError
from strato.gateway import CallContext, Gateway
from strato.jsontext import dumps
from strato.server.admin import matches_any
from strato.server.bodies import read_body
from strato.server.middleware import bearer_token
from strato.server.openapi import MODEL_ERRORS, errors, json_body
from strato.server.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    EmbeddingList,
    Health,
    ModelList,
    TextCompletion,
    streamed,
)
from strato.server.services import services
from strato.streams import Stream
from strato.types import Chunk, GenerationRequest
from strato.wire.requests import ChatCompletionRequest, CompletionRequest, EmbeddingsRequest
from strato.wire.responses import ResponseShape, embeddings_body, models_body

T = TypeVar("T")


class DirectRoute(APIRoute):
    """A route whose endpoint reads its own request (`read_body`) and returns its own response.
    FastAPI documents it like any other; per request it calls the endpoint directly, without
    reading the body for it, solving dependencies or validating the response (about a fifth of
    what a FastAPI route costs)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


router = APIRouter()
model_router = APIRouter(route_class=DirectRoute)  # the model routes: the request path's hot end


def _gateway(request: Request) -> Gateway:
    return services(request).gateway


def _ctx(request: Request) -> CallContext:
    ctx: CallContext = request.state.strato_ctx
    return ctx


# On the model routes: which model a 403 or 404 is about.
MODEL_REFUSALS = (
    (403, "The key may not use this model (`model_not_allowed`)."),
    (404, "No model of this name is configured (`model_not_found`)."),
)


def _model_errors() -> dict[int | str, dict[str, Any]]:
    return {**errors(*MODEL_ERRORS), **errors(*MODEL_REFUSALS)}


@model_router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "The answer; with `stream: true`, server-sent events.",
            "content": streamed(ChatCompletionChunk, "A ChatCompletionChunk per event."),
        },
        **_model_errors(),
    },
    openapi_extra=json_body(
        ChatCompletionRequest,
        "The conversation so far and how to answer it.",
        {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Say hello."}]},
    ),
)
async def chat_completions(request: Request) -> Response:
    body = await read_body(request, ChatCompletionRequest)
    return await _generate(
        request, body.to_core(), chat=True, include_usage=body.include_usage, stream=body.stream
    )


@model_router.post(
    "/v1/completions",
    response_model=TextCompletion,
    responses={
        200: {
            "description": "The completion; with `stream: true`, server-sent events.",
            "content": streamed(TextCompletion, "A TextCompletion per event."),
        },
        **_model_errors(),
    },
    openapi_extra=json_body(
        CompletionRequest,
        "The prompt to continue and how to continue it.",
        {"model": "smollm2-135m-instruct", "prompt": "Once upon a time", "max_tokens": 16},
    ),
)
async def completions(request: Request) -> Response:
    body = await read_body(request, CompletionRequest)
    return await _generate(
        request, body.to_core(), chat=False, include_usage=body.include_usage, stream=body.stream
    )


@model_router.post(
    "/v1/embeddings",
    response_model=EmbeddingList,
    responses=_model_errors(),
    openapi_extra=json_body(
        EmbeddingsRequest, "What to embed, with which model.", {"model": "minilm", "input": "hello"}
    ),
)
async def embeddings(request: Request) -> JSONResponse:
    body = await read_body(request, EmbeddingsRequest)
    result = await _unless_disconnected(request, _gateway(request).embed(body.to_core(), _ctx(request)))
    return Answer(embeddings_body(body.model, result, body.encoding_format))


@router.get("/v1/models", response_model=ModelList, responses=errors(401, 500))
async def list_models(request: Request) -> JSONResponse:
    runtime = services(request)
    await runtime.auth.authenticate_async(_ctx(request).credential)
    return JSONResponse(models_body(runtime.models.infos(), runtime.started))


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"description": "Prometheus text exposition (version 0.0.4)."},
        **errors(
            (403, "Not the metrics token (or an admin key), or, with no token set, not a loopback client."),
            500,
        ),
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus exposition: with `server.metrics_token` set, for that bearer token (or an admin
    key); unset, for loopback clients only."""
    settings = services(request).settings
    credential = bearer_token(request.scope.get("headers", []))
    token = settings.server.metrics_token
    allowed = [token] if token else []
    if not matches_any(credential, [*allowed, *settings.server.admin_keys()]):
        client = request.client.host if request.client is not None else ""
        if token or not _loopback(client):
            raise MetricsForbidden(
                "/metrics needs the metrics token (Authorization: Bearer <server.metrics_token>)"
                if token
                else "/metrics answers loopback clients only; set server.metrics_token to scrape it remotely"
            )
    return Response(services(request).metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")


class MetricsForbidden(StratoError):
    status = 403
    type = "permission_error"
    code = "metrics_forbidden"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _generate(
    request: Request, core: GenerationRequest, *, chat: bool, include_usage: bool, stream: bool
) -> Response:
    gateway, ctx = _gateway(request), _ctx(request)
    shape = ResponseShape(ctx.trace_id, core.model, chat=chat)
    if not stream:
        result = await _unless_disconnected(request, gateway.generate(core, ctx))
        return Answer(shape.complete(result))
    chunks = await gateway.stream(core, ctx)
    return _AnswerResponse(
        chunks,
        _sse(chunks, shape, include_usage),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


class Answer(JSONResponse):
    """A model route's JSON answer, written by orjson (`strato.jsontext`): the same compact JSON
    as FastAPI's, in a fraction of the time."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


class _AnswerResponse(StreamingResponse):
    """A streamed answer that ends its request however the response ends: read to the end, cut by
    a disconnect, or never begun (the client left before the first byte, so `_sse` never ran)."""

    def __init__(self, chunks: Stream[Chunk], content: AsyncIterator[str], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._chunks.aclose()


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client hangs up first (which stops a local generation).
    The work runs in the request's own task; one watcher task waits for the disconnect."""
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(request)
        gone = True
        current.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise  # the server is cancelling the request itself
        current.uncancel()
        raise ClientDisconnected("the client disconnected before the answer was complete") from None
    finally:
        watcher.cancel()


async def _disconnected(request: Request) -> None:
    # The body has been read, so the next message the server sends is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _event(data: dict[str, Any]) -> str:
    return f"data: {dumps(data)}\n\n"


async def _sse(chunks: Stream[Chunk], shape: ResponseShape, include_usage: bool) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's format. A failure after the stream began is sent as an error event
    (the status line has already gone out), then the stream ends."""
    try:
        if shape.chat:
            yield _event(shape.chunk(None, role=True))
        offset = 0  # characters sent so far (the legacy completions logprobs count text offsets)
        async for chunk in chunks:
            if chunk.text or chunk.finish_reason or chunk.logprobs:
                logprobs = chunk.logprobs or None
                yield _event(shape.chunk(chunk.text, chunk.finish_reason, logprobs=logprobs, offset=offset))
                offset += sum(len(t.token) for t in chunk.logprobs)
            if chunk.usage is not None and include_usage:
                yield _event(shape.usage_chunk(chunk.usage))
        yield "data: [DONE]\n\n"
    except StratoError as exc:
        yield _event(exc.to_body())
    finally:
        await chunks.aclose()
