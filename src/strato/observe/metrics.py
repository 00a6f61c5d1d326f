"""Prometheus metrics for the gateway, on a registry of its own (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from strato.types import EngineState, Trace

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10, 30)


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

    def observe(self, trace: Trace, model_label: str) -> None:
        endpoint = str(trace.endpoint)
        self.requests.labels(model_label, endpoint, str(trace.status)).inc()
        if trace.status >= 400:
            self.errors.labels(model_label, endpoint, trace.error_code or "error").inc()
        if trace.cache is None:  # an answer from the answer cache processed no tokens
            if trace.prompt_tokens:
                self.tokens.labels(model_label, "prompt").inc(trace.prompt_tokens)
            if trace.completion_tokens:
                self.tokens.labels(model_label, "completion").inc(trace.completion_tokens)
            if trace.cached_tokens:
                self.tokens.labels(model_label, "cached").inc(trace.cached_tokens)
        if trace.provider == "llama_cpp" and trace.status == 200 and trace.prompt_tokens:
            self.prefix_cache.labels(model_label, "hit" if trace.cached_tokens else "miss").inc()
        if trace.route:
            route = trace.route
            self.route_decisions.labels(route["router"], route["target"], route["reason"]).inc()
        if trace.cost:
            self.cost.labels(model_label, trace.deployment or "none").inc(trace.cost)
        if trace.latency_ms is not None:
            self.latency.labels(model_label, endpoint).observe(trace.latency_ms / 1000)
        if trace.ttft_ms is not None:
            self.ttft.labels(model_label).observe(trace.ttft_ms / 1000)

    def set_engines(self, states: list[EngineState]) -> None:
        """Replace the engine gauges with the current state (models unloaded since disappear)."""
        for gauge in (self.engine_slots, self.engine_queue, self.engine_memory, self.engine_lookup):
            gauge.clear()
        for state in states:
            self.engine_slots.labels(state.model, "busy").set(state.busy_slots)
            self.engine_slots.labels(state.model, "free").set(state.slots - state.busy_slots)
            self.engine_queue.labels(state.model).set(state.queued)
            self.engine_memory.labels(state.model).set(state.memory_bytes)
            if state.drafted_tokens:
                self.engine_lookup.labels(state.model, "drafted").set(state.drafted_tokens)
                self.engine_lookup.labels(state.model, "accepted").set(state.accepted_tokens)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
