"""Anthropic's Messages API (POST {base_url}/v1/messages) as a strato model.

A chat request is translated to a Messages request: system messages become the top-level `system`,
consecutive messages of one role are merged (Anthropic wants user and assistant to alternate), and
`stop` becomes `stop_sequences`; a text completion's prompt becomes one user message. The answer,
whole or streamed as server-sent events, is translated back. What Anthropic cannot honour is refused
with a 400 naming it rather than dropped: seed, min_p, presence and frequency penalties, logprobs,
JSON response formats, a temperature above 1, tool messages, and any field strato does not
interpret, such as `tools` (strato's request and answer types carry no tool calls to translate).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from pydantic import Field

from strato.config import ModelEntry
from strato.errors import InvalidRequest
from strato.providers import Shared
from strato.providers.upstream import UpstreamClient, UpstreamOptions, read_api_key
from strato.streams import Stream
from strato.types import (
    Chunk,
    FinishReason,
    Generation,
    GenerationRequest,
    ModelInfo,
    ModelKind,
    SamplingParams,
    Usage,
)

API_VERSION = "2023-06-01"
MESSAGES_PATH = "v1/messages"
# How Anthropic says a prompt does not fit, e.g. "prompt is too long: 208598 tokens > 200000 maximum".
TOO_LONG = re.compile(r"prompt is too long|exceed context limit|context window", re.IGNORECASE)
# Stop reasons that mean the answer was cut short; the others (end_turn, stop_sequence, refusal...)
# are a finished answer.
LENGTH_STOPS = {"max_tokens", "model_context_window_exceeded"}
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class AnthropicOptions(UpstreamOptions):
    base_url: str = Field(
        "https://api.anthropic.com", description="The API root; requests go to {base_url}/v1/messages."
    )
    api_key_env: str | None = Field(
        "ANTHROPIC_API_KEY", description="Environment variable holding the API key (sent as x-api-key)."
    )
    max_tokens: int = Field(
        1024, ge=1, description="Most tokens to generate when a request sets none (Anthropic needs one)."
    )


class AnthropicProvider:
    """Serves chat and text completions from Anthropic's Messages API (see the module docstring)."""

    def __init__(self, name: str, options: AnthropicOptions) -> None:
        self.name = name
        self.options = options
        headers = {"anthropic-version": API_VERSION}
        key = read_api_key(name, options.api_key_env)
        if key:
            headers["x-api-key"] = key
        self._upstream = UpstreamClient(options.base_url, options, headers, too_long=_too_long, name=name)

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> AnthropicProvider:
        return cls(entry.name, entry.parse_options(AnthropicOptions))

    @property
    def upstream_model(self) -> str:
        return self.options.upstream_model or self.name

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            kind=ModelKind.GENERATE,
            provider="anthropic",
            source=f"{self.options.base_url} ({self.upstream_model})",
            loaded=True,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        data = await self._upstream.post_json(MESSAGES_PATH, self._body(request, stream=False))
        try:
            text = "".join(block["text"] for block in data["content"] if block.get("type") == "text")
            return Generation(
                text=text,
                finish_reason=_finish_reason(data.get("stop_reason")),
                usage=_usage(_counts(data.get("usage"))),
            )
        except (KeyError, TypeError, AttributeError):
            raise self._upstream.unexpected() from None

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        events = await self._upstream.open_events(MESSAGES_PATH, self._body(request, stream=True))
        return Stream(self._chunks(events), events)

    async def aclose(self) -> None:
        await self._upstream.aclose()

    def _body(self, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        self._refuse_unsupported(request)
        system, messages = _conversation(request)
        params = request.params
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "max_tokens": params.max_tokens or self.options.max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        # 1.0 is Anthropic's default for both; newer models refuse temperature and top_p together,
        # so only what the client changed is sent.
        if params.temperature != 1.0:
            body["temperature"] = params.temperature
        if params.top_p != 1.0:
            body["top_p"] = params.top_p
        if params.top_k:  # None: the model's default; 0: disabled, which is Anthropic's default too
            body["top_k"] = params.top_k
        if params.stop:
            body["stop_sequences"] = list(params.stop)
        if request.user:
            body["metadata"] = {"user_id": request.user}
        if stream:
            body["stream"] = True
        return body

    def _refuse_unsupported(self, request: GenerationRequest) -> None:
        params = request.params
        if params.temperature > 1:
            raise InvalidRequest(
                f"the anthropic model {self.name!r} takes a temperature from 0 to 1",
                param="temperature",
            )
        unsupported = _unsupported(params) + [k for k, v in request.passthrough.items() if _is_set(v)]
        if unsupported:
            raise InvalidRequest(
                f"parameter {unsupported[0]!r} is not supported by the anthropic model {self.name!r}",
                param=unsupported[0],
                code="unsupported_parameter",
            )

    async def _chunks(self, events: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[Chunk, None]:
        """Text deltas as they come; message_start and message_delta carry the usage (the latter's
        counts are cumulative), message_delta the stop reason, message_stop the end."""
        finish: FinishReason | None = None
        counts: dict[str, int] = {}
        stopped = False
        async with aclosing(events):
            async for event in events:
                kind = event.get("type")
                if kind == "content_block_delta":
                    delta = event.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield Chunk(text=str(delta["text"]))
                elif kind == "message_start":
                    counts.update(_counts((event.get("message") or {}).get("usage")))
                elif kind == "message_delta":
                    counts.update(_counts(event.get("usage")))
                    reason = (event.get("delta") or {}).get("stop_reason")
                    finish = _finish_reason(reason) if reason else finish
                elif kind == "error":
                    error = event.get("error") or {}
                    message = f"{error.get('message', 'unknown error')} ({error.get('type', 'error')})"
                    raise self._upstream.failed(f"failed mid-stream: {message}")
                elif kind == "message_stop":
                    stopped = True
                    break
                # ping, content_block_start and content_block_stop carry nothing strato needs
        if not stopped or finish is None:
            raise self._upstream.failed("ended the stream before finishing")
        yield Chunk(finish_reason=finish, usage=_usage(counts))


def _conversation(request: GenerationRequest) -> tuple[str, list[dict[str, str]]]:
    """The top-level system prompt and the alternating user and assistant turns."""
    if request.messages is None:
        return "", [{"role": "user", "content": request.prompt or ""}]
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for index, message in enumerate(request.messages):
        if message.role == "system":
            system.append(message.content)
        elif message.role == "tool":
            raise InvalidRequest(
                f"tool messages are not supported by anthropic models ({request.model!r})",
                param=f"messages.{index}.role",
                code="unsupported_parameter",
            )
        elif turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    if not turns:
        raise InvalidRequest(
            "an anthropic model needs at least one user or assistant message besides the system ones",
            param="messages",
        )
    return "\n\n".join(s for s in system if s), turns


def _unsupported(params: SamplingParams) -> list[str]:
    """The sampling parameters set on the request that the Messages API has no equivalent for."""
    fmt = params.response_format
    checks = {
        "seed": params.seed is not None,
        "min_p": params.min_p is not None,
        "presence_penalty": params.presence_penalty != 0,
        "frequency_penalty": params.frequency_penalty != 0,
        "logprobs": params.logprobs,
        "response_format": fmt is not None and fmt.type != "text",
    }
    return [name for name, is_set in checks.items() if is_set]


def _is_set(value: Any) -> bool:
    return value not in (None, False, 0, [], {})


def _too_long(message: str) -> bool:
    return TOO_LONG.search(message) is not None


def _finish_reason(value: Any) -> FinishReason:
    return "length" if value in LENGTH_STOPS else "stop"


def _counts(data: Any) -> dict[str, int]:
    """The token counts a usage object carries (a stream's later events omit or null some)."""
    if not isinstance(data, dict):
        return {}
    return {name: int(data[name]) for name in USAGE_FIELDS if isinstance(data.get(name), int)}


def _usage(counts: dict[str, int]) -> Usage:
    """Anthropic's `input_tokens` leaves out the tokens read from and written to the prompt cache;
    OpenAI's `prompt_tokens` counts every prompt token, of which `cached_tokens` came from cache."""
    read = counts.get("cache_read_input_tokens", 0)
    written = counts.get("cache_creation_input_tokens", 0)
    return Usage(
        prompt_tokens=counts.get("input_tokens", 0) + read + written,
        completion_tokens=counts.get("output_tokens", 0),
        cached_tokens=read,
    )
