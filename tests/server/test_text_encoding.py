"""Text that is not Unicode (a lone UTF-16 surrogate escaped in the JSON body) is refused at the
edge with a 400 naming the field, with or without a key, and never stops the trace writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-text-test"
JSON = {"content-type": "application/json"}


@pytest.fixture
async def served(tmp_path: Path, upstream: Upstream) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path, [upstream.model("echo")], server={"master_key": MASTER}) as s:
        yield s


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"model": "echo", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages.0.content"),
        ('{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "user": "\\udc00"}', "user"),
        ('{"model": "echo", "prompt": "x\\uDBFF"}', "prompt"),
    ],
)
async def test_a_lone_surrogate_is_a_400_naming_the_field(served: InProcess, body: str, param: str) -> None:
    path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
    auth = {"authorization": f"Bearer {MASTER}"}
    response = await served.http.post(path, content=body, headers={**JSON, **auth})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_text"
    assert "surrogate" in error["message"]


async def test_without_a_key_it_is_refused_too_and_later_requests_are_stored(served: InProcess) -> None:
    body = '{"model": "echo", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    refused = await served.http.post("/v1/chat/completions", content=body, headers=JSON)
    assert refused.status_code == 400
    sdk = served.sdk(MASTER)
    answer = await sdk.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "hello"}]
    )
    trace_id = answer.headers["x-strato-trace-id"]
    stored = served.trace(trace_id)
    assert stored.completion == "echo: hello"
    assert served.gateway.recorder.dropped == 0


async def test_a_valid_surrogate_pair_is_an_emoji(served: InProcess) -> None:
    body = '{"model": "echo", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    auth = {"authorization": f"Bearer {MASTER}"}
    response = await served.http.post("/v1/chat/completions", content=body, headers={**JSON, **auth})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: smile 😀"


async def test_an_escaped_backslash_is_not_a_surrogate(served: InProcess) -> None:
    body = '{"model": "echo", "messages": [{"role": "user", "content": "path C:\\\\ud800"}]}'
    auth = {"authorization": f"Bearer {MASTER}"}
    response = await served.http.post("/v1/chat/completions", content=body, headers={**JSON, **auth})
    assert response.status_code == 200, response.text
