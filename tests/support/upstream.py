"""A real OpenAI-compatible HTTP server for tests, whose behaviour the upstream model name picks:

- `echo`: answers "echo: <last user message>" (streamed word by word), honours include_usage
- `fail`: 500 with an error body
- `reject`: 400 with an error body (the client's fault, passed through)
- `hang`: never answers within any sane timeout
- `cut`: streams two chunks, then drops the connection
- `cut-early`: drops a stream before its first chunk
- `stall`: streams its first chunk, then nothing more for a minute
- `busy-once`: the first request gets 429 with `retry-after: 1`, later ones the `echo` answer
- `garbage`: a 200 whose body is not JSON (streamed: an event whose data is not JSON)
- `cookie`: the `echo` answer with a `Set-Cookie` header, as vendors' load balancers send

Asked for `logprobs`, `echo` answers with log probabilities in OpenAI's chat or completions shape:
each word is a token with logprob -0.5 and `top_logprobs` alternatives.

Setting `down` makes every request fail with 503 until it is cleared; `calls` counts requests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """Starlette routes served by uvicorn on a thread, on a free local port."""

    def __init__(self, routes: list[Route]) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


class Upstream(LocalServer):
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrived = threading.Condition()  # notified as each request is read
        self.down = False
        self._busy_done = False
        self.headers: list[dict[str, str]] = []
        super().__init__(
            [
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _read(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        with self.arrived:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.arrived.notify_all()
        return body

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` requests have arrived (False if `timeout` seconds pass first)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    async def _chat(self, request: Request) -> Response:
        body = await self._read(request)
        text = "echo: " + str(body["messages"][-1]["content"])
        return await self._answer(body, text, chat=True)

    async def _completions(self, request: Request) -> Response:
        body = await self._read(request)
        return await self._answer(body, "echo: " + str(body["prompt"]), chat=False)

    async def _embeddings(self, request: Request) -> Response:
        body = await self._read(request)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
            for i, t in enumerate(inputs)
        ]
        return JSONResponse(
            {"object": "list", "data": data, "usage": {"prompt_tokens": 3, "total_tokens": 3}}
        )

    def model(self, name: str, behaviour: str = "echo", **options: Any) -> dict[str, Any]:
        """A strato model entry (`provider: openai`) served by this upstream with `behaviour`."""
        entry = {"name": name, "provider": "openai", "base_url": self.base_url, "upstream_model": behaviour}
        return {**entry, "timeout": 2, **options}

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def _answer(self, body: dict[str, Any], text: str, *, chat: bool) -> Response:
        behaviour = body["model"]
        if self.down:
            return JSONResponse({"error": {"message": "upstream is down", "type": "server_error"}}, 503)
        if behaviour == "busy-once" and not self._busy_done:
            self._busy_done = True
            return JSONResponse(
                {"error": {"message": "slow down", "type": "rate_limit_error"}},
                429,
                headers={"retry-after": "1"},
            )
        if behaviour == "fail":
            return JSONResponse({"error": {"message": "upstream exploded", "type": "server_error"}}, 500)
        if behaviour == "reject":
            return JSONResponse(
                {"error": {"message": "temperature is too hot", "type": "invalid_request_error"}}, 400
            )
        if behaviour == "hang":
            await asyncio.sleep(60)
        if behaviour.startswith("say:"):  # answer with exactly the text after "say:"
            text = behaviour[len("say:") :]
        elif behaviour.startswith("sleep:"):  # echo, after sleeping this many seconds
            await asyncio.sleep(float(behaviour[len("sleep:") :]))
        if behaviour == "garbage":
            if body.get("stream"):
                return Response("data: <html>oops\n\n", media_type="text/event-stream")
            return Response("<html>this is not JSON", media_type="application/json")
        words = text.split(" ")
        usage = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7 + len(words)}
        if not body.get("stream"):
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": text, "finish_reason": "stop"}
            )
            choice["logprobs"] = _logprobs(body, _pieces(words), chat=chat)
            cookie = f"upstream_session=for-{len(self.requests)}; Path=/"
            return JSONResponse(
                {"id": "up-1", "object": "x", "model": behaviour, "choices": [choice], "usage": usage},
                headers={"set-cookie": cookie} if behaviour == "cookie" else None,
            )
        return StreamingResponse(self._stream(body, words, usage, chat=chat), media_type="text/event-stream")

    async def _stream(
        self, body: dict[str, Any], words: list[str], usage: dict[str, int], *, chat: bool
    ) -> AsyncIterator[str]:
        if body["model"] == "cut-early":
            raise ConnectionResetError("upstream cut the stream before any output")
        for i, piece in enumerate(_pieces(words)):
            if body["model"] == "cut" and i == 2:
                raise ConnectionResetError("upstream cut the stream")
            choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
            choice["logprobs"] = _logprobs(body, [piece], chat=chat)
            yield f"data: {json.dumps({'choices': [choice | {'finish_reason': None}]})}\n\n"
            await asyncio.sleep(60 if body["model"] == "stall" else 0.01)
        final = (
            {"index": 0, "delta": {}, "finish_reason": "stop"}
            if chat
            else {"index": 0, "text": "", "finish_reason": "stop"}
        )
        yield f"data: {json.dumps({'choices': [final]})}\n\n"
        if (body.get("stream_options") or {}).get("include_usage"):
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"


def _pieces(words: list[str]) -> list[str]:
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def _logprobs(body: dict[str, Any], pieces: list[str], *, chat: bool) -> dict[str, Any] | None:
    """OpenAI's log probabilities for `pieces` (one token each), when the body asked for them."""
    if chat and body.get("logprobs"):
        top = int(body.get("top_logprobs") or 0)
        content = [
            {
                "token": p,
                "logprob": -0.5,
                "bytes": list(p.encode()),
                "top_logprobs": [
                    {"token": f"{p}#{k}", "logprob": -1.0 - k, "bytes": list(f"{p}#{k}".encode())}
                    for k in range(top)
                ],
            }
            for p in pieces
        ]
        return {"content": content, "refusal": None}
    if not chat and body.get("logprobs") is not None:
        top = int(body["logprobs"])
        return {
            "tokens": pieces,
            "token_logprobs": [-0.5] * len(pieces),
            "top_logprobs": [{f"{p}#{k}": -1.0 - k for k in range(top)} for p in pieces],
            "text_offset": [0] * len(pieces),
        }
    return None
