"""The request path, top to bottom: resolve the model -> call its provider -> record the trace.

Later layers (auth, guards, cache, routing) slot in here as named steps, in this order:
auth -> input guards -> cache -> route -> provider -> output guards -> record.
The server and the CLI both call this class; neither talks to providers directly. Its parts are
built by the composition root (`strato.runtime`), which also closes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from strato.auth import Authority, Grant
from strato.auth.audit import AuditEvent, AuditWriter
from strato.auth.journal import COMMIT_TIMEOUT
from strato.cache import CachePolicy
from strato.cache.answers import AnswerCache, Lookup, replay
from strato.config import GuardsSettings
from strato.errors import ClientDisconnected, StratoError
from strato.guards.step import Guarded, GuardSet, build_guards
from strato.observe import call
from strato.observe.anomalies import AnomalyWatch
from strato.observe.ids import random_hex
from strato.observe.metrics import GatewayMetrics
from strato.observe.otel import OtelExport
from strato.observe.recorder import TraceRecorder
from strato.observe.spans import SpanRecorder, operation_name
from strato.observe.spans import finish as finish_spans
from strato.providers import Provider, TokenCounter
from strato.providers.registry import ModelTable
from strato.routing.attempts import Notes
from strato.streams import Stream
from strato.tokens import approx_tokens
from strato.types import (
    Chunk,
    EmbeddingRequest,
    Embeddings,
    Endpoint,
    Generation,
    GenerationRequest,
    ModelInfo,
    Price,
    Trace,
)
from strato.wire.requests import request_record

log = logging.getLogger(__name__)

UNKNOWN_MODEL_LABEL = "unknown"  # metrics label for names that are not configured (bounded cardinality)


@dataclass
class CallContext:
    """The record of one request: who is calling and when, and what its stages wrote down (spans,
    routing's notes, response headers, cost). Created once per request by the server or the CLI;
    the gateway enters it as the current request's record (`strato.observe.call`) and finishes it
    once."""

    trace_id: str = field(default_factory=lambda: random_hex(16))
    started_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    api_key: str | None = None  # the caller's key id once the auth step ran (never the secret)
    credential: str | None = None  # the bearer secret the request presented; never stored
    grant: Grant | None = None  # what the auth step let through: the key and the budget it holds
    recorded: bool = False  # set once the trace has been handed to the recorder
    notes: Notes = field(default_factory=Notes)  # what routing did: attempts, a router's decision
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (x-strato-*)
    cache: CachePolicy = field(default_factory=CachePolicy)  # what the request lets the cache do
    spans: SpanRecorder = field(default_factory=SpanRecorder)  # the request's stages, timed
    cost: float | None = None  # USD, as priced on the trace once the request has finished

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers the server adds to the response: the trace id, the cache's and the router's say."""
        headers = {"x-strato-trace-id": self.trace_id, **self.headers}
        if self.notes.decision is not None:
            headers["x-strato-route"] = self.notes.decision.header()
        return [(k.encode(), v.encode()) for k, v in headers.items()]


class InternalError(StratoError):
    """A bug in strato or a provider; the caller sees a clean 500, the log has the traceback."""


class Gateway:
    def __init__(
        self,
        models: ModelTable,
        recorder: TraceRecorder,
        metrics: GatewayMetrics,
        cache: AnswerCache | None = None,
        auth: Authority | None = None,
        guards: GuardSet | None = None,
        audit: AuditWriter | None = None,
        watch: AnomalyWatch | None = None,
        otel: OtelExport | None = None,
        durable: bool = False,
    ) -> None:
        """`durable`: commit each trace before its answer is released (`observe.durable`)."""
        self.models = models
        self.recorder = recorder
        self.metrics = metrics
        self.cache = cache or AnswerCache.off()
        self.auth = auth or Authority.off()
        self.guards = guards or build_guards(GuardsSettings())
        self.audit = audit  # None: nothing on the request path is audited (tests, embedded use)
        self.watch = watch  # None: responses are not checked for anomalies
        self.otel = otel  # None: spans and metrics are not exported over OTLP
        self.durable = durable

    def list_models(self) -> list[ModelInfo]:
        return self.models.infos()

    async def generate(self, request: GenerationRequest, ctx: CallContext) -> Generation:
        trace = self._begin(ctx, request.endpoint, request.model, request_record(request), request.user)
        try:
            await self._auth_step(request, ctx, trace)
            guarded = await self._input_guards_step(request, ctx, trace)
            request = guarded.request
            lookup = await self._cache_step(request, ctx, trace)
            result = lookup.answer
            if result is None:
                provider = self.models.generator(request.model)
                trace.deployment, trace.provider = request.model, provider.info().provider
                with self._in_flight(request.model), ctx.spans.calling():
                    result = await provider.generate(request)
            _generated(trace, result)
            answer = await self._output_guards_step(result.text, guarded, trace, ctx)
        except BaseException as exc:
            raise await self._fail(trace, ctx, exc) from None
        await self._committed(self._finish(trace, ctx))
        await self.cache.store(lookup, result)
        return guarded.answer(dataclasses.replace(result, text=answer))

    async def stream(self, request: GenerationRequest, ctx: CallContext) -> Stream[Chunk]:
        """Start a streamed answer. Errors known before the first token are raised here. The caller
        must `aclose()` the stream (the server does once the response is over, a disconnect
        included): that ends the request, trace stored and budget settled, whether the stream was
        read to the end, cut, or never read (then it is recorded as a disconnect)."""
        trace = self._begin(ctx, request.endpoint, request.model, request_record(request), request.user)
        trace.stream = True
        try:
            await self._auth_step(request, ctx, trace)
            guarded = await self._input_guards_step(request, ctx, trace)
            request = guarded.request
            lookup = await self._cache_step(request, ctx, trace)
            if lookup.answer is not None:
                chunks = replay(lookup.answer)
            else:
                provider = self.models.generator(request.model)
                trace.deployment, trace.provider = request.model, provider.info().provider
                with ctx.spans.calling():  # the call's span lasts until the stream ends
                    chunks = self.cache.remember(lookup, await provider.stream(request))
            if self.guards.buffers_stream(guarded):
                chunks = await self._held(chunks, guarded, trace, ctx)
        except BaseException as exc:
            raise await self._fail(trace, ctx, exc) from None
        traced = Stream(self._traced(chunks, trace, ctx, guarded), chunks)
        return Stream(guarded.chunks(traced), traced, on_close=lambda: self._unread(trace, ctx))

    async def embed(self, request: EmbeddingRequest, ctx: CallContext) -> Embeddings:
        record = {"input": list(request.inputs)}
        trace = self._begin(ctx, Endpoint.EMBEDDING, request.model, record, request.user)
        try:
            await self._auth_step(request, ctx, trace)
            embedder = self.models.embedder(request.model)
            trace.deployment, trace.provider = request.model, embedder.info().provider
            with self._in_flight(request.model), ctx.spans.calling():
                result = await embedder.embed(request)
        except BaseException as exc:
            raise await self._fail(trace, ctx, exc) from None
        trace.prompt_tokens = result.usage.prompt_tokens
        await self._committed(self._finish(trace, ctx))
        return result

    async def _input_guards_step(self, request: GenerationRequest, ctx: CallContext, trace: Trace) -> Guarded:
        """The input guards step: block (400 `guard_blocked:<guard>`), redact or flag, by the
        settings for this model and key. The trace keeps the request as the model saw it, and the
        guards' decisions under `request.guards`."""
        key = ctx.grant.key if ctx.grant is not None else None
        overrides = key.guards if key is not None else None
        with ctx.spans.span("strato.input_guards") as span:  # each guard's span inside
            guarded = await self.guards.check_input(request, overrides)
            span.attributes["strato.guard.action"] = guarded.action()
            if guarded.decisions:
                trace.request = {**request_record(guarded.request), **guarded.record()}
                self._audit(trace, f"guard.{guarded.action()}", guarded.record())
            if guarded.blocked:
                self.auth.release(ctx.grant)  # a refused request does not count toward the key's rpm
            guarded.raise_if_blocked()
        return guarded

    async def _output_guards_step(self, text: str, guarded: Guarded, trace: Trace, ctx: CallContext) -> str:
        """The output guards step: the answer's PII, secrets, banned words, profanity and content
        anomalies, flagged, redacted or blocked. Returns the text to send on."""
        with ctx.spans.span("strato.output_guards") as span:  # each guard's span inside
            checked = await self.guards.check_output(text, guarded, trace.finish_reason)
            span.attributes["strato.guard.action"] = checked.action
            if checked.decisions:
                decisions = [*trace.request.get("guards", []), *checked.decisions]
                trace.request = {**trace.request, "guards": decisions}
                self._audit(trace, f"guard.{checked.action}", {"guards": checked.decisions})
            checked.raise_if_blocked()
        return checked.text

    async def _held(
        self, chunks: AsyncGenerator[Chunk, None], guarded: Guarded, trace: Trace, ctx: CallContext
    ) -> AsyncGenerator[Chunk, None]:
        """A stream held back until complete, so the output guards can change or refuse it."""
        held: list[Chunk] = []
        try:
            async for chunk in chunks:
                held.append(chunk)
        finally:
            await chunks.aclose()
        text = "".join(c.text for c in held)
        answer = await self._output_guards_step(text, guarded, trace, ctx)
        guarded.output_checked = True
        if answer != text:
            last = held[-1] if held else Chunk(text="")
            held = [Chunk(text=answer), dataclasses.replace(last, text="")]
        return _replayed(held)

    async def _auth_step(
        self, request: GenerationRequest | EmbeddingRequest, ctx: CallContext, trace: Trace
    ) -> None:
        """The auth step: who is calling (their key's id becomes `ctx.api_key`), whether the key may
        use this model now, and a hold on its budget for the worst-case cost, settled in `_finish`.
        A refusal (401, 403, 429) is audited with its error code."""
        try:
            with ctx.spans.span("strato.auth") as span:
                key = await self.auth.authenticate_async(ctx.credential)
                if key is None:
                    return  # no master key: the API is open (and strato listens on loopback only)
                ctx.api_key = trace.api_key = key.id  # refusals below are traced under the key too
                span.attributes["strato.api_key.id"] = key.id
                provider = self.models.generators.get(request.model)
                context = provider.info().context_length if provider is not None else None
                price = self.models.worst_price(request.model)
                counted = _counted_prompt(provider, request) if key.budgeted else None
                ctx.grant = await self.auth.admit_async(key, request, price, context, counted, ctx.trace_id)
        except StratoError as exc:
            self._audit(trace, "auth.refused", {"status": exc.status, "code": exc.code})
            raise

    def _audit(self, trace: Trace, kind: str, detail: dict[str, Any]) -> None:
        """An audit entry about this request, written off the request path."""
        if self.audit is not None:
            self.audit.submit(AuditEvent(kind, trace.api_key, trace.requested_model, trace.id, detail))

    async def _cache_step(self, request: GenerationRequest, ctx: CallContext, trace: Trace) -> Lookup:
        """The cache step: a stored answer to this request (semantic mode: to a paraphrase of it).
        A hit is traced as served by the "cache" provider, at no cost."""
        with ctx.spans.span("strato.cache") as span:
            lookup = await self.cache.lookup(request, ctx.api_key or "", ctx.cache)
        if lookup.result is None:
            ctx.spans.drop(span)  # the model has no answer cache
        else:
            span.attributes["strato.cache.result"] = lookup.result
            if lookup.kind == "semantic":
                span.attributes["strato.cache.similarity"] = lookup.score
            ctx.headers.update(lookup.headers())
            self.metrics.series(self.metrics.cache_requests, request.model, lookup.result).inc()
        if lookup.kind is not None:
            trace.cache, trace.deployment, trace.provider = lookup.kind, request.model, "cache"
        return lookup

    def record_rejected(
        self, ctx: CallContext, endpoint: Endpoint, model: str | None, body: Any, error: StratoError
    ) -> None:
        """Record a request refused before it reached the gateway (malformed JSON, invalid fields)."""
        trace = self._begin(ctx, endpoint, model, {"body": body}, None)
        self._failed(trace, ctx, error)

    async def _traced(
        self, chunks: AsyncGenerator[Chunk, None], trace: Trace, ctx: CallContext, guarded: Guarded
    ) -> AsyncGenerator[Chunk, None]:
        parts: list[str] = []
        try:
            with self._in_flight(trace.requested_model):
                async for chunk in chunks:
                    if chunk.text and trace.ttft_ms is None:
                        trace.ttft_ms = _ms_since(ctx.started)
                    parts.append(chunk.text)
                    if chunk.finish_reason:
                        trace.finish_reason = chunk.finish_reason
                    if chunk.compute is not None:
                        trace.compute = chunk.compute
                    if chunk.usage:
                        trace.prompt_tokens = chunk.usage.prompt_tokens
                        trace.completion_tokens = chunk.usage.completion_tokens
                        trace.cached_tokens = chunk.usage.cached_tokens
                    yield chunk
        except BaseException as exc:
            trace.completion = "".join(parts)
            _estimate_usage(trace, guarded.request)
            raise await self._fail(trace, ctx, exc) from None
        finally:
            await chunks.aclose()
        trace.completion = "".join(parts)
        if not guarded.output_checked:  # flags only: the answer has been sent
            await self._output_guards_step(trace.completion, guarded, trace, ctx)
        await self._committed(self._finish(trace, ctx))  # before the stream's end reaches the client

    def _unread(self, trace: Trace, ctx: CallContext) -> None:
        """A stream closed before its first chunk was asked for (the client left before the response
        began) is recorded as a disconnect, and its budget hold settled; one that was read has been
        recorded by `_traced` already."""
        if not ctx.recorded:
            self._failed(trace, ctx, ClientDisconnected("the client disconnected before the answer began"))

    def _begin(
        self,
        ctx: CallContext,
        endpoint: Endpoint,
        model: str | None,
        record: dict[str, Any],
        user: str | None,
    ) -> Trace:
        call.enter(ctx)  # model groups, routers and guards add their calls, decisions and spans
        operation = operation_name(endpoint)
        ctx.spans.begin(f"{operation} {model}" if model else operation, ctx.started_at)
        return Trace(
            id=ctx.trace_id,
            started_at=ctx.started_at,
            endpoint=endpoint,
            requested_model=model,
            request=record,
            api_key=ctx.api_key,
            user=user,
        )

    def _finish(self, trace: Trace, ctx: CallContext) -> list[Future[None]]:
        """Price, settle and record the request, once. Returns the commits its answer must wait for:
        the budget's hold and settlement in the spend journal, and the trace with `observe.durable`."""
        _routed(trace, ctx.notes)
        price = self.models.price(trace.deployment) if trace.cache is None else Price()
        if price is not None:
            trace.cost = price.cost(trace.prompt_tokens, trace.completion_tokens)
        ctx.cost = trace.cost
        commits = self.auth.settle_soon(ctx.grant, trace.prompt_tokens + trace.completion_tokens, trace.cost)
        ctx.grant = None  # settled once, however the request ended
        ctx.recorded = True
        trace.ended_at = time.time()
        trace.latency_ms = _ms_since(ctx.started)
        label = trace.requested_model if trace.deployment else UNKNOWN_MODEL_LABEL
        if self.watch is not None:
            self.watch.check(trace, label or UNKNOWN_MODEL_LABEL)  # sets trace.anomalies
        trace.spans = finish_spans(ctx.spans, trace, ctx.notes)
        measured = self.metrics.observe(trace, label or UNKNOWN_MODEL_LABEL)
        if self.durable:
            commits.append(self.recorder.submit_durable(trace))
        else:
            self.recorder.submit(trace)
        if self.otel is not None:
            self.otel.submit(trace, measured)  # exported from a thread of its own
        return commits

    async def _committed(self, commits: list[Future[None]]) -> None:
        """Wait for a request's commits before its answer is released. A store that does not commit
        in time is logged, and the answer goes out anyway: the request has run and been paid for,
        and what is queued is committed once the store answers."""
        for commit in commits:
            try:
                await asyncio.wait_for(asyncio.wrap_future(commit), COMMIT_TIMEOUT)
            except TimeoutError:
                log.error("the store did not commit in %.0fs; the answer goes out anyway", COMMIT_TIMEOUT)

    async def _fail(self, trace: Trace, ctx: CallContext, exc: BaseException) -> BaseException:
        """Record the failure on the trace and return what the caller should raise, once what it
        spent is committed (not when the client has gone: nobody waits for the answer)."""
        commits, raised = self._failed(trace, ctx, exc)
        if not isinstance(exc, asyncio.CancelledError | GeneratorExit):
            await self._committed(commits)
        return raised

    def _failed(
        self, trace: Trace, ctx: CallContext, exc: BaseException
    ) -> tuple[list[Future[None]], BaseException]:
        error: StratoError
        raised: BaseException
        if isinstance(exc, StratoError):
            error = raised = exc
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            error, raised = ClientDisconnected("the client disconnected before the answer was complete"), exc
        elif isinstance(exc, Exception):
            log.exception("internal error serving trace %s", trace.id)
            error = raised = InternalError(f"internal error ({type(exc).__name__}); see trace {trace.id}")
        else:
            error, raised = InternalError(type(exc).__name__), exc
        trace.status, trace.error, trace.error_code = error.status, error.internal, error.code
        if error.detail is not None:
            log.warning("trace %s: %s", trace.id, error.internal)  # the client saw the message only
        return self._finish(trace, ctx), raised

    def _in_flight(self, model: str | None) -> Any:
        return self.metrics.series(self.metrics.in_flight, model or UNKNOWN_MODEL_LABEL).track_inprogress()


def _counted_prompt(provider: Provider | None, request: GenerationRequest | EmbeddingRequest) -> int | None:
    """The prompt's length in the model's own tokens, when its provider can tell without work."""
    if isinstance(provider, TokenCounter) and isinstance(request, GenerationRequest):
        return provider.count_prompt_tokens(request)
    return None


def _estimate_usage(trace: Trace, request: GenerationRequest) -> None:
    """A stream that ended before its usage arrived (cut by the client or the upstream) still used
    tokens: estimate them (4 bytes a token) so the trace, the cost and the key's budget count them."""
    if trace.prompt_tokens or trace.completion_tokens or trace.cache is not None or trace.deployment is None:
        return
    text = request.prompt or "".join(m.content for m in request.messages or ())
    trace.prompt_tokens, trace.completion_tokens = approx_tokens(text), approx_tokens(trace.completion or "")
    trace.request = {**trace.request, "usage_estimated": True}


def _generated(trace: Trace, result: Generation) -> None:
    trace.completion, trace.finish_reason = result.text, result.finish_reason
    trace.prompt_tokens, trace.completion_tokens = result.usage.prompt_tokens, result.usage.completion_tokens
    trace.cached_tokens = result.usage.cached_tokens
    trace.compute = result.compute if trace.cache is None else None  # a cached answer cost no compute


async def _replayed(chunks: list[Chunk]) -> AsyncGenerator[Chunk, None]:
    for chunk in chunks:
        yield chunk


def _routed(trace: Trace, notes: Notes) -> None:
    """Routing's notes on the trace: every call made, the deployment that answered, the decision."""
    if notes.decision is not None:
        trace.route = notes.decision.as_dict()
    if not notes.attempts:
        return
    trace.attempts = [a.as_dict() for a in notes.attempts]
    served = notes.attempts[-1]
    if served.status == 200:
        trace.deployment, trace.provider = served.deployment, served.provider


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000
