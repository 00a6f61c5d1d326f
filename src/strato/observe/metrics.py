"""Prometheus metrics for the gateway, on a registry of its own (no process-global state): strato's
own `strato_*` series, and the OpenTelemetry GenAI semantic-convention histograms (`gen_ai_*`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from strato.observe.spans import is_client_span, operation_name
from strato.types import EngineState, Trace

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10, 30)

# The bucket boundaries the GenAI semantic conventions advise for each metric.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
FIRST_TOKEN_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
CPU_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
ENERGY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000)
PER_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)

OPERATION, REQUEST_MODEL, PROVIDER = "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.provider.name"
RESPONSE_MODEL, TOKEN_TYPE, ERROR_TYPE = "gen_ai.response.model", "gen_ai.token.type", "error.type"


@dataclass(frozen=True, slots=True)
class GenAIMetric:
    """One GenAI semantic-convention histogram: its OpenTelemetry name and unit, and its attributes
    (in Prometheus, labels named with `_` for `.`; an attribute a measurement lacks is empty)."""

    name: str  # e.g. gen_ai.client.token.usage
    unit: str
    description: str
    buckets: tuple[float, ...]
    attributes: tuple[str, ...]

    @property
    def prometheus_name(self) -> str:
        base = self.name.replace(".", "_")
        return f"{base}_seconds" if self.unit == "s" else base


TOKEN_USAGE = GenAIMetric(
    "gen_ai.client.token.usage",
    "{token}",
    "Tokens per request, by type (input or output), requested model, the model that answered and its "
    "provider. Answers from the answer cache used no tokens and are not counted.",
    TOKEN_BUCKETS,
    (OPERATION, REQUEST_MODEL, RESPONSE_MODEL, PROVIDER, TOKEN_TYPE),
)
CLIENT_DURATION = GenAIMetric(
    "gen_ai.client.operation.duration",
    "s",
    "Each call strato made to a provider (retries and fallbacks each count), by deployment called "
    "(gen_ai_request_model) and provider; error_type names the failure. A stream's call lasts until "
    "the stream ends.",
    DURATION_BUCKETS,
    (OPERATION, REQUEST_MODEL, PROVIDER, ERROR_TYPE),
)
SERVER_DURATION = GenAIMetric(
    "gen_ai.server.request.duration",
    "s",
    "Time from receiving a request to its last byte, by requested model and the provider that "
    "answered; error_type is the error code of a failed request.",
    DURATION_BUCKETS,
    (OPERATION, REQUEST_MODEL, PROVIDER, ERROR_TYPE),
)
TIME_TO_FIRST_TOKEN = GenAIMetric(
    "gen_ai.server.time_to_first_token",
    "s",
    "Time from receiving a streamed request to its first token, for successful requests.",
    FIRST_TOKEN_BUCKETS,
    (OPERATION, REQUEST_MODEL, PROVIDER),
)
TIME_PER_OUTPUT_TOKEN = GenAIMetric(
    "gen_ai.server.time_per_output_token",
    "s",
    "Time per output token after the first, for successful requests whose first token's time is "
    "known (streams): (duration - time to first token) / (output tokens - 1).",
    PER_TOKEN_BUCKETS,
    (OPERATION, REQUEST_MODEL, PROVIDER),
)
GENAI_METRICS = (TOKEN_USAGE, CLIENT_DURATION, SERVER_DURATION, TIME_TO_FIRST_TOKEN, TIME_PER_OUTPUT_TOKEN)

# (metric, value, attributes): what one request measured, for Prometheus and OpenTelemetry alike.
Measurement = tuple[GenAIMetric, float, dict[str, Any]]


def genai_measurements(trace: Trace, model_label: str) -> list[Measurement]:
    """The GenAI metrics' measurements of one finished request (its spans already built)."""
    operation = operation_name(trace.endpoint)
    provider = trace.provider or ""
    server = {OPERATION: operation, REQUEST_MODEL: model_label, PROVIDER: provider}
    failed = {**server, ERROR_TYPE: trace.error_code or "error"} if trace.status >= 400 else server
    measured: list[Measurement] = []
    if trace.latency_ms is not None:
        measured.append((SERVER_DURATION, trace.latency_ms / 1000, failed))
    if trace.cache is None and (trace.prompt_tokens or trace.completion_tokens):
        usage = {**server, RESPONSE_MODEL: trace.deployment or ""}
        measured.append((TOKEN_USAGE, trace.prompt_tokens, {**usage, TOKEN_TYPE: "input"}))
        measured.append((TOKEN_USAGE, trace.completion_tokens, {**usage, TOKEN_TYPE: "output"}))
    for span in trace.spans:
        if is_client_span(span):
            attributes = {k: span.attributes[k] for k in CLIENT_DURATION.attributes if k in span.attributes}
            measured.append((CLIENT_DURATION, span.ended_at - span.started_at, attributes))
    if trace.status == 200 and trace.ttft_ms is not None:
        ttft = trace.ttft_ms / 1000
        measured.append((TIME_TO_FIRST_TOKEN, ttft, server))
        if trace.latency_ms is not None and trace.completion_tokens > 1:
            per_token = (trace.latency_ms / 1000 - ttft) / (trace.completion_tokens - 1)
            measured.append((TIME_PER_OUTPUT_TOKEN, max(per_token, 0.0), server))
    return measured


