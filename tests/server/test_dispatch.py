"""The model routes' own way in (`server.dispatch`): a POST to a model route reaches its endpoint
without FastAPI's per-request stack, with the same middleware and the same error answers; every
other request goes through FastAPI."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from strato.errors import InvalidRequest, StratoError
from strato.server.dispatch import ModelRouteDispatch
from strato.server.routes import DirectRoute
from tests.support.inprocess import in_process
from tests.support.upstream import Upstream

router = APIRouter(route_class=DirectRoute)


@router.post("/v1/chat/completions")
async def answered(request: Request) -> Response:
    ctx = request.state.strato_ctx  # the trace context middleware ran
    return JSONResponse({"body": (await request.body()).decode(), "trace": ctx.trace_id})


@router.post("/v1/completions")
async def refused(request: Request) -> Response:
    raise InvalidRequest("not this prompt", param="prompt")


@router.post("/v1/embeddings")
async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


class Gateway:
    """Where the error answers record the requests they refuse."""

    def __init__(self) -> None:
        self.rejected: list[tuple[str, int]] = []

    def record_rejected(
        self, ctx: object, endpoint: str, model: object, body: object, error: StratoError
    ) -> None:
        self.rejected.append((str(endpoint), error.status))


class Rest:
    """What the dispatch passes everything else to: records that it was called."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append((scope["method"], scope["path"]))
            await JSONResponse({"via": "fastapi"})(scope, receive, send)


def client(rest: Rest, limit: int = 1000, gateway: Gateway | None = None) -> httpx.AsyncClient:
    dispatch = ModelRouteDispatch(rest, router.routes, limit=limit, timeout=5)
    # What Starlette puts in the scope before any middleware: the app, whose runtime the routes use.
    app = SimpleNamespace(state=SimpleNamespace(runtime=SimpleNamespace(gateway=gateway or Gateway())))

    async def in_app(scope: Scope, receive: Receive, send: Send) -> None:
        await dispatch({**scope, "app": app}, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=in_app), base_url="http://strato.test")


async def test_a_post_to_a_model_route_reaches_its_endpoint_directly() -> None:
    rest = Rest()
    async with client(rest) as http:
        response = await http.post("/v1/chat/completions", content=b'{"hi": 1}')
    assert response.status_code == 200
    assert response.json()["body"] == '{"hi": 1}'
    assert response.headers["x-strato-trace-id"] == response.json()["trace"]
    assert rest.paths == []


async def test_other_methods_and_paths_go_through_fastapi() -> None:
    rest = Rest()
    async with client(rest) as http:
        assert (await http.get("/v1/chat/completions")).json() == {"via": "fastapi"}
        assert (await http.post("/v1/models")).json() == {"via": "fastapi"}
    assert rest.paths == [("GET", "/v1/chat/completions"), ("POST", "/v1/models")]


async def test_failures_get_the_error_answers_of_every_route(caplog: pytest.LogCaptureFixture) -> None:
    gateway = Gateway()
    async with client(Rest(), gateway=gateway) as http:
        invalid = await http.post("/v1/completions", content=b"{}")
        with caplog.at_level(logging.ERROR, logger="strato.server.errors"):
            bug = await http.post("/v1/embeddings", content=b"{}")
    assert invalid.status_code == 400
    assert invalid.json()["error"] == {
        "message": "not this prompt",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "invalid_request",
    }
    assert bug.status_code == 500
    assert bug.json()["error"]["type"] == "api_error"
    assert "a bug" not in bug.text  # the log has it, the client does not
    assert any(record.exc_info and "a bug" in str(record.exc_info[1]) for record in caplog.records)
    assert gateway.rejected == [("completion", 400), ("embedding", 500)]  # both traced


async def test_the_body_limit_and_the_unicode_check_hold_on_the_direct_path() -> None:
    async with client(Rest(), limit=10) as http:
        large = await http.post("/v1/chat/completions", content=b'{"text": "far too long"}')
    assert large.status_code == 413
    async with client(Rest()) as http:
        lone = await http.post("/v1/chat/completions", content=b'{"text": "\\ud800"}')
    assert lone.status_code == 400
    assert lone.json()["error"]["param"] == "text"


async def test_the_app_answers_model_routes_directly(tmp_path: Path, upstream: Upstream) -> None:
    """In the whole app: the chat route is answered without FastAPI's router (which would match
    the path first), and bad input still gets OpenAI's errors and a trace."""
    async with in_process(tmp_path, [upstream.model("echo")]) as served:
        matched: list[str] = []
        original = served.app.router.middleware_stack  # every request FastAPI's router routes

        async def watched(scope: Scope, receive: Receive, send: Send) -> None:
            matched.append(scope["path"])
            await original(scope, receive, send)

        served.app.router.middleware_stack = watched
        chat = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        ok = await served.http.post("/v1/chat/completions", json=chat)
        bad = await served.http.post("/v1/chat/completions", json={"model": "echo"})
        await served.http.get("/healthz")
        assert served.trace(bad.headers["x-strato-trace-id"]).status == 400
    assert ok.status_code == 200
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "messages"
    assert matched == ["/healthz"]
