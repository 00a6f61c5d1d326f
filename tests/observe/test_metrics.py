"""`/metrics` exposes the OpenTelemetry GenAI metrics per model (token usage, operation and request
duration, time to first token, time per output token) next to strato's own series, from the
gateway answering with the real SmolLM2 and the tests' upstream server."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CHAT_MODEL
from tests.support.inprocess import InProcess


async def samples(strato: InProcess) -> list[tuple[str, dict[str, str], float]]:
    text = (await strato.http.get("/metrics")).text
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def series(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> list[dict[str, Any]]:
    """The samples of `name` whose labels include `labels`, each as its labels plus `value`."""
    return [
        {**sample_labels, "value": value}
        for sample_name, sample_labels, value in found
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
    ]


async def test_metrics_show_the_genai_series_per_model(strato: InProcess) -> None:
    client = strato.sdk()
    before = await samples(strato)
    stream = await client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [chunk.usage async for chunk in stream if chunk.usage is not None][-1]
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="remote-fail", messages=[{"role": "user", "content": "x"}])
    after = await samples(strato)

    model = {"gen_ai_request_model": CHAT_MODEL, "gen_ai_operation_name": "chat"}

    def grew(name: str, **labels: str) -> float:
        now = sum(s["value"] for s in series(after, name, **labels))
        return float(now - sum(s["value"] for s in series(before, name, **labels)))

    tokens = {**model, "gen_ai_provider_name": "llama_cpp"}
    assert grew("gen_ai_client_token_usage_sum", **tokens, gen_ai_token_type="input") == usage.prompt_tokens
    assert (
        grew("gen_ai_client_token_usage_sum", **tokens, gen_ai_token_type="output") == usage.completion_tokens
    )
    assert grew("gen_ai_client_token_usage_count", **tokens, gen_ai_token_type="output") == 1
    # The semantic conventions' token buckets.
    buckets = {s["le"] for s in series(after, "gen_ai_client_token_usage_bucket", **tokens)}
    assert {"1.0", "4.0", "16.0", "1024.0", "6.7108864e+07", "+Inf"} <= buckets

    assert grew("gen_ai_server_request_duration_seconds_count", **model, error_type="") == 1
    assert grew("gen_ai_server_time_to_first_token_seconds_count", **model) == 1
    assert grew("gen_ai_server_time_per_output_token_seconds_count", **model) == 1
    assert (
        grew("gen_ai_client_operation_duration_seconds_count", **model, gen_ai_provider_name="llama_cpp") == 1
    )
    assert grew("gen_ai_server_time_per_output_token_seconds_sum", **model) > 0

    failed = {"gen_ai_request_model": "remote-fail", "error_type": "upstream_error"}
    assert grew("gen_ai_server_request_duration_seconds_count", **failed) == 1
    assert (
        grew("gen_ai_client_operation_duration_seconds_count", **failed, gen_ai_provider_name="openai") == 1
    )
    assert grew("gen_ai_client_token_usage_count", gen_ai_request_model="remote-fail") == 0

    # strato's own series are still there.
    assert grew("strato_requests_total", model=CHAT_MODEL, endpoint="chat", status="200") == 1
