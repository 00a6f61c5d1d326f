"""The traces API: `GET /v1/traces` and `GET /v1/traces/{trace_id}`, what `strato traces list` and
`strato traces show` print, over HTTP.

Who sees what: a virtual key only the traces it made (another key's trace is 404, exactly as one
that does not exist); the admin key every key's, with an `api_key` filter; without a master key (an
open API on loopback) everyone everything. A bad key gets 401 and an audit entry.

A trace object (`strato.observe.export.trace_json`) carries the trace's anomalies, the feedback
given on it and, from `GET /v1/traces/{trace_id}`, its spans (`null` in lists).

The routes are plain functions, so FastAPI runs their database reads on its thread pool and never
on the event loop.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from strato.auth import MASTER_KEY_ID
from strato.config.observe import ANOMALY_KINDS
from strato.errors import InvalidRequest, StratoError
from strato.observe.export import FEEDBACK_FILTERS, trace_json, trace_query
from strato.server.admin import audit_refusal, is_admin
from strato.server.middleware import bearer_token
from strato.server.openapi import errors, query
from strato.server.resources import Trace as TraceObject
from strato.server.resources import TraceList
from strato.server.services import services
from strato.store import Store
from strato.store.sql import FEEDBACK
from strato.types import Score, Trace

router = APIRouter(prefix="/v1/traces")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
STATUS_WORDS = {"ok": (0, 400), "error": (400, 1000)}  # statuses in [low, high)


# Shown, not enforced: any other id is a trace that does not exist (404).
TRACE_ID = Path(json_schema_extra={"pattern": "^[0-9a-f]{32}$"}, description="`x-strato-trace-id`.")


class TraceNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "trace_not_found"


# An empty filter (`?model=`) is no filter.
INSTANT = {"anyOf": [{"type": "number"}, {"type": "string", "format": "date-time"}, {"const": ""}]}
FILTERS = [
    query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Page size.",
    ),
    query("after", {"type": "string"}, "The `last_id` of the previous page: the page after that trace."),
    query("before", INSTANT, "Only traces started before this time (unix seconds or ISO 8601)."),
    query(
        "since",
        INSTANT,
        "Only traces started at or after this time (unix seconds or ISO 8601, UTC by default).",
    ),
    query("until", INSTANT, "Only traces started before this time (as `since`)."),
    query("model", {"type": "string"}, "Only requests for this model."),
    query(
        "status",
        {"type": "string", "pattern": "^(ok|error|[1-5]xx|[1-5][0-9][0-9])?$"},
        "`ok`, `error`, a status code (`429`) or a class (`4xx`).",
    ),
    query("user", {"type": "string"}, "Only requests with this `user`."),
    query(
        "anomaly", {"type": "string", "enum": ["", "any", *ANOMALY_KINDS]}, "Only traces with this anomaly."
    ),
    query("feedback", {"type": "string", "enum": ["", *FEEDBACK_FILTERS]}, "Only traces with this feedback."),
    query("q", {"type": "string"}, "Words that must all occur in the request or the answer."),
    query(
        "api_key", {"type": "string"}, "Only this key's traces (the admin key; a virtual key sees its own)."
    ),
]


@router.get(
    "",
    response_model=TraceList,
    responses=errors(400, 401, 500),
    openapi_extra={"parameters": FILTERS},
)
async def list_traces(request: Request) -> JSONResponse:
    """Traces newest first, in OpenAI's list shape, `limit` at a time; pass the `last_id` of one
    page as `after` to get the next. Filters: model, status, since, until (or before), user,
    anomaly (a kind or `any`), feedback (any, none, positive, negative), q (words that must all
    occur in the request or the answer) and, for the admin key, api_key."""
    own = await visible_key(request)
    return await run_in_threadpool(_listed, request, own)


def _listed(request: Request, own: str | None) -> JSONResponse:
    params, store = request.query_params, _store(request)
    limit = _limit(params.get("limit"))
    query = trace_query(
        limit=limit + 1,
        model=params.get("model"),
        since=_instant(params.get("since"), "since"),
        until=_instant(params.get("until"), "until"),
        user=params.get("user"),
        anomaly=params.get("anomaly"),
        feedback=params.get("feedback"),
        search=params.get("q"),
    )
    statuses = _statuses(params.get("status"))
    older_than = _older_than(store, params.get("before"), params.get("after"), own)
    wanted_key = params.get("api_key") or None
    if own is not None and wanted_key not in (None, own):
        return JSONResponse(_page(store, [], limit))  # a key asking for another key's traces: none of its own
    found = store.traces(query, api_key=own or wanted_key, statuses=statuses, older_than=older_than)
    return JSONResponse(_page(store, found, limit))


@router.get(
    "/{trace_id}",
    response_model=TraceObject,
    responses=errors(401, (404, "No trace with this id that the key may see (`trace_not_found`)."), 500),
)
async def get_trace(trace_id: Annotated[str, TRACE_ID], request: Request) -> JSONResponse:
    """One trace by its full id (the `x-strato-trace-id` header of its response), with its spans,
    anomalies and feedback."""
    own = await visible_key(request)
    return await run_in_threadpool(_one, _store(request), trace_id, own)


def _one(store: Store, trace_id: str, own: str | None) -> JSONResponse:
    found = visible_trace(store, trace_id, own)
    if found is None:
        raise TraceNotFound(f"No trace with id {trace_id!r}.")
    return JSONResponse(trace_json(found, store.scores(FEEDBACK, [found.id])))


async def visible_key(request: Request) -> str | None:
    """The key id whose traces the caller may see, or None for every key's. Raises 401 (audited)
    when a master key is set and the caller's key is missing, unknown, revoked or expired."""
    runtime = services(request)
    credential = bearer_token(request.scope.get("headers", []))
    if is_admin(runtime.settings, credential):
        return None
    try:
        key = await runtime.auth.authenticate_async(credential)
    except StratoError as exc:
        await audit_refusal(runtime, request.method, request.url.path, exc, credential)
        raise
    return None if key is None or key.id == MASTER_KEY_ID else key.id


def _page(store: Store, found: list[Trace], limit: int) -> dict[str, Any]:
    shown = found[:limit]
    feedback: dict[str, list[Score]] = {}
    for score in store.scores(FEEDBACK, [t.id for t in shown]) if shown else ():
        feedback.setdefault(score.trace_id, []).append(score)
    data = [trace_json(t, feedback.get(t.id), spans=False) for t in shown]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(found) > limit,
    }


def _store(request: Request) -> Store:
    return services(request).traces


def visible_trace(store: Store, trace_id: str, own: str | None) -> Trace | None:
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
        cursor = visible_trace(store, after, own)
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
