"""Spans: the stages of one request, timed as they happen and stored with its trace.

A `SpanRecorder` rides on the request's `CallContext` (which `strato.observe.call` carries, so the
guard step adds its spans without a handle). Opening a span costs about two microseconds: an id
(`strato.observe.ids`: no system call), two `time.time()` calls and a list append; nothing is
exported on the request path. Names and attributes follow OpenTelemetry's GenAI semantic
conventions where one exists:

    chat smollm2                       the request (root; a server span): gen_ai.* and strato.*
      strato.auth                      who is calling, may they use this model now
      strato.input_guards              every input guard that runs, each as a child span:
        strato.guard.<name>              strato.guard.direction, .action, .findings
      strato.cache                     the answer cache (models that have one): strato.cache.result
      strato.route                     a router's decision: strato.route.target, .reason, .score
      chat <deployment>                one per provider call (a client span), retries and fallbacks
                                       included: gen_ai.provider.name, gen_ai.request.model, error.type
      strato.first_token               streams: from the request's arrival to its first token (also
                                       the root's gen_ai.server.time_to_first_token, in seconds)
      strato.output_guards             every output guard, each as a child span

A stream's request span, and the span of the call serving it, end when the stream ends. Message
contents never go into attributes (the trace has them).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Literal

from strato.errors import StratoError
from strato.observe.ids import random_hex
from strato.routing.attempts import Attempt, Notes
from strato.types import Endpoint, Span, Trace

OPERATIONS = {Endpoint.CHAT: "chat", Endpoint.COMPLETION: "text_completion", Endpoint.EMBEDDING: "embeddings"}
FIRST_TOKEN = "strato.first_token"

SEVERITY = {"allow": 0, "flag": 1, "redact": 2, "block": 3}  # as the guards rank their actions

# What the trace keeps of a request's sampling parameters -> the GenAI request attributes.
REQUEST_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "top_k": "gen_ai.request.top_k",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}


def operation_name(endpoint: Endpoint) -> str:
    """`gen_ai.operation.name` of an endpoint: chat, text_completion or embeddings."""
    return OPERATIONS[endpoint]


def is_client_span(span: Span) -> bool:
    """A call to a provider (named `{operation} {deployment}`), not one of strato's own stages."""
    return span.parent_id is not None and not span.name.startswith("strato.")


def error_type(exc: BaseException) -> str:
    """`error.type`: strato's error code (`rate_limited`, `guard_blocked:pii`), else the class name."""
    if isinstance(exc, StratoError) and exc.code:
        return exc.code
    return type(exc).__qualname__


