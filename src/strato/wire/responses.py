"""OpenAI's response bodies, both ways: written from core results for strato's clients (`ResponseShape`,
`embeddings_body`, `models_body`), and read back into core results from an OpenAI-compatible
upstream (`read_generation_body`, `read_chunk`, `read_usage`), log probabilities included."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from strato.types import (
    Embeddings,
    FinishReason,
    Generation,
    ModelInfo,
    TokenLogprob,
    TopLogprob,
    Usage,
)


class MalformedResponse(ValueError):
    """The body is not an OpenAI response of the expected shape."""


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def chat_logprobs(tokens: tuple[TokenLogprob, ...] | None) -> dict[str, Any] | None:
    if tokens is None:
        return None
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.bytes),
                "top_logprobs": [
                    {"token": a.token, "logprob": a.logprob, "bytes": list(a.bytes)} for a in t.top
                ],
            }
            for t in tokens
        ],
        "refusal": None,
    }


def completion_logprobs(tokens: tuple[TokenLogprob, ...] | None, offset: int = 0) -> dict[str, Any] | None:
    """The legacy completions shape; `offset` is where these tokens start in the whole text."""
    if tokens is None:
        return None
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t.token)
    return {
        "tokens": [t.token for t in tokens],
        "token_logprobs": [t.logprob for t in tokens],
        "top_logprobs": [{a.token: a.logprob for a in t.top} for t in tokens],
        "text_offset": offsets,
    }


class ResponseShape:
    """Builds the response objects for one request (one id, one timestamp, one model name)."""

    def __init__(self, trace_id: str, model: str, *, chat: bool) -> None:
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{trace_id}"
        self.model = model
        self.chat = chat
        self.created = int(time.time())

    def _base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def complete(self, result: Generation) -> dict[str, Any]:
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "logprobs": chat_logprobs(result.logprobs),
                "finish_reason": result.finish_reason,
            }
            body = self._base("chat.completion")
        else:
            choice = {
                "index": 0,
                "text": result.text,
                "logprobs": completion_logprobs(result.logprobs),
                "finish_reason": result.finish_reason,
            }
            body = self._base("text_completion")
        body.update(choices=[choice], usage=usage_body(result.usage))
        return body

    def chunk(
        self,
        text: str | None,
        finish_reason: str | None = None,
        *,
        role: bool = False,
        logprobs: tuple[TokenLogprob, ...] | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
            if text:
                delta["content"] = text
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": chat_logprobs(logprobs),
                "finish_reason": finish_reason,
            }
            body = self._base("chat.completion.chunk")
        else:
            choice = {
                "index": 0,
                "text": text or "",
                "logprobs": completion_logprobs(logprobs, offset),
                "finish_reason": finish_reason,
            }
            body = self._base("text_completion")
        body["choices"] = [choice]
        return body

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        body = self._base("chat.completion.chunk" if self.chat else "text_completion")
        body.update(choices=[], usage=usage_body(usage))
        return body


def embeddings_body(model: str, result: Embeddings, encoding: str) -> dict[str, Any]:
    data = []
    for index, vector in enumerate(result.vectors):
        value: list[float] | str = vector
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": result.usage.prompt_tokens, "total_tokens": result.usage.prompt_tokens},
    }


def models_body(models: list[ModelInfo], created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": m.name,
                "object": "model",
                "created": created,
                "owned_by": "strato",
                "kind": str(m.kind),
                "provider": m.provider,
                "loaded": m.loaded,
                "context_length": m.context_length,
                "memory_bytes": m.memory_bytes,
            }
            for m in models
        ],
    }


def read_generation_body(data: Any, *, chat: bool) -> Generation:
    """A (non-streamed) chat or text completion response as a `Generation`. Raises
    `MalformedResponse` for a body of another shape."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        return Generation(
            text=text or "",
            finish_reason=read_finish_reason(choice.get("finish_reason")),
            usage=read_usage(data.get("usage")),
            logprobs=read_logprobs(choice.get("logprobs"), chat=chat),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MalformedResponse(str(exc)) from None


def read_chunk(choice: dict[str, Any], *, chat: bool) -> tuple[str | None, tuple[TokenLogprob, ...]]:
    """The text of one streamed choice (`delta.content` or `text`) and its tokens' log
    probabilities, when the upstream sent them."""
    text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
    return text, read_logprobs(choice.get("logprobs"), chat=chat) or ()


def read_finish_reason(value: Any) -> FinishReason:
    return "length" if value == "length" else "stop"


def read_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def read_logprobs(data: Any, *, chat: bool) -> tuple[TokenLogprob, ...] | None:
    """Log probabilities in the chat shape (`content`: token objects) or the legacy completions
    shape (parallel `tokens`, `token_logprobs` and `top_logprobs` lists); None when absent."""
    if not isinstance(data, dict):
        return None
    if chat:
        content = data.get("content")
        if not isinstance(content, list):
            return None
        return tuple(
            TokenLogprob(
                str(t["token"]),
                float(t["logprob"]),
                _bytes(t.get("bytes"), str(t["token"])),
                tuple(
                    TopLogprob(str(a["token"]), float(a["logprob"]), _bytes(a.get("bytes"), str(a["token"])))
                    for a in t.get("top_logprobs") or []
                ),
            )
            for t in content
        )
    tokens, values = data.get("tokens"), data.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list):
        return None
    tops = data.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(
            str(token),
            float(value if value is not None else 0.0),
            _bytes(None, str(token)),
            tuple(TopLogprob(str(alt), float(lp), _bytes(None, str(alt))) for alt, lp in (top or {}).items()),
        )
        for token, value, top in zip(tokens, values, tops, strict=False)
    )


def _bytes(given: Any, token: str) -> tuple[int, ...]:
    if isinstance(given, list):
        return tuple(int(b) for b in given)
    return tuple(token.encode())
