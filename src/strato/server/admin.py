"""Admin API: add and remove models while the gateway runs (LiteLLM's `/model/new` and
`/model/delete`). This is how a LoRA adapter is attached to a local base model under its own name,
and detached again. Guarded by the master key (`server.master_key`, or the older `server.admin_key`);
without one the admin API is off.

`AdminGuardMiddleware` refuses every /admin request without the admin key before a route parses
it; the refusal is audited (`auth.refused`, the path as subject). `admin_services` checks again, so a
route is never open because the middleware is missing."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from strato.auth.audit import AuditEvent
from strato.config import ConfigError, ModelEntry, Settings, describe_validation_error
from strato.errors import InvalidRequest, StratoError
from strato.runtime import Runtime
from strato.server.errors import error_response
from strato.server.middleware import bearer_token
from strato.server.openapi import BODY_ERRORS, errors, json_body
from strato.server.schemas import DeletedModel, Model
from strato.server.services import services, services_of
from strato.wire.responses import models_body

router = APIRouter(prefix="/admin")

REFUSED = "auth.refused"  # the gateway's kind for refused requests; the subject says which path
SUBJECT_LENGTH = 256  # the audit table's subject column: a longer path would fail the whole batch


class Forbidden(StratoError):
    status = 403
    type = "permission_error"
    code = "admin_forbidden"


# Every admin route can refuse the caller.
FORBIDDEN = (403, "Not the master key (or `server.admin_key`), or the admin API is off (`admin_forbidden`).")


def is_admin(settings: Settings, credential: str | None) -> bool:
    """Whether `credential` is the master key (or the older `admin_key`)."""
    return matches_any(credential, settings.server.admin_keys())


def matches_any(credential: str | None, keys: list[str]) -> bool:
    """Whether `credential` is one of `keys`, compared with every one, so the time taken does not
    say which one nearly matched."""
    given = (credential or "").encode()
    return bool(credential) and sum(secrets.compare_digest(given, key.encode()) for key in keys) > 0


def admin_refusal(settings: Settings, credential: str | None) -> Forbidden | None:
    """Why a request with this bearer credential may not use the admin API; None when it may."""
    if not settings.server.admin_keys():
        return Forbidden("the admin API is off; set STRATO_MASTER_KEY (server.master_key) to use it")
    if not is_admin(settings, credential):
        return Forbidden("a valid admin key is required (Authorization: Bearer <master key>)")
    return None


async def audit_refusal(
    runtime: Runtime, method: str, path: str, error: StratoError, credential: str | None
) -> None:
    """Audit a refused admin or traces API request: about its path, by the virtual key it showed
    when that key is valid (by id, never the secret), with the status and error code."""
    try:
        key = await runtime.auth.authenticate_async(credential)
    except StratoError:
        key = None  # missing, unknown, revoked or expired: an anonymous caller
    detail = {"status": error.status, "code": error.code, "method": method}
    actor = key.id if key is not None else None
    runtime.audit.submit(AuditEvent(REFUSED, actor, path[:SUBJECT_LENGTH], detail=detail))


class AdminGuardMiddleware:
    """Refuses /admin requests without the admin key with 403, and audits them, before any route
    reads the request (so an unauthorised caller never gets as far as body validation)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/admin" or path.startswith("/admin/")):
            await self.app(scope, receive, send)
            return
        runtime = services_of(scope)
        credential = bearer_token(scope.get("headers", []))
        refusal = admin_refusal(runtime.settings, credential)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await audit_refusal(runtime, scope["method"], path, refusal, credential)
        await error_response(refusal)(scope, receive, send)


async def admin_services(request: Request) -> Runtime:
    """The runtime's services, once the request has shown the master key (or the older
    `admin_key`)."""
    runtime = services(request)
    credential = bearer_token(request.scope.get("headers", []))
    refusal = admin_refusal(runtime.settings, credential)
    if refusal is not None:
        await audit_refusal(runtime, request.method, request.url.path, refusal, credential)
        raise refusal
    return runtime


@router.post(
    "/models",
    status_code=201,
    response_model=Model,
    responses=errors(*BODY_ERRORS, FORBIDDEN, 500),
    openapi_extra=json_body(
        ModelEntry,
        "A model entry, as under `models:` in strato.yaml; other fields are the provider's options.",
        {"name": "qwen-remote", "provider": "openai", "base_url": "http://127.0.0.1:8080/v1"},
    ),
)
async def add_model(request: Request, body: dict[str, Any]) -> JSONResponse:
    """Serve a new model entry, in the same shape as an entry of `models:` in strato.yaml."""
    models = (await admin_services(request)).models
    try:
        entry = ModelEntry.model_validate(body)
        models.add(entry)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
    except ConfigError as exc:
        raise InvalidRequest(str(exc)) from None
    infos = [info for info in models.infos() if info.name == entry.name]
    return JSONResponse(models_body(infos, services(request).started)["data"][0], status_code=201)


# `:path`: model names may hold a slash (`meta-llama/Llama-3.2-1B`).
@router.delete(
    "/models/{name:path}",
    response_model=DeletedModel,
    responses=errors(FORBIDDEN, (404, "No model of this name is served (`model_not_found`)."), 500),
)
async def remove_model(name: str, request: Request) -> Response:
    """Stop serving `name`; requests already running finish first."""
    await (await admin_services(request)).models.remove(name)
    return JSONResponse({"id": name, "object": "model", "deleted": True})
