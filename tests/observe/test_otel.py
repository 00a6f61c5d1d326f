"""OTLP export to a real OTLP/HTTP receiver started by the test: every request's spans arrive in the
request's trace id, linked into one tree, with GenAI attributes; the GenAI metrics arrive too (the
gateway in process); and a collector that is down costs the requests nothing, shutdown of
`strato serve` included."""

from __future__ import annotations

import asyncio
import gzip
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from strato.config.observe import OtelSettings
from strato.observe.otel import endpoints
from tests.support.gateway import gateway_process
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream, free_port

T = TypeVar("T")


class Receiver:
    """An OTLP/HTTP receiver (protobuf): POST /v1/traces and /v1/metrics, kept in memory."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, Any], OtlpSpan]] = []  # (resource attributes, span)
        self.metrics: list[tuple[dict[str, Any], Metric]] = []
        self.lock = threading.RLock()
        self.arrived = threading.Condition(self.lock)  # notified whenever an export is taken
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    receiver.take_traces(body)
                    reply = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver.take_metrics(body)
                    reply = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def take_traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend((resource, span) for span in scope_spans.spans)
            self.arrived.notify_all()

    def take_metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        with self.lock:
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    self.metrics.extend((resource, metric) for metric in scope_metrics.metrics)
            self.arrived.notify_all()

    def wait_for(self, get: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0) -> T:
        """`get()` once `done` says it is complete, woken by each export that arrives (or what it
        is when `timeout` runs out)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not done(found := get()) and (left := deadline - time.monotonic()) > 0:
                self.arrived.wait(left)
        return found

    async def arrival(self, get: Callable[[], T], done: Callable[[T], bool]) -> T:
        """`wait_for` without holding up the event loop the gateway runs on."""
        return await asyncio.to_thread(self.wait_for, get, done)

    def trace(self, trace_id: str) -> list[OtlpSpan]:
        with self.lock:
            return [span for _, span in self.spans if span.trace_id == bytes.fromhex(trace_id)]

    def points(self, name: str) -> list[dict[str, Any]]:
        """The attributes (and count, sum) of every data point received for metric `name`."""
        with self.lock:
            found = [m for _, m in self.metrics if m.name == name]
        return [
            {**attributes(p.attributes), "count": p.count, "sum": p.sum, "unit": m.unit}
            for m in found
            for p in m.histogram.data_points
        ]


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    started.thread.start()
    yield started
    started.server.shutdown()
    started.server.server_close()


def models(upstream: Upstream) -> list[dict[str, Any]]:
    return [
        upstream.model("echo"),
        upstream.model("broken", "fail"),
        {"name": "g", "provider": "group", "deployments": ["broken"], "retries": 0, "fallbacks": ["echo"]},
    ]


@pytest.fixture(scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, receiver: Receiver
) -> AsyncIterator[InProcess]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # read when the exporter is built
        async with in_process(
            tmp_path_factory.mktemp("otel"),
            models(upstream),
            observe={
                "otel": {
                    "endpoint": receiver.url,
                    "service_name": "strato-otel-test",
                    "metrics_interval_seconds": 0.5,
                }
            },
        ) as served:
            yield served


async def ask(sdk: openai.AsyncOpenAI, model: str) -> str:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello there"}], temperature=0.3, max_tokens=20
    )
    assert raw.parse().choices[0].message.content == "echo: hello there"
    return raw.headers["x-strato-trace-id"]


