"""Any OpenAI-compatible server (vLLM, llama-server, Ollama, a hosted vendor) as a strato model."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from pydantic import Field

from strato.config import ModelEntry
from strato.providers import Shared
from strato.providers.upstream import UpstreamClient, UpstreamOptions, read_api_key
from strato.types import (
    Chunk,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    Generation,
    GenerationRequest,
    ModelInfo,
    ModelKind,
    SamplingParams,
    Usage,
)


class RemoteOptions(UpstreamOptions):
    base_url: str = Field(description="The upstream's OpenAI API root, e.g. http://127.0.0.1:8080/v1.")
    kind: ModelKind = Field(ModelKind.GENERATE, description="`generate` or `embed`.")


class OpenAICompatibleProvider:
    """Forwards requests to an OpenAI-compatible upstream and maps its failures to clear errors."""

    def __init__(self, name: str, options: RemoteOptions) -> None:
        self.name = name
        self.options = options
        key = read_api_key(name, options.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._upstream = UpstreamClient(options.base_url, options, headers, name=name)

    @classmethod
    def from_entry(cls, entry: ModelEntry, shared: Shared) -> OpenAICompatibleProvider:
        options = entry.parse_options(RemoteOptions)
        return cls(entry.name, options)

    @property
    def upstream_model(self) -> str:
        return self.options.upstream_model or self.name

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            kind=self.options.kind,
            provider="openai",
            source=f"{self.options.base_url} ({self.upstream_model})",
            loaded=True,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        path, body = self._body(request, stream=False)
        data = await self._upstream.post_json(path, body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if request.messages is not None else choice["text"]
            return Generation(
                text=text or "",
                finish_reason=_finish_reason(choice.get("finish_reason")),
                usage=_usage(data.get("usage")),
            )
        except (KeyError, IndexError, TypeError):
            raise self._upstream.unexpected() from None

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        path, body = self._body(request, stream=True)
        events = await self._upstream.open_events(path, body)
        return self._chunks(events, chat=request.messages is not None)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body = {"model": self.upstream_model, "input": list(request.inputs)}
        if request.user:
            body["user"] = request.user
        data = await self._upstream.post_json("embeddings", body)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            return Embeddings(vectors=[row["embedding"] for row in rows], usage=_usage(data.get("usage")))
        except (KeyError, TypeError):
            raise self._upstream.unexpected() from None

    async def aclose(self) -> None:
        await self._upstream.aclose()

    def _body(self, request: GenerationRequest, *, stream: bool) -> tuple[str, dict[str, Any]]:
        params = request.params
        body: dict[str, Any] = dict(request.passthrough)
        body.update(model=self.upstream_model, temperature=params.temperature, top_p=params.top_p)
        if params.max_tokens is not None:
            body["max_tokens"] = params.max_tokens
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        body.update(_optional_params(params, chat=request.messages is not None))
        if request.user:
            body["user"] = request.user
        if stream:
            # Always ask for usage so the trace has token counts; the caller only sees it if it asked.
            body.update(stream=True, stream_options={"include_usage": True})
        if request.messages is not None:
            body["messages"] = [
                {"role": m.role, "content": m.content} | ({"name": m.name} if m.name else {})
                for m in request.messages
            ]
            return "chat/completions", body
        body["prompt"] = request.prompt
        return "completions", body

    async def _chunks(
        self, events: AsyncGenerator[dict[str, Any], None], *, chat: bool
    ) -> AsyncGenerator[Chunk, None]:
        finish: FinishReason | None = None
        usage: Usage | None = None
        async with aclosing(events):
            async for event in events:
                if "error" in event:
                    message = (event["error"] or {}).get("message", "unknown error")
                    raise self._upstream.failed(f"failed mid-stream: {message}")
                if event.get("usage"):
                    usage = _usage(event["usage"])
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                    if choice.get("finish_reason"):
                        finish = _finish_reason(choice["finish_reason"])
                    if text:
                        yield Chunk(text=text)
        if finish is None:
            raise self._upstream.failed("ended the stream before finishing")
        yield Chunk(finish_reason=finish, usage=usage or Usage())


def _optional_params(params: SamplingParams, *, chat: bool) -> dict[str, Any]:
    """Sampling fields strato interprets that the upstream should see only when they are set."""
    body: dict[str, Any] = {}
    if params.top_k is not None:
        body["top_k"] = params.top_k  # vLLM, llama-server and Ollama's OpenAI APIs accept these two
    if params.min_p is not None:
        body["min_p"] = params.min_p
    if params.presence_penalty:
        body["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        body["frequency_penalty"] = params.frequency_penalty
    if params.logprobs:
        if chat:
            body.update(logprobs=True, top_logprobs=params.top_logprobs)
        else:
            body["logprobs"] = params.top_logprobs
    fmt = params.response_format
    if fmt is not None:
        if fmt.type == "json_schema":
            schema: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        else:
            body["response_format"] = {"type": fmt.type}
    return body


def _finish_reason(value: Any) -> FinishReason:
    return "length" if value == "length" else "stop"


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )
