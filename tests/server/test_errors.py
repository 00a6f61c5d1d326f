"""Bad input, at the HTTP level: the right status, OpenAI's error body, a trace, never a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
import pytest

from tests.conftest import CHAT_MODEL, EMBED_MODEL
from tests.support.inprocess import InProcess

HI = [{"role": "user", "content": "hi"}]


async def post(
    strato: InProcess, path: str, content: bytes | str, headers: dict[str, str] | None = None
) -> httpx.Response:
    headers = {"content-type": "application/json", **(headers or {})}
    return await strato.http.post(path, content=content, headers=headers)


def assert_openai_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


CASES = [
    (
        "malformed JSON",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [',
        400,
        "invalid_json",
        None,
    ),
    ("not an object", "/v1/chat/completions", "[1, 2]", 400, None, None),
    (
        "model name too long",
        "/v1/chat/completions",
        '{"model": "' + "m" * 300 + '", "messages": [{"role": "user", "content": "x"}]}',
        400,
        None,
        "model",
    ),
    ("missing messages", "/v1/chat/completions", '{"model": "smollm2"}', 400, None, "messages"),
    ("empty messages", "/v1/chat/completions", '{"model": "smollm2", "messages": []}', 400, None, "messages"),
    (
        "messages not a list",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": "hi"}',
        400,
        None,
        "messages",
    ),
    (
        "bad role",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "robot", "content": "x"}]}',
        400,
        None,
        "messages.0.role",
    ),
    (
        "temperature a string",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
        400,
        None,
        "temperature",
    ),
    (
        "temperature too high",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": 3}',
        400,
        None,
        "temperature",
    ),
    (
        "max_tokens zero",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
        400,
        None,
        "max_tokens",
    ),
    (
        "max_tokens a float",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2.5}',
        400,
        None,
        "max_tokens",
    ),
    (
        "max_tokens beyond context",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}',
        400,
        "context_length_exceeded",
        "max_tokens",
    ),
    (
        "n above one",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "n": 2}',
        400,
        None,
        "n",
    ),
    (
        "unsupported parameter",
        "/v1/chat/completions",
        '{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "x"}]}',
        400,
        "unsupported_parameter",
        "tools",
    ),
    (
        "unknown model",
        "/v1/chat/completions",
        '{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}',
        404,
        "model_not_found",
        "model",
    ),
    (
        "embedding model for chat",
        "/v1/chat/completions",
        '{"model": "minilm", "messages": [{"role": "user", "content": "x"}]}',
        400,
        None,
        "model",
    ),
    ("chat model for embeddings", "/v1/embeddings", '{"model": "smollm2", "input": "x"}', 400, None, "model"),
    ("empty embedding input", "/v1/embeddings", '{"model": "minilm", "input": []}', 400, None, "input"),
    (
        "token embedding input",
        "/v1/embeddings",
        '{"model": "minilm", "input": [1, 2, 3]}',
        400,
        None,
        "input",
    ),
    ("missing prompt", "/v1/completions", '{"model": "smollm2"}', 400, None, "prompt"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_request_gets_openai_error_and_a_trace(
    strato: InProcess, path: str, body: str, status: int, code: str | None, param: str | None
) -> None:
    response = await post(strato, path, body)
    error = assert_openai_error(response, status, code, param)
    trace = strato.trace(response.headers["x-strato-trace-id"])
    assert trace.status == status
    assert trace.error == error["message"]
    assert trace.error_code == error["code"]


async def test_prompt_longer_than_context(strato: InProcess) -> None:
    long = [{"role": "user", "content": "word " * 3000}]  # the test model's context is 2048 tokens
    response = await strato.http.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": long})
    error = assert_openai_error(response, 400, "context_length_exceeded", "messages")
    assert "2048" in error["message"]
    streamed = await strato.http.post(
        "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": long, "stream": True}
    )
    assert_openai_error(streamed, 400, "context_length_exceeded")


async def test_embedding_input_longer_than_the_model_reads(strato: InProcess) -> None:
    response = await strato.http.post("/v1/embeddings", json={"model": EMBED_MODEL, "input": "word " * 600})
    assert_openai_error(response, 400, "context_length_exceeded", "input")


async def test_oversized_body_is_refused_with_413(strato: InProcess) -> None:
    huge = (
        '{"model": "smollm2", "messages": [{"role": "user", "content": "' + "x" * (9 * 1024 * 1024) + '"}]}'
    )
    response = await post(strato, "/v1/chat/completions", huge)
    assert_openai_error(response, 413, "request_too_large")
    assert strato.trace(response.headers["x-strato-trace-id"]).status == 413

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    response = await strato.http.post("/v1/chat/completions", content=chunked())
    assert_openai_error(response, 413, "request_too_large")


async def test_unknown_route_and_wrong_method(strato: InProcess) -> None:
    assert_openai_error(await strato.http.get("/v1/nothing-here"), 404, "not_found")
    assert_openai_error(await strato.http.get("/v1/chat/completions"), 405, "method_not_allowed")


def leaked(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The records that carry a stack trace, attached or in their text."""
    return [r for r in records if r.exc_info or r.exc_text or r.stack_info or "Traceback" in r.getMessage()]


async def test_no_stack_trace_leaked_into_the_log_for_bad_input(
    strato: InProcess,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In a process the log file held everything logged (and printed) since the start: here the test
    # sends the bad input itself, every kind of it, and watches every logger and stderr meanwhile.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="strato"):
        assert (await post(strato, "/v1/chat/completions", "{broken")).status_code == 400
        for _, path, body, status, *_ in CASES:
            assert (await post(strato, path, body)).status_code == status
        latin1 = '{"model": "smollm2", "messages": [{"role": "user", "content": "café"}]}'.encode("latin-1")
        assert (await post(strato, "/v1/chat/completions", latin1)).status_code == 400
        assert (await strato.http.get("/v1/nothing-here")).status_code == 404
    assert not leaked(caplog.records), caplog.text
    assert "Traceback" not in caplog.text
    assert "Traceback" not in capfd.readouterr().err

    # The capture does see a stack trace the server logs: a request failing inside the gateway.
    async def broken(*args: Any) -> NoReturn:
        raise RuntimeError("a bug")

    monkeypatch.setattr(strato.gateway, "_input_guards_step", broken)
    caplog.clear()
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="strato"):
        valid = {"model": CHAT_MODEL, "messages": HI}
        assert (await strato.http.post("/v1/chat/completions", json=valid)).status_code == 500
    assert [r.name for r in leaked(caplog.records)] == ["strato.gateway"]
    assert "Traceback" in caplog.text and "RuntimeError: a bug" in caplog.text


async def test_text_content_parts_are_accepted_and_images_refused(strato: InProcess) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}]
    body = {"model": CHAT_MODEL, "messages": parts, "max_tokens": 5, "temperature": 0}
    assert (await strato.http.post("/v1/chat/completions", json=body)).status_code == 200
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    response = await strato.http.post("/v1/chat/completions", json={**body, "messages": image})
    assert_openai_error(response, 400, param="messages.0.content")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/guards/scan"])
async def test_a_body_that_is_not_utf8_is_refused_clearly(strato: InProcess, path: str) -> None:
    latin1 = '{"model": "smollm2", "messages": [{"role": "user", "content": "café"}]}'.encode("latin-1")
    response = await strato.http.post(path, content=latin1, headers={"content-type": "application/json"})
    error = assert_openai_error(response, 400, "invalid_json", None)
    assert "UTF-8" in error["message"]
