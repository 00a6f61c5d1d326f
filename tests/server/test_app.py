"""The app factory: FastAPI's own OpenTelemetry instrumentation stays off, so a process-wide
OpenTelemetry provider (set by `opentelemetry-instrument`, say) gets no second, unlinked span per
request beside strato's own trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.inprocess import in_process
from tests.support.upstream import Upstream


async def test_a_global_tracer_provider_gets_no_fastapi_spans(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    # As if set process-wide (the real setter works once per process, for every test after it).
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    async with in_process(tmp_path, [upstream.model("echo")]) as served:
        assert (await served.http.get("/healthz")).status_code == 200
        chat = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        response = await served.http.post("/v1/chat/completions", json=chat)
        assert response.status_code == 200
        assert served.trace(response.headers["x-strato-trace-id"]).spans  # strato's own trace
    provider.shutdown()
    assert [span.name for span in exported.get_finished_spans()] == []
