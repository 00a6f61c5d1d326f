"""Traces as users filter and see them: the filters `GET /v1/traces` and `strato traces list` take,
checked the same way, and the JSON shape of traces and feedback that the API and the CLI's `--json`
share (no web framework here: the CLI imports it too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strato.config.observe import ANOMALY_KINDS
from strato.errors import InvalidRequest
from strato.types import Score, Span, Trace, TraceQuery, Usage
from strato.wire.responses import usage_body

FEEDBACK_FILTERS = ("any", "none", "positive", "negative")


def trace_query(
    *,
    limit: int,
    model: str | None = None,
    errors_only: bool = False,
    since: float | None = None,
    until: float | None = None,
    user: str | None = None,
    anomaly: str | None = None,
    feedback: str | None = None,
    search: str | None = None,
) -> TraceQuery:
    """A trace query from filters as a user gives them, checked (400 naming the bad one); the CLI
    builds its query with it too."""
    kind = (anomaly or "").strip().upper() or None
    if kind is not None and kind != "ANY" and kind not in ANOMALY_KINDS:
        raise InvalidRequest(
            f"Invalid value for 'anomaly': use any or a kind ({', '.join(ANOMALY_KINDS)}).", param="anomaly"
        )
    wanted = (feedback or "").strip().lower() or None
    if wanted is not None and wanted not in FEEDBACK_FILTERS:
        raise InvalidRequest(
            "Invalid value for 'feedback': use any, none, positive or negative.", param="feedback"
        )
    return TraceQuery(
        limit=limit,
        model=model or None,
        errors_only=errors_only,
        since=since,
        until=until,
        user=user or None,
        anomaly="any" if kind == "ANY" else kind,
        feedback=wanted,  # type: ignore[arg-type]
        search=(search or "").strip() or None,
    )


def trace_json(
    trace: Trace, feedback: Sequence[Score] | None = None, *, spans: bool = True
) -> dict[str, Any]:
    """A trace on the wire. The guards' decisions, which the store keeps inside the request record,
    get a field of their own; `feedback` lists the feedback given on it, oldest first. Lists of
    traces are read without their spans: there `spans` is None (not loaded), not [] (none)."""
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
        "anomalies": list(trace.anomalies),
        "feedback": [feedback_json(s) for s in feedback or ()],
        "spans": [span_json(s) for s in trace.spans] if spans else None,
        "request": request,
        "completion": trace.completion,
    }


def span_json(span: Span) -> dict[str, Any]:
    """A span, times in seconds since the epoch as on the trace."""
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "started_at": span.started_at,
        "ended_at": span.ended_at,
        "duration_ms": duration_ms(span),
        "status": span.status,
        "attributes": span.attributes,
    }


def duration_ms(span: Span) -> float:
    return round((span.ended_at - span.started_at) * 1000, 3)


def feedback_json(score: Score) -> dict[str, Any]:
    return {
        "id": score.id,
        "object": "feedback",
        "trace_id": score.trace_id,
        "score": score.value,
        "label": score.label,
        "comment": score.comment,
        "correction": score.correction,
        "source": score.source,
        "created_at": score.created_at,
    }


def usd(value: float | None) -> str:
    """A cost as people read it. Single requests and eval runs often cost fractions of a cent: keep
    significant digits rather than cents."""
    if value is None:
        return "-"
    return f"${value:.2f}" if value >= 1 else f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"
