"""Admin API for virtual keys: create, list, revoke, rotate. The same operations as `strato keys`;
a secret appears in a response only when it is created or rotated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from strato.auth import MASTER_KEY_ID, KeySpec, KeyStore, VirtualKey
from strato.errors import InvalidRequest, StratoError
from strato.server.admin import admin_gateway

router = APIRouter(prefix="/admin/keys")


class KeyNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "key_not_found"


# The admin API accepts only the master key (or the older admin key), so its changes are audited as
# made by the master key.
ADMIN_ACTOR = MASTER_KEY_ID


def _keys(request: Request) -> KeyStore:
    keys = admin_gateway(request).auth.keys
    assert keys is not None  # opened whenever an admin key is set
    return keys


def _shown(key: VirtualKey, secret: str | None = None) -> dict[str, Any]:
    body = {"object": "api_key", **key.as_dict()}
    return {**body, "key": secret} if secret is not None else body


@router.post("", status_code=201)
async def create_key(request: Request, body: KeySpec) -> JSONResponse:
    keys = _keys(request)
    try:
        key, secret = keys.create(body, actor=ADMIN_ACTOR)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="expires") from None
    return JSONResponse(_shown(key, secret), status_code=201)


@router.get("")
async def list_keys(request: Request) -> JSONResponse:
    revoked = request.query_params.get("include_revoked") in {"1", "true"}
    return JSONResponse({"object": "list", "data": [_shown(k) for k in _keys(request).list(revoked)]})


@router.delete("/{key_id}")
async def revoke_key(key_id: str, request: Request) -> JSONResponse:
    key = _keys(request).revoke(key_id, actor=ADMIN_ACTOR)
    if key is None:
        raise KeyNotFound(f"No live API key with id {key_id!r}.")
    return JSONResponse({**_shown(key), "deleted": True})


@router.post("/{key_id}/rotate")
async def rotate_key(key_id: str, request: Request) -> JSONResponse:
    rotated = _keys(request).rotate(key_id, actor=ADMIN_ACTOR)
    if rotated is None:
        raise KeyNotFound(f"No live API key with id {key_id!r}.")
    return JSONResponse(_shown(*rotated))
