"""`/openapi.json` as the server behaves.

The routes declare what FastAPI cannot see: the errors each can give (all in OpenAI's error body,
`errors()`), the bodies and query parameters they read themselves (`json_body()`, `query()`). FastAPI
derives the rest from them; `install_openapi` finishes the document: no 422 (validation errors are
400, `errors.py`), the bearer scheme on the routes that check keys (required on /v1 only when a
master key is set, as the server does), the trace-id header every /v1 answer carries, and what
depends on what is installed (the providers a model entry may name)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from strato.config import GuardsSettings, Settings
from strato.providers.registry import ENTRY_POINT_GROUP
from strato.server.schemas import ErrorBody

# What each status means, across strato's routes; a route may say more about its own.
ERRORS: dict[int, str] = {
    400: "The request is invalid: a field (named in `error.param`), a body that is not JSON or not "
    "UTF-8, text that is not Unicode (`invalid_text`), or a value the server cannot serve.",
    401: "No API key, or one that is unknown, revoked or expired (`invalid_api_key`). Only when "
    "`server.master_key` is set.",
    403: "The key may not do this.",
    404: "Not found.",
    408: "The request body did not arrive within `server.body_timeout_seconds` (`request_timeout`).",
    413: "The request body is larger than `server.max_body_bytes` (`request_too_large`).",
    429: "Too many requests: the key's rate limit or budget, a full queue on a local model, or an "
    "upstream's own limit. `retry-after` says when to try again, when it is known.",
    500: "A failure inside strato (`internal_error`); the server log has the details.",
    502: "The model's upstream failed or sent something strato cannot read (`upstream_error`).",
    503: "No deployment can take the request now, or a model is unloading (try again shortly).",
    504: "The model's upstream did not answer in time (`upstream_timeout`).",
}
BODY_ERRORS = (400, 408, 413)  # any request with a body
# The generation and embedding routes: through auth, guards, routing and a provider.
MODEL_ERRORS = (*BODY_ERRORS, 401, 403, 404, 429, 500, 502, 503, 504)

RETRY_AFTER = {
    "retry-after": {
        "description": "Seconds to wait before trying again (an upstream's own may be an HTTP date).",
        "schema": {"type": "string"},
    }
}


def errors(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for these error statuses; `(status, description)` says what a
    status means on this route."""
    declared: dict[int | str, dict[str, Any]] = {}
    for item in statuses:
        status, description = item if isinstance(item, tuple) else (item, ERRORS[item])
        declared[status] = {"model": ErrorBody, "description": description}
        if status == 429:
            declared[status]["headers"] = RETRY_AFTER
    return declared


def json_body(model: type[BaseModel], description: str, example: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself (to check the caller first, or
    because the model is not the whole story). The schemas it refers to join the document's
    components (`finish`)."""
    content = {"schema": model.model_json_schema(ref_template=COMPONENT), "example": example}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": content},
        }
    }


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter a route reads from `request.query_params` itself."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


# The finished document.
BEARER = "bearer"
DESCRIPTION = """An OpenAI-compatible gateway over local and remote models, with every request traced.

Every error is OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`; an invalid
request is a 400 (never a 422). Every /v1 answer carries `x-strato-trace-id`, the id of its trace
(`GET /v1/traces/{trace_id}`, `POST /v1/feedback`)."""
SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "`Authorization: Bearer <key>`. With `server.master_key` set, every /v1 route needs the "
    "master key or a virtual key (`POST /admin/keys`); unset, /v1 is open (and strato listens on a "
    "loopback address only). /admin needs the master key (or `server.admin_key`) always. /metrics "
    "takes `server.metrics_token` or an admin key; with no token set, loopback clients need none.",
}
TRACE_HEADER = {
    "x-strato-trace-id": {
        "description": "The id of this request's trace.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    }
}
COMPONENT = "#/components/schemas/{model}"
ERROR_BODY = COMPONENT.format(model="ErrorBody")
# `strato.auth.keys.parse_expiry`: a period from now, a date or time, or epoch seconds.
EXPIRES = [
    {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*[smhdw]\s*$"},
    {"type": "string", "format": "date"},
    {"type": "string", "format": "date-time"},
    {"type": "number"},
    {"type": "null"},
]
NOT_BLANK = r"\S"  # `strato.config.Name`: anything but empty or only spaces


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve the finished document at /openapi.json (built on first request, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=DESCRIPTION, routes=app.routes
            )
            app.openapi_schema = finish(document, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise it


def finish(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {BEARER: SCHEME}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            _hoist_definitions(operation, schemas)
            operation["responses"].pop("422", None)
            for status, response in operation["responses"].items():
                if int(status) >= 400:  # also on routes whose success is not JSON (/metrics)
                    response["content"] = {"application/json": {"schema": {"$ref": ERROR_BODY}}}
            security = _security(path, settings)
            if security is not None:
                operation["security"] = security
            if path.startswith("/v1/"):
                for response in operation["responses"].values():
                    response["headers"] = {**TRACE_HEADER, **response.get("headers", {})}
    _model_entry(document["paths"]["/admin/models"]["post"]["requestBody"])
    _key_spec(schemas)
    return document


def _hoist_definitions(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The schemas a `json_body` refers to, moved to the components its references point at."""
    for content in operation.get("requestBody", {}).get("content", {}).values():
        for name, definition in content.get("schema", {}).pop("$defs", {}).items():
            if schemas.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are both called {name!r} in the OpenAPI document")


def _security(path: str, settings: Settings) -> list[dict[str, list[str]]] | None:
    """The security requirement of the operations at `path` (None: none)."""
    if path.startswith("/admin/"):
        return [{BEARER: []}]
    if path.startswith("/v1/"):
        return [{BEARER: []}] if settings.server.master_key else None
    if path == "/metrics":
        return [{BEARER: []}, {}]  # a loopback client needs no token while none is set
    return None


def _model_entry(body: dict[str, Any]) -> None:
    """A model entry names a provider that is installed (each registers under an entry point)."""
    schema = body["content"]["application/json"]["schema"]
    providers = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    _property(schema, "provider", lambda provider: provider.update(enum=providers))
    _property(schema, "name", lambda name: name.update(minLength=1, pattern=NOT_BLANK))


def _key_spec(schemas: dict[str, Any]) -> None:
    """What `KeySpec` checks besides its types: a name that is not blank, the forms of `expires`,
    and guard overrides that are the guards' own settings."""
    spec = schemas["KeySpec"]
    _property(spec, "name", lambda name: name.update(minLength=1, pattern=NOT_BLANK))
    _property(spec, "expires", lambda expires: expires.update(anyOf=EXPIRES))
    guards = GuardsSettings.model_json_schema(ref_template=COMPONENT)
    schemas.update(guards.pop("$defs"))
    sections = {
        name: prop for name, prop in guards["properties"].items() if "$ref" in prop and name != "models"
    }
    overrides = {"type": "object", "properties": sections, "additionalProperties": False}
    _property(spec, "guards", lambda field: field.update(anyOf=[overrides, {"type": "null"}]))


def _property(schema: dict[str, Any], name: str, change: Callable[[dict[str, Any]], None]) -> None:
    change(schema["properties"][name])
