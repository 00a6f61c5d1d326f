"""OpenTelemetry export over OTLP/HTTP: each finished request's spans, and the GenAI metrics.

Off unless an endpoint is configured: `observe.otel.endpoint` in the config (used for both signals),
else the standard variables `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`
(full URLs) and `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL; `/v1/traces` and `/v1/metrics` are added).
`OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` set to `none`, turn a
signal off. Headers, timeout, compression and TLS come from the usual `OTEL_EXPORTER_OTLP_*` variables,
which the SDK's exporters read themselves.

The request path only puts the finished trace on a bounded queue. A thread of this object turns the
stored spans into SDK `ReadableSpan`s and exports them in batches (`OTEL_BSP_SCHEDULE_DELAY`,
`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_MAX_QUEUE_SIZE`), and records the request's GenAI
measurements on a `MeterProvider` that pushes them every `metrics_interval_seconds`. Nothing is set
as a global provider. A collector that is down costs the requests nothing: the exporter retries within
its timeout, then the batch is dropped with a warning; when the queue is full, traces are not queued.
The SDK is imported only when an endpoint is configured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from strato import __version__
from strato.config.observe import OtelSettings
from strato.observe.metrics import GENAI_METRICS, Measurement
from strato.observe.spans import is_client_span
from strato.types import Span, Trace

if TYPE_CHECKING:  # the SDK itself is imported only once exporting is on
    from opentelemetry.metrics import Histogram
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Status

log = logging.getLogger(__name__)

WARN_EVERY = 60.0  # seconds between two warnings about the same trouble
_STOP = object()


def open_otel_export(settings: OtelSettings, env: Mapping[str, str] | None = None) -> OtelExport | None:
    """The exporter the settings and environment ask for; None when no OTLP endpoint is configured."""
    env = os.environ if env is None else env
    traces, metrics = endpoints(settings, env)
    if traces is None and metrics is None:
        return None
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported; exporting over http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    service = settings.service_name
    if "service_name" not in settings.model_fields_set:
        service = env.get("OTEL_SERVICE_NAME", service)
    resource = Resource.create({"service.name": service, "service.version": __version__})
    interval = settings.metrics_interval_seconds
    if "metrics_interval_seconds" not in settings.model_fields_set and env.get("OTEL_METRIC_EXPORT_INTERVAL"):
        interval = _number(env, "OTEL_METRIC_EXPORT_INTERVAL", interval * 1000) / 1000
    meters = None
    if metrics is not None:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=metrics), export_interval_millis=interval * 1000
        )
        meters = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    log.info("exporting OpenTelemetry spans to %s and metrics to %s", traces or "-", metrics or "-")
    return OtelExport(
        OTLPSpanExporter(endpoint=traces) if traces is not None else None,
        meters,
        resource,
        delay=_number(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000,
        batch_spans=int(_number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)),
        max_queue=int(_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)),
    )


def endpoints(settings: OtelSettings, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Where spans and metrics go (OTLP/HTTP URLs); None for a signal that is not exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None, None
    return _endpoint(settings, env, "TRACES", "v1/traces"), _endpoint(settings, env, "METRICS", "v1/metrics")


def _endpoint(settings: OtelSettings, env: Mapping[str, str], signal: str, path: str) -> str | None:
    """A signal's OTLP/HTTP URL: the configured base URL, else the signal's own variable (a full
    URL), else the generic one (a base URL); None when the signal is off or has no endpoint."""
    if env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
        return None
    if settings.endpoint:
        return f"{settings.endpoint.rstrip('/')}/{path}"
    if own := env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip():
        return own
    if base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return f"{base.rstrip('/')}/{path}"
    return None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env[name])
    except (KeyError, ValueError):
        return default
    return value if value > 0 else default


class OtelExport:
    """Exports finished traces' spans and their GenAI measurements from a thread of its own."""

    def __init__(
        self,
        spans: SpanExporter | None,
        meters: MeterProvider | None,
        resource: Resource,
        *,
        delay: float = 5.0,
        batch_spans: int = 512,
        max_queue: int = 2048,
    ) -> None:
        self.exporter = spans
        self.meters = meters
        self.resource = resource
        self.delay = delay
        self.batch_spans = batch_spans
        self.dropped = 0  # traces not exported: the queue was full, or their batch failed
        self._histograms: dict[str, Histogram] = {}
        if meters is not None:
            meter = meters.get_meter("strato", __version__)
            self._histograms = {
                m.name: meter.create_histogram(
                    m.name, m.unit, m.description, explicit_bucket_boundaries_advisory=m.buckets
                )
                for m in GENAI_METRICS
            }
        self._queue: queue.Queue[tuple[Trace, list[Measurement]] | object] = queue.Queue(max_queue)
        self._warned: dict[str, float] = {}
        self._closed = False
        self._abandoned = threading.Event()  # close() gave up waiting: stop without exporting more
        self._thread = threading.Thread(target=self._run, name="strato otel export", daemon=True)
        self._thread.start()

    def submit(self, trace: Trace, measured: list[Measurement]) -> None:
        """Queue a finished request for export. Never blocks; drops it when the queue is full."""
        try:
            self._queue.put_nowait((trace, measured))
        except queue.Full:
            self.dropped += 1
            self._warn("full", "OpenTelemetry export queue is full (collector slow or down); dropping traces")

    def close(self, timeout: float = 3.0) -> None:
        """Export what is queued, push the metrics one last time, and stop. Gives up on a collector
        that has not answered within `timeout` seconds (both signals at once)."""
        if self._closed:
            return
        self._closed = True
        meters = None
        if self.meters is not None:  # its last push runs alongside the spans' last export
            meters = threading.Thread(
                target=self.meters.shutdown, kwargs={"timeout_millis": timeout * 1000}, daemon=True
            )
            meters.start()
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._abandoned.set()
        if self.exporter is not None:
            self.exporter.shutdown()  # also cuts short a retry in progress
        self._thread.join(1.0)
        if meters is not None:
            meters.join(max(0.0, deadline - time.monotonic()) + 1.0)

    def _run(self) -> None:
        stopping = False
        while not stopping and not self._abandoned.is_set():
            pending: list[ReadableSpan] = []
            deadline = time.monotonic() + self.delay
            while len(pending) < self.batch_spans:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                trace, measured = cast(tuple[Trace, list[Measurement]], item)
                self._measure(measured)
                pending.extend(self.readable(trace))
            if pending:
                self._export(pending)

    def _measure(self, measured: list[Measurement]) -> None:
        for metric, value, attributes in measured:
            histogram = self._histograms.get(metric.name)
            if histogram is not None:
                histogram.record(value, {k: v for k, v in attributes.items() if v != ""})

    def _export(self, spans: list[ReadableSpan]) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self.exporter is None:
            return
        try:
            result = self.exporter.export(spans)
        except Exception as exc:  # an exporter bug must not stop the thread
            log.warning("exporting %d spans failed: %s: %s", len(spans), type(exc).__name__, exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.dropped += len({s.context.trace_id for s in spans if s.context is not None})
            self._warn("export", f"could not export {len(spans)} spans over OTLP; dropped them")

    def _warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY) >= WARN_EVERY:
            self._warned[kind] = now
            log.warning("%s (%d traces dropped so far)", message, self.dropped)

    def readable(self, trace: Trace) -> list[ReadableSpan]:
        """A stored trace's spans as the SDK's spans, in the trace's id (the request id)."""
        return readable_spans(trace, self.resource)


