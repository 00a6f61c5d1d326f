"""Admin API for virtual keys: create, list, revoke, rotate. The same operations as `strato keys`;
a secret appears in a response only when it is created or rotated. The key store is SQL: each route
runs it on the thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from strato.auth import MASTER_KEY_ID, KeySpec, KeyStore, VirtualKey
from strato.errors import InvalidRequest, StratoError
from strato.server.admin import FORBIDDEN, admin_services
from strato.server.openapi import BODY_ERRORS, errors
from strato.server.resources import ApiKeyList, ApiKeyWithSecret, DeletedApiKey
from strato.server.services import services

router = APIRouter(prefix="/admin/keys")


class KeyNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "key_not_found"


# Shown, not enforced: any other id is a key that does not exist (404).
KEY_ID = Path(json_schema_extra={"pattern": "^key-[0-9a-f]{12}$"})
NOT_FOUND = (404, "No live key with this id (`key_not_found`).")


# The admin API accepts only the master key (or the older admin key), so its changes are audited as
# made by the master key.
ADMIN_ACTOR = MASTER_KEY_ID


async def _keys(request: Request) -> KeyStore:
    keys = (await admin_services(request)).keys
    assert keys is not None  # opened whenever an admin key is set
    return keys


def _shown(key: VirtualKey, secret: str | None = None) -> dict[str, Any]:
    body = {"object": "api_key", **key.as_dict()}
    return {**body, "key": secret} if secret is not None else body


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyWithSecret,
    responses=errors(*BODY_ERRORS, FORBIDDEN, 500),
)
async def create_key(request: Request, body: KeySpec) -> JSONResponse:
    keys = await _keys(request)
    try:
        key, secret = await run_in_threadpool(keys.create, body, actor=ADMIN_ACTOR)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="expires") from None
    return JSONResponse(_shown(key, secret), status_code=201)


@router.get("", response_model=ApiKeyList, responses=errors(400, FORBIDDEN, 500))
async def list_keys(request: Request, include_revoked: bool = False) -> JSONResponse:
    keys = await run_in_threadpool((await _keys(request)).list, include_revoked)
    return JSONResponse({"object": "list", "data": [_shown(k) for k in keys]})


@router.delete("/{key_id}", response_model=DeletedApiKey, responses=errors(FORBIDDEN, NOT_FOUND, 500))
async def revoke_key(key_id: Annotated[str, KEY_ID], request: Request) -> JSONResponse:
    key = await run_in_threadpool((await _keys(request)).revoke, key_id, actor=ADMIN_ACTOR)
    if key is None:
        raise KeyNotFound(f"No live API key with id {key_id!r}.")
    services(request).auth.forget(key_id)  # this process refuses the old secret at once
    return JSONResponse({**_shown(key), "deleted": True})


@router.post("/{key_id}/rotate", response_model=ApiKeyWithSecret, responses=errors(FORBIDDEN, NOT_FOUND, 500))
async def rotate_key(key_id: Annotated[str, KEY_ID], request: Request) -> JSONResponse:
    rotated = await run_in_threadpool((await _keys(request)).rotate, key_id, actor=ADMIN_ACTOR)
    if rotated is None:
        raise KeyNotFound(f"No live API key with id {key_id!r}.")
    services(request).auth.forget(key_id)  # this process refuses the old secret at once
    return JSONResponse(_shown(*rotated))
