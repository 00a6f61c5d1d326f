"""A client that goes away mid-stream stops generation and leaves a trace.

That is a real TCP client closing its connection to `strato serve`, so those tests run the command;
the metrics and health checks run in process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from strato.types import TraceQuery
from tests.conftest import CHAT_MODEL, gateway_models
from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.inprocess import InProcess
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GatewayProcess]:
    """`strato serve` with the one model the disconnect tests use."""
    models = [m for m in gateway_models(upstream) if m["name"] == CHAT_MODEL]
    with gateway_process(tmp_path_factory.mktemp("disconnect"), models) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=120) as sdk:
        yield sdk


def test_disconnect_mid_stream_stops_generation(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        "temperature": 0,
        "max_tokens": 1900,  # tens of seconds of generation on this machine if it were not stopped
        "stream": True,
    }
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=60) as response:
        trace_id = response.headers["x-strato-trace-id"]
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert any("content" in line for line in received)

    # The model serves one request at a time, so the next answer can only come once the abandoned
    # generation has stopped; 1,900 tokens would take far longer than this bound.
    started = time.monotonic()
    client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert time.monotonic() - started < 15

    trace = gateway.trace(trace_id)
    assert trace.status == 499 and trace.error_code == "client_disconnected"
    assert trace.completion  # the part that was produced is kept


def test_disconnect_while_waiting_for_a_whole_answer_stops_generation(
    client: openai.OpenAI, gateway: GatewayProcess
) -> None:
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Write a very long story about a castle."}],
        "temperature": 0,
        "max_tokens": 1900,
    }
    before = {t.id for t in gateway.store.traces(TraceQuery(limit=1000))}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=httpx.Timeout(60, read=1.5))

    started = time.monotonic()
    client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert time.monotonic() - started < 15

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = [
            t for t in gateway.store.traces(TraceQuery(limit=1000)) if t.id not in before and t.status == 499
        ]
        if new:
            break
        time.sleep(0.1)
    assert new and new[0].error_code == "client_disconnected" and not new[0].stream


async def test_metrics_in_prometheus_format(strato: InProcess) -> None:
    client = strato.sdk()
    await client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    stream = await client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True
    )
    async for _chunk in stream:
        pass
    await strato.http.post(
        "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
    )
    text = (await strato.http.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = samples[("strato_requests_total", (("endpoint", "chat"), ("model", CHAT_MODEL), ("status", "200")))]
    assert ok >= 2
    assert (
        samples[
            (
                "strato_request_errors_total",
                (("code", "model_not_found"), ("endpoint", "chat"), ("model", "unknown")),
            )
        ]
        >= 1
    )
    assert samples[("strato_tokens_total", (("model", CHAT_MODEL), ("type", "completion")))] >= 6
    assert (
        samples[("strato_request_duration_seconds_count", (("endpoint", "chat"), ("model", CHAT_MODEL)))] >= 2
    )
    assert samples[("strato_time_to_first_token_seconds_count", (("model", CHAT_MODEL),))] >= 1


async def test_healthz(strato: InProcess) -> None:
    assert (await strato.http.get("/healthz")).json() == {"status": "ok"}