class SpanRecorder:
    """The spans of one request: a root opened by `begin`, stages opened with `span` as children of
    the innermost stage still open. One request runs its stages one after another (nested `with`
    blocks), so a stack of open spans is all the bookkeeping, and the recorder itself is the context
    manager of the stage on top of it."""

    __slots__ = ("_open", "call", "root", "spans")

    def __init__(self) -> None:
        self.root: Span | None = None
        self.spans: list[Span] = []
        self._open: list[Span] = []
        # The provider call the gateway made itself; a client span when routing recorded no
        # attempts (a plain model).
        self.call: Call | None = None

    def begin(self, name: str, started_at: float) -> Span:
        self.root = Span(self._new_id(), name, started_at, started_at)
        self.spans = [self.root]
        self._open = [self.root]
        return self.root

    def span(self, name: str, attributes: dict[str, Any] | None = None) -> SpanRecorder:
        """`with recorder.span(name) as span:` a stage, timed; an exception marks it an error."""
        parent = self._open[-1].span_id if self._open else None
        now = time.time()
        span = Span(self._new_id(), name, now, now, parent, "unset", {} if attributes is None else attributes)
        self.spans.append(span)
        self._open.append(span)
        return self

    def __enter__(self) -> Span:
        return self._open[-1]

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._open:  # the request was finished while this stage ran; `finish` closed it
            return
        span = self._open.pop()
        span.ended_at = time.time()
        if exc is not None:
            span.status = "error"
            span.attributes.setdefault("error.type", error_type(exc))
        elif span.status == "unset":
            span.status = "ok"

    def _new_id(self) -> str:
        return random_hex(8)

    def drop(self, span: Span) -> None:
        """Forget a span that turned out to say nothing (the cache step of a model without a cache)."""
        self.spans.remove(span)

    def add(
        self,
        name: str,
        started_at: float,
        ended_at: float,
        status: Literal["ok", "error"] = "ok",
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        """A finished span known after the fact (a provider attempt), as a child of the root."""
        parent = self.root.span_id if self.root is not None else None
        span = Span(self._new_id(), name, started_at, ended_at, parent, status, attributes or {})
        self.spans.append(span)
        return span

    def calling(self) -> Call:
        """Time the gateway's own provider call: `with recorder.calling(): ...`."""
        self.call = Call(time.time())
        return self.call


class Call:
    """The gateway's own call to a provider: when it began and ended, and how it failed."""

    __slots__ = ("ended_at", "error", "started_at")

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.ended_at: float | None = None
        self.error: str | None = None

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.ended_at = time.time()
        if exc is not None:
            self.error = error_type(exc)


def finish(recorder: SpanRecorder, trace: Trace, notes: Notes) -> list[Span]:
    """Close the request's spans at `trace.ended_at`: the routing decision and each provider call as
    spans, time to first token, and the root's GenAI attributes. Returns every span, root first."""
    root = recorder.root
    if root is None:  # a trace the gateway never began (not expected)
        return []
    ended = trace.ended_at or time.time()
    for span in recorder._open[1:]:  # a stage cut short (cancelled): ends with the request
        span.ended_at = ended
    recorder._open = []
    operation = root.name.partition(" ")[0]
    _route_span(recorder, notes)
    _call_spans(recorder, trace, notes, operation, ended)
    if trace.ttft_ms is not None:
        first = root.started_at + trace.ttft_ms / 1000
        recorder.add(
            FIRST_TOKEN,
            root.started_at,
            first,
            "ok",
            {"gen_ai.server.time_to_first_token": first - root.started_at},
        )
    root.ended_at = ended
    root.status = "error" if trace.status >= 400 else "ok"
    root.attributes = root_attributes(trace, operation)
    spans, recorder.spans = recorder.spans, []  # the trace's now; a late span goes nowhere
    return spans


def root_attributes(trace: Trace, operation: str) -> dict[str, Any]:
    """The request span's attributes: GenAI conventions first, strato's own under `strato.*`."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": trace.requested_model or "",
        "http.response.status_code": trace.status,
    }
    if trace.deployment is not None:
        attributes["gen_ai.response.model"] = trace.deployment
    if trace.provider is not None:
        attributes["gen_ai.provider.name"] = trace.provider
    for key, name in REQUEST_ATTRIBUTES.items():
        value = trace.request.get(key)
        if value is not None:
            attributes[name] = value
    if trace.prompt_tokens or trace.completion_tokens:
        attributes["gen_ai.usage.input_tokens"] = trace.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = trace.completion_tokens
    if trace.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = trace.cached_tokens
    if trace.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [trace.finish_reason]
    if trace.ttft_ms is not None:
        attributes["gen_ai.server.time_to_first_token"] = trace.ttft_ms / 1000
    if trace.status >= 400:
        attributes["error.type"] = trace.error_code or "error"
    attributes.update(_strato_attributes(trace))
    return attributes


def _strato_attributes(trace: Trace) -> dict[str, Any]:
    attributes: dict[str, Any] = {"strato.stream": trace.stream}
    if trace.api_key is not None:
        attributes["strato.api_key.id"] = trace.api_key
    if trace.cache is not None:
        attributes["strato.cache"] = trace.cache
    if trace.cost is not None:
        attributes["strato.cost_usd"] = trace.cost
    decisions = trace.request.get("guards") or []
    if decisions:
        attributes["strato.guard.action"] = max((d["action"] for d in decisions), key=SEVERITY.__getitem__)
        attributes["strato.guard.names"] = sorted({d["guard"] for d in decisions})
    if trace.anomalies:
        attributes["strato.anomalies"] = list(trace.anomalies)
    if trace.compute is not None:  # a local engine answered: what its share of the engine cost
        attributes["strato.engine.busy_seconds"] = trace.compute.busy_seconds
        attributes["strato.engine.cpu_seconds"] = trace.compute.cpu_seconds
        attributes["strato.energy.joules"] = trace.compute.energy_joules
        attributes["strato.energy.source"] = trace.compute.source
    return attributes


def _route_span(recorder: SpanRecorder, notes: Notes) -> None:
    decision = notes.decision
    if decision is None or notes.decided_at is None:
        return
    attributes: dict[str, Any] = {
        "strato.route.router": decision.router,
        "strato.route.target": decision.target,
        "strato.route.reason": decision.reason,
    }
    if decision.score is not None:
        attributes["strato.route.score"] = decision.score
    recorder.add(
        "strato.route", notes.decided_at - decision.decision_ms / 1000, notes.decided_at, "ok", attributes
    )


def _call_spans(recorder: SpanRecorder, trace: Trace, notes: Notes, operation: str, ended: float) -> None:
    """One client span per provider call: routing's attempts, or the gateway's own call to a plain
    model. A stream's serving call lasts until the stream ends."""
    calls: list[tuple[str, str, float, float, str | None]] = [
        (a.deployment, a.provider, a.started_at, a.started_at + a.latency_ms / 1000, _attempt_error(a))
        for a in notes.attempts
    ]
    call = recorder.call
    if not calls and call is not None and trace.deployment is not None and trace.cache is None:
        calls.append(
            (trace.deployment, trace.provider or "", call.started_at, call.ended_at or ended, call.error)
        )
    for number, (deployment, provider, started, stopped, error) in enumerate(calls, 1):
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": deployment,
            "strato.attempt": number,
        }
        served = number == len(calls) and error is None
        if error is not None:
            attributes["error.type"] = error
        elif served:
            if trace.stream:  # the call went on until the stream ended (or broke off)
                stopped = ended
                if trace.status >= 400:
                    attributes["error.type"] = error = trace.error_code or "error"
            attributes["gen_ai.response.model"] = deployment
            if trace.prompt_tokens or trace.completion_tokens:
                attributes["gen_ai.usage.input_tokens"] = trace.prompt_tokens
                attributes["gen_ai.usage.output_tokens"] = trace.completion_tokens
        recorder.add(f"{operation} {deployment}", started, stopped, "error" if error else "ok", attributes)


def _attempt_error(attempt: Attempt) -> str | None:
    if attempt.status == 200:
        return None
    return str(attempt.error_code or attempt.status)
