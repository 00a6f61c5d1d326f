"""A client is told which model failed, never the upstream's URL or the HTTP client's own words;
the trace and the log keep both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream, free_port

DOWN = f"http://127.0.0.1:{free_port()}/v1"
INTERNALS = ("127.0.0.1", "Cannot connect", "ClientConnector", "payload", "aiohttp", "Errno")


@pytest.fixture
async def served(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    models = [
        {"name": "down", "provider": "openai", "base_url": DOWN, "connect_timeout": 1.0},
        upstream.model("cut", "cut"),
        {"name": "grp", "provider": "group", "deployments": ["down"], "backoff": 0.01},
    ]
    async with in_process(tmp_path, models) as s:
        yield s


def chat(model: str, stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "one two"}], "stream": stream}


@pytest.mark.parametrize(("model", "status"), [("down", 502), ("grp", 503)])
async def test_an_unreachable_upstream_is_named_by_its_model(
    served: InProcess, model: str, status: int
) -> None:
    response = await served.http.post("/v1/chat/completions", json=chat(model))
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert "'down'" in message
    assert not [word for word in INTERNALS if word in message], message
    trace = served.trace(response.headers["x-strato-trace-id"])
    assert trace.error is not None and DOWN in trace.error  # kept for operators


async def test_a_stream_cut_by_the_upstream_ends_with_an_event_naming_the_model(served: InProcess) -> None:
    response = await served.http.post("/v1/chat/completions", json=chat("cut", stream=True))
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data: {")]
    error = events[-1]["error"]
    assert "'cut'" in error["message"] and error["code"] == "upstream_error"
    assert not [word for word in INTERNALS if word in error["message"]], error
    trace = served.trace(response.headers["x-strato-trace-id"])
    assert trace.error is not None and "upstream http://127.0.0.1" in trace.error