async def test_a_requests_spans_arrive_in_its_trace_as_one_tree(
    gateway: InProcess, receiver: Receiver
) -> None:
    trace_id = await ask(gateway.sdk(), "g")
    stored = gateway.trace(trace_id)
    spans = await receiver.arrival(
        lambda: receiver.trace(trace_id), lambda got: len(got) >= len(stored.spans)
    )
    assert {s.span_id.hex() for s in spans} == {s.span_id for s in stored.spans}  # what was stored

    by_id = {s.span_id: s for s in spans}
    [root] = [s for s in spans if not s.parent_span_id]
    assert all(s.parent_span_id in by_id for s in spans if s is not root)  # one tree
    assert root.name == "chat g" and root.kind == OtlpSpan.SPAN_KIND_SERVER
    assert root.status.code == Status.STATUS_CODE_OK
    assert root.end_time_unix_nano > root.start_time_unix_nano
    attrs = attributes(root.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "g" and attrs["gen_ai.response.model"] == "echo"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert (
        attrs["gen_ai.request.temperature"] == pytest.approx(0.3) and attrs["gen_ai.request.max_tokens"] == 20
    )
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]

    calls = sorted(
        (s for s in spans if s.kind == OtlpSpan.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano
    )
    assert [s.name for s in calls] == ["chat broken", "chat echo"]
    assert all(s.parent_span_id == root.span_id for s in calls)
    broken, echo = calls
    assert broken.status.code == Status.STATUS_CODE_ERROR
    assert attributes(broken.attributes)["error.type"] == "upstream_error"
    assert echo.status.code == Status.STATUS_CODE_OK
    assert attributes(echo.attributes)["gen_ai.request.model"] == "echo"
    guards = by_id[next(s.span_id for s in spans if s.name == "strato.input_guards")]
    assert {s.name for s in spans if s.parent_span_id == guards.span_id} >= {
        "strato.guard.secrets",
        "strato.guard.injection",
    }
    with receiver.lock:
        [resource] = {tuple(sorted(r.items())) for r, s in receiver.spans if s.trace_id == root.trace_id}
    assert dict(resource)["service.name"] == "strato-otel-test"


async def test_a_stream_exports_its_time_to_first_token(gateway: InProcess, receiver: Receiver) -> None:
    raw = await gateway.sdk().chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    trace_id = raw.headers["x-strato-trace-id"]
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == "echo: one two three"
    spans = await receiver.arrival(
        lambda: receiver.trace(trace_id), lambda got: any(not s.parent_span_id for s in got)
    )
    [root] = [s for s in spans if not s.parent_span_id]
    ttft = attributes(root.attributes)["gen_ai.server.time_to_first_token"]
    assert 0 < ttft <= (root.end_time_unix_nano - root.start_time_unix_nano) / 1e9
    assert "strato.first_token" in [s.name for s in spans]


async def test_genai_metrics_are_exported(gateway: InProcess, receiver: Receiver) -> None:
    await ask(gateway.sdk(), "g")

    def usage() -> list[dict[str, Any]]:
        return [
            p for p in receiver.points("gen_ai.client.token.usage") if p.get("gen_ai.request.model") == "g"
        ]

    points = await receiver.arrival(
        usage, lambda got: {p["gen_ai.token.type"] for p in got} == {"input", "output"}
    )
    assert {p["gen_ai.token.type"] for p in points} == {"input", "output"}
    assert all(p["unit"] == "{token}" and p["gen_ai.operation.name"] == "chat" for p in points)
    assert all(p["gen_ai.provider.name"] == "openai" and p["gen_ai.response.model"] == "echo" for p in points)

    calls = receiver.points("gen_ai.client.operation.duration")
    failed = [p for p in calls if p.get("gen_ai.request.model") == "broken"]
    assert failed and all(p["error.type"] == "upstream_error" and p["unit"] == "s" for p in failed)
    assert [p for p in calls if p.get("gen_ai.request.model") == "echo" and "error.type" not in p]
    served = receiver.points("gen_ai.server.request.duration")
    assert [p for p in served if p.get("gen_ai.request.model") == "g" and p["count"] >= 1]
    ttft = await receiver.arrival(lambda: receiver.points("gen_ai.server.time_to_first_token"), bool)
    assert ttft and ttft[0]["gen_ai.request.model"] == "echo"


async def test_a_collector_that_is_down_costs_requests_nothing(tmp_path: Path, upstream: Upstream) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with gateway_process(
        tmp_path,
        models(upstream),
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": nowhere, "OTEL_BSP_SCHEDULE_DELAY": "50"},
        observe={"otel": {"metrics_interval_seconds": 0.2}},
    ) as process:
        async with openai.AsyncOpenAI(
            base_url=f"{process.url}/v1", api_key="unused", max_retries=0, timeout=10
        ) as client:
            started = time.monotonic()
            ids = [await ask(client, "echo") for _ in range(20)]
            took = time.monotonic() - started
        assert took < 10, f"20 requests took {took:.1f}s with the collector down"
        assert process.trace(ids[-1]).spans  # still stored
        await asyncio.sleep(1.5)  # export attempts fail meanwhile
        async with openai.AsyncOpenAI(
            base_url=f"{process.url}/v1", api_key="unused", max_retries=0, timeout=10
        ) as client:
            assert await ask(client, "echo")
        stopping = time.monotonic()
        assert process.stop() in (0, -signal.SIGTERM)
    assert time.monotonic() - stopping < 20  # shutdown gives up on the collector
    assert "could not export" in process.log_text()  # said, not hidden


@pytest.mark.parametrize(
    ("endpoint", "env", "expected"),
    [
        (None, {}, (None, None)),  # nothing configured: no export, the SDK is not even imported
        (
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
            ("http://c:4318/v1/traces", "http://c:4318/v1/metrics"),
        ),
        (
            "http://mine:4318",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            ("http://mine:4318/v1/traces", "http://mine:4318/v1/metrics"),
        ),
        (
            None,
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"},
            ("http://t:4318/v1/traces", None),
        ),
        (
            None,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m/x",
            },
            ("http://c:4318/v1/traces", "http://m/x"),
        ),
        (
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "none"},
            ("http://c:4318/v1/traces", None),
        ),
        ("http://mine:4318", {"OTEL_SDK_DISABLED": "true"}, (None, None)),
    ],
)
def test_the_endpoints_follow_the_config_then_the_standard_variables(
    endpoint: str | None, env: dict[str, str], expected: tuple[str | None, str | None]
) -> None:
    assert endpoints(OtelSettings(endpoint=endpoint), env) == expected