class GenAIHistograms:
    """The GenAI metrics as Prometheus histograms on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histograms = {
            metric.name: Histogram(
                metric.prometheus_name,
                metric.description,
                [a.replace(".", "_") for a in metric.attributes],
                buckets=metric.buckets,
                registry=registry,
            )
            for metric in GENAI_METRICS
        }

        self._series = Series()

    def observe(self, measured: list[Measurement]) -> None:
        for metric, value, attributes in measured:
            labels = [str(attributes.get(a, "")) for a in metric.attributes]
            self._series(self.histograms[metric.name], *labels).observe(value)


class Series:
    """Metrics' labelled children, each found once: `labels()` takes a lock and builds a key on
    every call. For series that are never removed (the request path's; not the engine gauges)."""

    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def __call__(self, metric: Counter | Histogram | Gauge, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "strato_requests",
            "Requests answered, by model, endpoint and HTTP status.",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "strato_request_errors",
            "Requests that ended in an error, by model, endpoint and error code.",
            ["model", "endpoint", "code"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "strato_tokens",
            "Tokens processed, by model and type (prompt, completion, or cached: prompt tokens "
            "served from the engine's prefix cache instead of being computed).",
            ["model", "type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "strato_request_duration_seconds",
            "Time from receiving a request to its last byte, by model and endpoint.",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "strato_time_to_first_token_seconds",
            "Time from receiving a streaming request to its first token, by model.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.prefix_cache = Counter(
            "strato_prefix_cache_requests",
            "Local generations by whether they reused a cached prompt prefix (result: hit or miss).",
            ["model", "result"],
            registry=self.registry,
        )
        self.engine_slots = Gauge(
            "strato_engine_slots",
            "Sequence slots of each loaded local model, by state (busy or free).",
            ["model", "state"],
            registry=self.registry,
        )
        self.engine_queue = Gauge(
            "strato_engine_queue_length",
            "Requests waiting for a slot, by loaded local model.",
            ["model"],
            registry=self.registry,
        )
        self.engine_memory = Gauge(
            "strato_engine_memory_bytes",
            "Memory each loaded local model holds (weights, KV cache, buffers; estimated).",
            ["model"],
            registry=self.registry,
        )
        self.engine_busy = Gauge(
            "strato_engine_busy_seconds",
            "Wall time each local model's engine spent decoding since it loaded (rate() of it is the "
            "share of time busy).",
            ["model"],
            registry=self.registry,
        )
        self.engine_utilisation = Gauge(
            "strato_engine_utilisation_ratio",
            "Share of wall time each local model's engine was busy since it loaded (0..1).",
            ["model"],
            registry=self.registry,
        )
        self.engine_cpu = Gauge(
            "strato_engine_cpu_seconds",
            "Process CPU seconds while each local model's engine decoded, since it loaded.",
            ["model"],
            registry=self.registry,
        )
        self.engine_energy = Gauge(
            "strato_engine_energy_joules",
            "Energy while each local model's engine decoded, since it loaded: measured from RAPL "
            "counters (source=rapl) or estimated from CPU time (source=estimate).",
            ["model", "source"],
            registry=self.registry,
        )
        self.request_cpu = Histogram(
            "strato_request_cpu_seconds",
            "CPU seconds a request's share of its local engine's work cost, by model.",
            ["model"],
            buckets=CPU_BUCKETS,
            registry=self.registry,
        )
        self.request_energy = Histogram(
            "strato_request_energy_joules",
            "Energy of a request's share of its local engine's work, by model and source (rapl or estimate).",
            ["model", "source"],
            buckets=ENERGY_BUCKETS,
            registry=self.registry,
        )
        self.engine_lookup = Gauge(
            "strato_engine_lookup_tokens",
            "Prompt-lookup decoding since each local model loaded: tokens drafted ahead, and "
            "accepted (the ones that saved a step).",
            ["model", "result"],
            registry=self.registry,
        )
        self.cost = Counter(
            "strato_cost_usd",
            "What answered requests cost, USD, from each deployment's price table, by requested model "
            "and the deployment that answered (cached answers cost nothing).",
            ["model", "deployment"],
            registry=self.registry,
        )
        self.cache_requests = Counter(
            "strato_cache_requests",
            "Requests to models with an answer cache, by result: hit_exact, hit_semantic, miss, or "
            "skip (not looked up: opted out by the request, a fresh sample, or the cache is down).",
            ["model", "result"],
            registry=self.registry,
        )
        self.route_decisions = Counter(
            "strato_router_decisions",
            "Requests a router sent on, by router, target and reason (rule:<name>, learned, default).",
            ["router", "target", "reason"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "strato_requests_in_flight",
            "Requests being served now, by model.",
            ["model"],
            registry=self.registry,
        )
        self.genai = GenAIHistograms(self.registry)
        self.series = Series()  # the request path's labelled series, found once each

    def observe(self, trace: Trace, model_label: str) -> list[Measurement]:
        """Count a finished request; returns its GenAI measurements (for the OTLP export)."""
        measured = genai_measurements(trace, model_label)
        self.genai.observe(measured)
        self._observe_strato(trace, model_label)
        return measured

    def _observe_strato(self, trace: Trace, model_label: str) -> None:
        endpoint = str(trace.endpoint)
        self.series(self.requests, model_label, endpoint, str(trace.status)).inc()
        if trace.status >= 400:
            self.series(self.errors, model_label, endpoint, trace.error_code or "error").inc()
        if trace.cache is None:  # an answer from the answer cache processed no tokens
            if trace.prompt_tokens:
                self.series(self.tokens, model_label, "prompt").inc(trace.prompt_tokens)
            if trace.completion_tokens:
                self.series(self.tokens, model_label, "completion").inc(trace.completion_tokens)
            if trace.cached_tokens:
                self.series(self.tokens, model_label, "cached").inc(trace.cached_tokens)
        if trace.provider == "llama_cpp" and trace.status == 200 and trace.prompt_tokens:
            self.series(self.prefix_cache, model_label, "hit" if trace.cached_tokens else "miss").inc()
        if trace.route:
            route = trace.route
            self.series(self.route_decisions, route["router"], route["target"], route["reason"]).inc()
        if trace.cost:
            self.series(self.cost, model_label, trace.deployment or "none").inc(trace.cost)
        if trace.latency_ms is not None:
            self.series(self.latency, model_label, endpoint).observe(trace.latency_ms / 1000)
        if trace.ttft_ms is not None:
            self.series(self.ttft, model_label).observe(trace.ttft_ms / 1000)
        if trace.compute is not None:
            self.series(self.request_cpu, model_label).observe(trace.compute.cpu_seconds)
            self.series(self.request_energy, model_label, trace.compute.source).observe(
                trace.compute.energy_joules
            )

    def set_engines(self, states: list[EngineState]) -> None:
        """Replace the engine gauges with the current state (models unloaded since disappear)."""
        engine_gauges = (
            self.engine_slots,
            self.engine_queue,
            self.engine_memory,
            self.engine_lookup,
            self.engine_busy,
            self.engine_utilisation,
            self.engine_cpu,
            self.engine_energy,
        )
        for gauge in engine_gauges:
            gauge.clear()
        for state in states:
            self.engine_slots.labels(state.model, "busy").set(state.busy_slots)
            self.engine_slots.labels(state.model, "free").set(state.slots - state.busy_slots)
            self.engine_queue.labels(state.model).set(state.queued)
            self.engine_memory.labels(state.model).set(state.memory_bytes)
            spent = state.spent
            self.engine_busy.labels(state.model).set(spent.busy_seconds)
            if state.loaded_seconds > 0:
                self.engine_utilisation.labels(state.model).set(
                    min(1.0, spent.busy_seconds / state.loaded_seconds)
                )
            self.engine_cpu.labels(state.model).set(spent.cpu_seconds)
            self.engine_energy.labels(state.model, spent.source).set(spent.energy_joules)
            if state.drafted_tokens:
                self.engine_lookup.labels(state.model, "drafted").set(state.drafted_tokens)
                self.engine_lookup.labels(state.model, "accepted").set(state.accepted_tokens)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
