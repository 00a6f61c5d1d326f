"""Admin API: add and remove models while the gateway runs (LiteLLM's `/model/new` and
`/model/delete`). This is how a LoRA adapter is attached to a local base model under its own name,
and detached again. Guarded by `server.admin_key`; without one the admin API is off."""

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


def _admin(request: Request) -> Gateway:
    key: str | None = request.app.state.settings.server.admin_key
    if not key:
        raise Forbidden("the admin API is off; set server.admin_key in the configuration to use it")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not secrets.compare_digest(given.encode(), key.encode()):
        raise Forbidden("a valid admin key is required (Authorization: Bearer <server.admin_key>)")
    gateway: Gateway = request.app.state.gateway
    return gateway


@router.post("/models", status_code=201)
async def add_model(request: Request, body: dict[str, Any]) -> JSONResponse:
    """Serve a new model entry, in the same shape as an entry of `models:` in strato.yaml."""
    gateway = _admin(request)
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
    await _admin(request).models.remove(name)
    return JSONResponse({"id": name, "object": "model", "deleted": True})
