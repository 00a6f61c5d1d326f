"""`POST /v1/guards/scan`: what the configured guards find in a text and what they would do."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from strato.server.middleware import bearer_token
from strato.server.openapi import BODY_ERRORS, errors
from strato.server.resources import GuardScan
from strato.server.services import services

router = APIRouter()


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(max_length=1_000_000)
    direction: Literal["input", "output"] = "input"
    model: str | None = None  # whose policy applies (guards.models); unset: the global policy
    system: str | None = Field(None, max_length=1_000_000)  # the system prompt `text` is sent under


@router.post("/v1/guards/scan", response_model=GuardScan, responses=errors(*BODY_ERRORS, 401, 500))
async def scan(body: ScanRequest, request: Request) -> JSONResponse:
    """Needs a key like every /v1 route once a master key is set; a virtual key's guard settings
    apply to its scans as to its requests."""
    runtime = services(request)
    key = await runtime.auth.authenticate_async(bearer_token(request.scope.get("headers", [])))
    guards = runtime.guards
    overrides = key.guards if key is not None else None
    verdict = await guards.scan(body.text, body.direction, body.model, overrides, system=body.system)
    return JSONResponse(
        {
            "object": "guards.scan",
            "action": verdict.action,
            "guard": verdict.guard,
            "findings": [f.as_dict() for f in verdict.findings],
            "text": verdict.text,  # with placeholders when the action is redact
        }
    )
