"""How the model routes read their bodies (`strato.server.bodies`): JSON under a JSON content type,
parsed straight into the schema; everything else a clear 400 in OpenAI's format, traced like any
refused request. In process, over the tests' real upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
BODY = json.dumps(CHAT)


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    async with in_process(tmp_path_factory.mktemp("bodies"), [upstream.model("echo")]) as gateway:
        yield gateway


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_json_is_read_under_a_json_content_type(served: InProcess, content_type: str) -> None:
    response = await served.http.post(
        "/v1/chat/completions", content=BODY, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: hi"


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("application/x-www-form-urlencoded", "this one was application/x-www-form-urlencoded"),
        ("text/plain;charset=UTF-8", "this one was text/plain"),
        (None, "this one had none"),
    ],
)
async def test_a_body_that_is_not_sent_as_json_is_told_what_to_send(
    served: InProcess, content_type: str | None, named: str
) -> None:
    """curl's `-d` sends a form unless told otherwise; a browser page may post a form or plain text
    to a loopback server without asking first. Neither is read as JSON."""
    headers = {"content-type": content_type} if content_type else {}
    request = served.http.build_request("POST", "/v1/chat/completions", content=BODY, headers=headers)
    assert request.headers.get("content-type") == content_type  # httpx adds none for raw content
    response = await served.http.send(request)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_content_type" and error["type"] == "invalid_request_error"
    assert "Content-Type: application/json" in error["message"] and named in error["message"]
    trace = served.trace(response.headers["x-strato-trace-id"])
    assert trace.status == 400 and trace.error_code == "invalid_content_type"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
async def test_an_empty_body_is_missing(served: InProcess, path: str) -> None:
    response = await served.http.post(path, content=b"", headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "The request body is missing."


async def test_json_that_does_not_parse_says_where(served: InProcess) -> None:
    response = await served.http.post(
        "/v1/chat/completions", content=BODY[:-5], headers={"content-type": "application/json"}
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_json"
    assert "line 1 column" in error["message"]


async def test_a_field_error_names_the_field_as_before(served: InProcess) -> None:
    bad = {**CHAT, "messages": [{"role": "robot", "content": "x"}]}
    response = await served.http.post("/v1/chat/completions", json=bad)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages.0.role"
