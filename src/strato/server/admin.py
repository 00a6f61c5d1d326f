"""Admin API: add and remove models while the gateway runs (LiteLLM's `/model/new` and
`/model/delete`). This is how a LoRA adapter is attached to a local base model under its own name,
and detached again. Guarded by the master key (`server.master_key`, or the older `server.admin_key`);
without one the admin API is off."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from strato.config import ConfigError, ModelEntry, describe_validation_error
from strato.errors import InvalidRequest, StratoError
from strato.gateway import Gateway
from strato.server.wire import models_body

router = APIRouter(prefix="/admin")


class Forbidden(StratoError):
    status = 403
    type = "permission_error"
    code = "admin_forbidden"


def admin_gateway(request: Request) -> Gateway:
    """The gateway, once the request has shown the master key (or the older `admin_key`)."""
    keys: list[str] = request.app.state.settings.server.admin_keys()
    if not keys:
        raise Forbidden("the admin API is off; set STRATO_MASTER_KEY (server.master_key) to use it")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    # Compare with every key, so the time taken does not say which one nearly matched.
    if not sum(secrets.compare_digest(given.encode(), key.encode()) for key in keys):
        raise Forbidden("a valid admin key is required (Authorization: Bearer <master key>)")
    gateway: Gateway = request.app.state.gateway
    return gateway


@router.post("/models", status_code=201)
async def add_model(request: Request, body: dict[str, Any]) -> JSONResponse:
    """Serve a new model entry, in the same shape as an entry of `models:` in strato.yaml."""
    gateway = admin_gateway(request)
    try:
        entry = ModelEntry.model_validate(body)
        gateway.models.add(entry)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
    except ConfigError as exc:
        raise InvalidRequest(str(exc)) from None
    infos = [info for info in gateway.list_models() if info.name == entry.name]
    return JSONResponse(models_body(infos, request.app.state.started)["data"][0], status_code=201)


@router.delete("/models/{name}")
async def remove_model(name: str, request: Request) -> Response:
    """Stop serving `name`; requests already running finish first."""
    await admin_gateway(request).models.remove(name)
    return JSONResponse({"id": name, "object": "model", "deleted": True})
