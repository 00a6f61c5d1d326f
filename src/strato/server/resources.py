"""The shapes of strato's own API objects (traces, feedback, keys, guard scans), as the OpenAPI
document shows them. Like `schemas.py`, they describe the dicts the routes send, field for field."""

from __future__ import annotations

from typing import Any, Literal

from strato.server.schemas import Shape, Usage

Action = Literal["allow", "flag", "redact", "block"]


class TraceError(Shape):
    code: str | None
    message: str | None


class Span(Shape):
    span_id: str
    parent_id: str | None
    name: str
    started_at: float
    ended_at: float
    duration_ms: float
    status: Literal["ok", "error", "unset"]
    attributes: dict[str, Any]


class Feedback(Shape):
    """Feedback on a trace's answer."""

    id: str
    object: Literal["feedback"]
    trace_id: str
    score: float
    label: str | None
    comment: str | None
    correction: str | None
    source: str
    created_at: float


class Trace(Shape):
    """One request as strato saw it. Times are seconds since the epoch; `spans` is null in lists."""

    id: str
    object: Literal["trace"]
    created: int
    started_at: float
    ended_at: float | None
    endpoint: Literal["chat", "completion", "embedding"]
    model: str | None
    deployment: str | None
    provider: str | None
    api_key: str | None
    user: str | None
    stream: bool
    status: int
    finish_reason: str | None
    error: TraceError | None
    usage: Usage
    cost: float | None
    latency_ms: float | None
    ttft_ms: float | None
    cache: str | None
    route: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    guards: list[dict[str, Any]] | None
    anomalies: list[str]
    feedback: list[Feedback]
    spans: list[Span] | None
    request: dict[str, Any]
    completion: str | None


class TraceList(Shape):
    object: Literal["list"]
    data: list[Trace]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ApiKey(Shape):
    """A virtual key, without its secret."""

    object: Literal["api_key"]
    id: str
    name: str
    models: list[str] | None
    budget_daily: float | None
    budget_monthly: float | None
    rpm: int | None
    tpm: int | None
    expires_at: float | None
    team: str | None
    metadata: dict[str, str]
    guards: dict[str, dict[str, Any]] | None
    created_at: float
    rotated_at: float | None
    revoked_at: float | None


class ApiKeyWithSecret(ApiKey):
    """A key just created or rotated: the only time its secret is shown."""

    key: str


class DeletedApiKey(ApiKey):
    deleted: Literal[True]


class ApiKeyList(Shape):
    object: Literal["list"]
    data: list[ApiKey]


class GuardFinding(Shape):
    type: str
    start: int
    end: int
    score: float
    action: Action
    guard: str | None = None  # set once several guards' findings are put together


class GuardScan(Shape):
    object: Literal["guards.scan"]
    action: Action
    guard: str
    findings: list[GuardFinding]
    text: str
