"""What spans and the GenAI metrics add to one request, timed on the request path's own calls.

One request here is a chat through a model group (a failed attempt, then a fallback) with the
default guards and an answer cache: the spans the gateway opens for it (auth, the input guards
step and its four guards, the cache, the provider call, the output guards step and its two
guards), then `finish` (the route and the two attempts as spans, time to first token, the root's
GenAI attributes). Measured separately: the GenAI measurements and their Prometheus histograms, and
the hand-off to the OTLP exporter's queue (what the request pays when export is on; the conversion
and the export run on the exporter's thread).

    .venv/bin/python benchmarks/spans_overhead.py [--json benchmarks/out/spans_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from strato.config.observe import OtelSettings
from strato.observe.metrics import GatewayMetrics, genai_measurements
from strato.observe.otel import open_otel_export
from strato.observe.spans import SpanRecorder, current, finish
from strato.routing.attempts import Attempt, Decision, Notes
from strato.types import Endpoint, Span, Trace

ROUNDS = 7
PER_ROUND = 5_000
INPUT_GUARDS = ("secrets", "pii", "injection", "words")
OUTPUT_GUARDS = ("secrets", "output")


def a_trace() -> Trace:
    now = time.time()
    return Trace(
        id="0af7651916cd43dd8448eb211c80319c",
        started_at=now,
        endpoint=Endpoint.CHAT,
        requested_model="g",
        request={"temperature": 0.2, "top_p": 1.0, "max_tokens": 64, "seed": None, "stop": []},
        api_key="k1",
        deployment="echo",
        provider="openai",
        prompt_tokens=120,
        completion_tokens=64,
        ttft_ms=85.0,
        latency_ms=900.0,
        finish_reason="stop",
        ended_at=now + 0.9,
        stream=True,
    )


def a_request(trace: Trace, notes: Notes) -> list[Span]:
    """The span calls the gateway makes for one request, then `finish`."""
    spans = SpanRecorder()
    spans.begin("chat g", time.time())
    with spans.span("strato.auth") as auth:
        auth.attributes["strato.api_key.id"] = "k1"
    with spans.span("strato.input_guards") as step:
        for name in INPUT_GUARDS:
            recorder = current()  # what each guard's span looks up
            assert recorder is not None
            with recorder.span(f"strato.guard.{name}", {"strato.guard.direction": "input"}) as guard:
                guard.attributes["strato.guard.action"] = "allow"
                guard.attributes["strato.guard.findings"] = 0
        step.attributes["strato.guard.action"] = "allow"
    with spans.span("strato.cache") as cache:
        cache.attributes["strato.cache.result"] = "miss"
    with spans.calling():
        pass
    with spans.span("strato.output_guards") as step:
        for name in OUTPUT_GUARDS:
            recorder = current()
            assert recorder is not None
            with recorder.span(f"strato.guard.{name}", {"strato.guard.direction": "output"}) as guard:
                guard.attributes["strato.guard.action"] = "allow"
                guard.attributes["strato.guard.findings"] = 0
        step.attributes["strato.guard.action"] = "allow"
    return finish(spans, trace, notes)


def routing_notes() -> Notes:
    """What a router and a model group recorded: a decision, a failed attempt, a fallback."""
    now = time.time()
    return Notes(
        [
            Attempt("broken", "openai", 500, 12.0, "upstream_error", "boom", now - 0.9),
            Attempt("echo", "openai", 200, 80.0, started_at=now - 0.88),
        ],
        Decision("r", "g", "default", None, 0.05),
        now - 0.95,
    )


def per_call_us(work: Callable[[], object]) -> float:
    """The best round's mean CPU time of one call, in microseconds (CPU time of this thread, so
    that other processes on the machine do not count; the best round, as `timeit` advises)."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        for _ in range(PER_ROUND):
            work()
        rounds.append((time.thread_time() - started) / PER_ROUND * 1e6)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/spans_overhead.json"))
    args = parser.parse_args()

    trace, notes = a_trace(), routing_notes()
    spans = a_request(trace, notes)
    trace.spans = spans
    metrics = GatewayMetrics()
    # A collector that is not there: the request path only queues (the queue is big enough here).
    settings = OtelSettings(endpoint="http://127.0.0.1:9")
    export = open_otel_export(settings, env={"OTEL_BSP_MAX_QUEUE_SIZE": "1000000"})
    assert export is not None
    measured = metrics.observe(trace, "g")
    rows = {
        f"spans ({len(spans)} per request)": per_call_us(lambda: a_request(trace, notes)),
        "GenAI metrics (measure + Prometheus)": per_call_us(
            lambda: metrics.genai.observe(genai_measurements(trace, "g"))
        ),
        "OTLP hand-off (queue put)": per_call_us(lambda: export.submit(trace, measured)),
    }
    export.close(timeout=0.5)
    width = max(len(k) for k in rows)
    print(f"{'what':<{width}}  µs per request")
    for name, value in rows.items():
        print(f"{name:<{width}}  {value:8.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"rounds": ROUNDS, "per_round": PER_ROUND, "us_per_request": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