def readable_spans(trace: Trace, resource: Resource) -> list[ReadableSpan]:
    """A stored trace's spans as the SDK's finished spans: the request's span is a server span, each
    provider call a client span, strato's stages internal spans."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    try:
        trace_id = int(trace.id, 16)
    except ValueError:
        return []
    scope = InstrumentationScope("strato", __version__)
    sampled = TraceFlags(TraceFlags.SAMPLED)
    readable = []
    for span in trace.spans:
        context = SpanContext(trace_id, int(span.span_id, 16), is_remote=False, trace_flags=sampled)
        parent = None
        kind = SpanKind.SERVER
        if span.parent_id is not None:
            parent = SpanContext(trace_id, int(span.parent_id, 16), is_remote=False, trace_flags=sampled)
            kind = SpanKind.CLIENT if is_client_span(span) else SpanKind.INTERNAL
        readable.append(
            ReadableSpan(
                span.name,
                context=context,
                parent=parent,
                resource=resource,
                attributes={k: _attribute(v) for k, v in span.attributes.items() if v is not None},
                kind=kind,
                status=_status(span),
                start_time=int(span.started_at * 1e9),
                end_time=int(span.ended_at * 1e9),
                instrumentation_scope=scope,
            )
        )
    return readable


def _status(span: Span) -> Status:
    from opentelemetry.trace import Status, StatusCode

    if span.status == "error":
        return Status(StatusCode.ERROR, str(span.attributes.get("error.type", "")) or None)
    return Status(StatusCode.OK if span.status == "ok" else StatusCode.UNSET)


def _attribute(value: Any) -> Any:
    """An OpenTelemetry attribute value: a primitive or a list of strings."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return str(value)
