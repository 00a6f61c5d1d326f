"""A real HTTP server speaking Anthropic's Messages API (POST /v1/messages), for tests: the hosted
vendor cannot be reached from here.

It checks each request as Anthropic does and answers a bad one with Anthropic's 401 or 400: the
`x-api-key` and `anthropic-version` headers, a `max_tokens`, no field the API does not know, a
system prompt only at the top level, user and assistant turns that alternate, non-empty content.
What it answers the upstream model name picks:

- `echo`: "echo: <last user message>" as two text blocks, one token per word, cut before a stop
  sequence (stop_reason `stop_sequence`) or at `max_tokens` words (`max_tokens`); streamed word
  by word with the events Anthropic documents (message_start, content_block_start, ping,
  content_block_delta..., content_block_stop, message_delta, message_stop)
- `status-<code>`: that status with Anthropic's error body for it (429 and 529 with retry-after: 1)
- `busy-once`: 429 with retry-after: 1 the first time, `echo` after that
- `too-long`: 400, "prompt is too long: ..."
- `garbage`: a 200 that is not JSON (streamed: an event whose data is not JSON)
- `overloaded-mid-stream`: a stream that sends message_start, then an `error` event
- `cut`: a stream that drops the connection after two words
- `unfinished`: a stream that ends cleanly after the text, without message_delta or message_stop
- `hang`: never answers within any sane timeout

Every answer reports 5 input tokens, 4 read from the prompt cache and 2 written to it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.upstream import LocalServer

API_VERSION = "2023-06-01"
KNOWN_FIELDS = {
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {429: "Number of requests has exceeded your rate limit", 529: "Overloaded"}
PROMPT_USAGE = {"input_tokens": 5, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}


def error(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = ERROR_TYPES[status]
    body = {"type": "error", "error": {"type": kind, "message": message or ERROR_MESSAGES.get(status, kind)}}
    return JSONResponse(body, status, headers=headers)


def sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


class AnthropicUpstream(LocalServer):
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._busy_done = False
        super().__init__([Route("/v1/messages", self._messages, methods=["POST"])])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def _messages(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if request.headers.get("x-api-key") != self.api_key:
            return error(401, "invalid x-api-key")
        problem = _problem(body, request.headers.get("anthropic-version"))
        if problem:
            return error(400, problem)
        behaviour = body["model"]
        if behaviour.startswith("status-"):
            status = int(behaviour.removeprefix("status-"))
            return error(status, headers={"retry-after": "1"} if status in (429, 529) else None)
        if behaviour == "busy-once" and not self._busy_done:
            self._busy_done = True
            return error(429, headers={"retry-after": "1"})
        if behaviour == "too-long":
            return error(400, "prompt is too long: 208598 tokens > 200000 maximum")
        if behaviour == "hang":
            await asyncio.sleep(60)
        words, stop_reason, stop_sequence = _answer(body)
        if body.get("stream"):
            events = self._events(behaviour, words, stop_reason, stop_sequence)
            return StreamingResponse(events, media_type="text/event-stream")
        if behaviour == "garbage":
            return Response("<html>this is not JSON", media_type="application/json")
        # Two text blocks, which the provider must join.
        head, tail = " ".join(words[:1]), " ".join(words[1:])
        blocks = [{"type": "text", "text": head}, {"type": "text", "text": " " + tail if tail else ""}]
        return JSONResponse(
            {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": behaviour,
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": {**PROMPT_USAGE, "output_tokens": len(words)},
            }
        )

    async def _events(
        self, behaviour: str, words: list[str], stop_reason: str, stop_sequence: str | None
    ) -> AsyncIterator[str]:
        message: dict[str, Any] = {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": behaviour,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**PROMPT_USAGE, "output_tokens": 1},
        }
        yield sse({"type": "message_start", "message": message})
        if behaviour == "garbage":
            yield "event: content_block_start\ndata: {not json\n\n"
        if behaviour == "overloaded-mid-stream":
            yield sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            return
        yield sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        yield sse({"type": "ping"})
        for i, word in enumerate(words):
            if behaviour == "cut" and i == 2:
                raise ConnectionResetError("upstream cut the stream")
            delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
            yield sse({"type": "content_block_delta", "index": 0, "delta": delta})
            await asyncio.sleep(0.01)
        yield sse({"type": "content_block_stop", "index": 0})
        if behaviour == "unfinished":
            return
        stop = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        yield sse({"type": "message_delta", "delta": stop, "usage": {"output_tokens": len(words)}})
        yield sse({"type": "message_stop"})


def _problem(body: dict[str, Any], version: str | None) -> str | None:
    """What Anthropic would refuse in this request, in its words; None for a good request."""
    if version != API_VERSION:
        return "anthropic-version: header is required"
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        return f"{unknown[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    if not 0 <= body.get("temperature", 0) <= 1:
        return "temperature: Input should be less than or equal to 1"
    if "system" in body and not isinstance(body["system"], str):
        return "system: Input should be a valid string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    previous = None
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if message["role"] == previous:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{previous}" roles in a row'
            )
        if not isinstance(message.get("content"), str) or not message["content"]:
            return f"messages.{i}: all messages must have non-empty content"
        previous = message["role"]
    return None


def _answer(body: dict[str, Any]) -> tuple[list[str], str, str | None]:
    """The echo's words, cut before the first stop sequence or at max_tokens words, and why it ended."""
    text = "echo: " + str(body["messages"][-1]["content"])
    found = [(text.find(s), s) for s in body.get("stop_sequences", []) if s in text]
    if found:
        at, sequence = min(found)
        return text[:at].split(), "stop_sequence", sequence
    words = text.split(" ")
    if len(words) > body["max_tokens"]:
        return words[: body["max_tokens"]], "max_tokens", None
    return words, "end_turn", None
