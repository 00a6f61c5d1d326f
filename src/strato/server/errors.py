"""Every failure leaves the server as OpenAI's error body; none as a stack trace."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from strato.errors import InvalidRequest, StratoError
from strato.gateway import CallContext, InternalError
from strato.server.middleware import ENDPOINTS
from strato.server.services import services
from strato.wire.requests import MAX_NESTING

log = logging.getLogger(__name__)


UNDECODABLE_BODY = "There was an error parsing the body"  # FastAPI's detail when the bytes do not decode
LOCATIONS = {"body", "query", "path", "header", "cookie"}  # where FastAPI says a bad value was
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def error_response(error: StratoError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error.to_body(), status_code=error.status, headers={**error.headers, **(headers or {})}
    )


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """The first problem of the request body, in OpenAI's words."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. Send valid JSON "
            f"({first.get('ctx', {}).get('error', 'invalid JSON')}).",
            code="invalid_json",
        )
    loc = [str(p) for p in first.get("loc", ())]
    loc = loc[1:] if loc and loc[0] in LOCATIONS else loc
    # Union types add the member's name to the location ("messages.0.content.str"); keep the path.
    param = ".".join(p for p in loc if p not in {"str", "list[str]", "list[int]", "list[list[int]]"}) or None
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'." if param else "The request body is missing."
    elif first.get("type") in {"model_type", "dict_type"} and not loc:
        message = "The request body must be a JSON object."
    else:
        message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}." if param else first["msg"]
    return InvalidRequest(message, param=param)


async def _record(request: Request, error: StratoError) -> None:
    """Requests refused before the gateway saw them are traced too."""
    ctx: CallContext | None = getattr(request.state, "strato_ctx", None)
    endpoint = ENDPOINTS.get(request.url.path)
    if ctx is None or endpoint is None or ctx.recorded:
        return
    body: Any = None
    try:
        raw = await request.body()
        body = json.loads(raw) if raw else None
    except Exception:
        body = "<unreadable body>"
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    services(request).gateway.record_rejected(ctx, endpoint, model, body, error)


async def _unreadable(request: Request) -> InvalidRequest:
    """Why FastAPI could not read the body: bytes that are not UTF-8, or JSON nested more deeply
    than a parser follows (both reach us as the same 400)."""
    try:
        (await request.body()).decode("utf-8")
    except Exception:  # not UTF-8 (or the client is gone: nobody reads this)
        return InvalidRequest(
            "We could not read the body of your request: send JSON encoded as UTF-8.", code="invalid_json"
        )
    return InvalidRequest(
        "We could not parse the JSON body of your request: it nests lists and objects too deeply "
        f"(strato accepts at most {MAX_NESTING} levels).",
        code="invalid_json",
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. (Starlette names only those of the route that
    matched the path first, when several routes share it with different methods.)"""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def error_answer(request: Request, exc: Exception) -> JSONResponse:
    """The answer to a failure while a route handled `request`, in OpenAI's format; a request
    refused before the gateway saw it is traced. What every route's failures go through: FastAPI's
    exception handlers (`install_error_handlers`) and the model routes' own dispatch
    (`server.dispatch`)."""
    if isinstance(exc, StratoError):
        await _record(request, exc)
        return error_response(exc)
    if isinstance(exc, RequestValidationError):
        error = validation_error(exc)
        await _record(request, error)
        return error_response(error)
    if isinstance(exc, HTTPException):
        return await _http_error(request, exc)
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    internal = InternalError("internal error; the server log has the details")
    await _record(request, internal)
    return error_response(internal)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == UNDECODABLE_BODY:  # FastAPI's word for bad bytes
        unreadable = await _unreadable(request)
        await _record(request, unreadable)
        return error_response(unreadable)
    headers = dict(exc.headers or {})
    error = StratoError(str(exc.detail))
    error.status, error.type = exc.status_code, "invalid_request_error"
    error.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        error.message = f"{request.method} is not allowed on {request.url.path}; use {' or '.join(allowed)}."
    return error_response(error, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    for kind in (StratoError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, error_answer)
