"""The traces API: `GET /v1/traces` and `GET /v1/traces/{trace_id}`, what `strato traces list` and
`strato traces show` print, over HTTP.

Who sees what: a virtual key only the traces it made (another key's trace is 404, exactly as one
that does not exist); the admin key every key's, with an `api_key` filter; without a master key (an
open API on loopback) everyone everything. A bad key gets 401 and an audit entry.

The routes are plain functions, so FastAPI runs their database reads on its thread pool and never
on the event loop.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from strato.auth import MASTER_KEY_ID
from strato.errors import InvalidRequest, StratoError
from strato.gateway import Gateway
from strato.server.admin import audit_refusal, is_admin
from strato.server.middleware import bearer_token
from strato.server.wire import usage_body
from strato.store import Store
from strato.types import Trace, TraceQuery, Usage

router = APIRouter(prefix="/v1/traces")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
STATUS_WORDS = {"ok": (0, 400), "error": (400, 1000)}  # statuses in [low, high)


class TraceNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "trace_not_found"


@router.get("")
def list_traces(request: Request) -> JSONResponse:
    """Traces newest first, in OpenAI's list shape, `limit` at a time; pass the `last_id` of one
    page as `after` to get the next."""
    own = visible_key(request)
    params, store = request.query_params, _store(request)
    limit = _limit(params.get("limit"))
    since = _instant(params.get("since"), "since")
    query = TraceQuery(limit=limit + 1, model=params.get("model") or None, since=since)
    statuses = _statuses(params.get("status"))
    older_than = _older_than(store, params.get("before"), params.get("after"), own)
    wanted_key = params.get("api_key") or None
    if own is not None and wanted_key not in (None, own):
        return JSONResponse(_page([], limit))  # a key asking for another key's traces: none of its own
    found = store.traces(query, api_key=own or wanted_key, statuses=statuses, older_than=older_than)
    return JSONResponse(_page(found, limit))


@router.get("/{trace_id}")
def get_trace(trace_id: str, request: Request) -> JSONResponse:
    """One trace by its full id (the `x-strato-trace-id` header of its response)."""
    own = visible_key(request)
    found = _visible_trace(_store(request), trace_id, own)
    if found is None:
        raise TraceNotFound(f"No trace with id {trace_id!r}.")
    return JSONResponse(trace_object(found))


def visible_key(request: Request) -> str | None:
    """The key id whose traces the caller may see, or None for every key's. Raises 401 (audited)
    when a master key is set and the caller's key is missing, unknown, revoked or expired."""
    gateway: Gateway = request.app.state.gateway
    credential = bearer_token(request.scope.get("headers", []))
    if is_admin(request.app.state.settings, credential):
        return None
    try:
        key = gateway.auth.authenticate(credential)
    except StratoError as exc:
        audit_refusal(gateway, request.method, request.url.path, exc, credential)
        raise
    return None if key is None or key.id == MASTER_KEY_ID else key.id


def trace_object(trace: Trace) -> dict[str, Any]:
    """A trace on the wire. The guards' decisions, which the store keeps inside the request record,
    get a field of their own."""
    request = dict(trace.request)
    guards = request.pop("guards", None)
    failed = trace.error is not None or trace.error_code is not None
    usage = Usage(trace.prompt_tokens, trace.completion_tokens, trace.cached_tokens)
    return {
        "id": trace.id,
        "object": "trace",
        "created": int(trace.started_at),
        "started_at": trace.started_at,
        "ended_at": trace.ended_at,
        "endpoint": str(trace.endpoint),
        "model": trace.requested_model,
        "deployment": trace.deployment,
        "provider": trace.provider,
        "api_key": trace.api_key,
        "user": trace.user,
        "stream": trace.stream,
        "status": trace.status,
        "finish_reason": trace.finish_reason,
        "error": {"code": trace.error_code, "message": trace.error} if failed else None,
        "usage": usage_body(usage),
        "cost": trace.cost,
        "latency_ms": trace.latency_ms,
        "ttft_ms": trace.ttft_ms,
        "cache": trace.cache,
        "route": trace.route,
        "attempts": trace.attempts,
        "guards": guards,
        "request": request,
        "completion": trace.completion,
    }


def _page(found: list[Trace], limit: int) -> dict[str, Any]:
    data = [trace_object(t) for t in found[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(found) > limit,
    }


def _store(request: Request) -> Store:
    gateway: Gateway = request.app.state.gateway
    return gateway.recorder.store


def _visible_trace(store: Store, trace_id: str, own: str | None) -> Trace | None:
    """The trace with exactly this id, if the caller may see it. (The store also resolves unique
    prefixes; over HTTP that would let a key probe for other keys' ids.)"""
    found = store.trace(trace_id)
    if found is None or found.id != trace_id or (own is not None and found.api_key != own):
        return None
    return found


def _older_than(
    store: Store, before: str | None, after: str | None, own: str | None
) -> tuple[float, str] | None:
    """Where the page starts, as (started_at, id): traces started before `before`, and after the
    trace `after` in the list, whichever comes later in the list."""
    bounds: list[tuple[float, str]] = []
    at = _instant(before, "before")
    if at is not None:
        bounds.append((at, ""))  # no id sorts below "": only traces started strictly earlier
    if after:
        cursor = _visible_trace(store, after, own)
        if cursor is None:
            raise InvalidRequest(
                f"Invalid value for 'after': no trace {after!r} to page after.", param="after"
            )
        bounds.append((cursor.started_at, cursor.id))
    return min(bounds) if bounds else None


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    limit = int(value) if re.fullmatch(r"[0-9]{1,5}", value.strip()) else 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            f"Invalid value for 'limit': use a whole number from 1 to {MAX_LIMIT}.", param="limit"
        )
    return limit


def _instant(value: str | None, param: str) -> float | None:
    """A point in time: unix seconds, or an ISO 8601 time (UTC unless it names its offset)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            seconds = math.nan
        else:
            seconds = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(seconds):
        raise InvalidRequest(
            f"Invalid value for '{param}': use unix seconds (1767225600) or an ISO 8601 time "
            "(2026-01-01T00:00:00Z).",
            param=param,
        )
    return seconds


def _statuses(value: str | None) -> tuple[int, int] | None:
    """`ok`, `error`, a status code (`429`) or a class (`4xx`) as a range [low, high)."""
    if not value:
        return None
    word = value.strip().lower()
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    if re.fullmatch(r"[1-5]xx", word):
        return int(word[0]) * 100, int(word[0]) * 100 + 100
    if re.fullmatch(r"[1-5]\d\d", word):
        return int(word), int(word) + 1
    raise InvalidRequest(
        "Invalid value for 'status': use ok, error, a status code (429) or a class (4xx).", param="status"
    )
