"""Bad input, at the HTTP level: the right status, OpenAI's error body, a trace, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import CHAT_MODEL, EMBED_MODEL
from tests.support.gateway import GatewayProcess

HI = [{"role": "user", "content": "hi"}]


def post(
    gateway: GatewayProcess, path: str, content: bytes | str, headers: dict[str, str] | None = None
) -> httpx.Response:
    headers = {"content-type": "application/json", **(headers or {})}
    return httpx.post(f"{gateway.url}{path}", content=content, headers=headers, timeout=60)


def assert_openai_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
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
def test_bad_request_gets_openai_error_and_a_trace(
    gateway: GatewayProcess, path: str, body: str, status: int, code: str | None, param: str | None
) -> None:
    response = post(gateway, path, body)
    error = assert_openai_error(response, status, code, param)
    trace = gateway.trace(response.headers["x-strato-trace-id"])
    assert trace.status == status
    assert trace.error == error["message"]
    assert trace.error_code == error["code"]


def test_prompt_longer_than_context(gateway: GatewayProcess) -> None:
    long = [{"role": "user", "content": "word " * 3000}]  # the test model's context is 2048 tokens
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": CHAT_MODEL, "messages": long}, timeout=60
    )
    error = assert_openai_error(response, 400, "context_length_exceeded", "messages")
    assert "2048" in error["message"]
    streamed = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": long, "stream": True},
        timeout=60,
    )
    assert_openai_error(streamed, 400, "context_length_exceeded")


def test_embedding_input_longer_than_the_model_reads(gateway: GatewayProcess) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/embeddings", json={"model": EMBED_MODEL, "input": "word " * 600}, timeout=60
    )
    assert_openai_error(response, 400, "context_length_exceeded", "input")


def test_oversized_body_is_refused_with_413(gateway: GatewayProcess) -> None:
    huge = (
        '{"model": "smollm2", "messages": [{"role": "user", "content": "' + "x" * (9 * 1024 * 1024) + '"}]}'
    )
    response = post(gateway, "/v1/chat/completions", huge)
    assert_openai_error(response, 413, "request_too_large")
    assert gateway.trace(response.headers["x-strato-trace-id"]).status == 413

    def chunked() -> Any:
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=chunked(), timeout=60)
    assert_openai_error(response, 413, "request_too_large")


def test_unknown_route_and_wrong_method(gateway: GatewayProcess) -> None:
    assert_openai_error(httpx.get(f"{gateway.url}/v1/nothing-here"), 404, "not_found")
    assert_openai_error(httpx.get(f"{gateway.url}/v1/chat/completions"), 405, "method_not_allowed")


def test_no_stack_trace_leaked_into_the_log_for_bad_input(gateway: GatewayProcess) -> None:
    post(gateway, "/v1/chat/completions", "{broken")
    assert "Traceback" not in gateway.log_text()


def test_text_content_parts_are_accepted_and_images_refused(gateway: GatewayProcess) -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]}]
    body = {"model": CHAT_MODEL, "messages": parts, "max_tokens": 5, "temperature": 0}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=60).status_code == 200
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={**body, "messages": image}, timeout=60)
    assert_openai_error(response, 400, param="messages.0.content")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/guards/scan"])
def test_a_body_that_is_not_utf8_is_refused_clearly(gateway: GatewayProcess, path: str) -> None:
    latin1 = '{"model": "smollm2", "messages": [{"role": "user", "content": "café"}]}'.encode("latin-1")
    response = httpx.post(
        f"{gateway.url}{path}", content=latin1, headers={"content-type": "application/json"}, timeout=30
    )
    error = assert_openai_error(response, 400, "invalid_json", None)
    assert "UTF-8" in error["message"]
