"""Any OpenAI-compatible server (vLLM, llama-server, Ollama, a hosted vendor) as a strato model."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from pydantic import Field

from strato.config import ModelEntry
from strato.providers import Shared
from strato.providers.upstream import UpstreamClient, UpstreamOptions, read_api_key
from strato.streams import Stream
from strato.types import (
    Chunk,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    Generation,
    GenerationRequest,
    ModelInfo,
    ModelKind,
    Usage,
)
from strato.wire.requests import request_body
from strato.wire.responses import (
    MalformedResponse,
    read_chunk,
    read_finish_reason,
    read_generation_body,
    read_usage,
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
        path, body = request_body(request, self.upstream_model)
        data = await self._upstream.post_json(path, body)
        try:
            return read_generation_body(data, chat=request.messages is not None)
        except MalformedResponse:
            raise self._upstream.unexpected() from None

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Chunk, None]:
        path, body = request_body(request, self.upstream_model, stream=True)
        events = await self._upstream.open_events(path, body)
        return Stream(self._chunks(events, chat=request.messages is not None), events)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body = {"model": self.upstream_model, "input": list(request.inputs)}
        if request.user:
            body["user"] = request.user
        data = await self._upstream.post_json("embeddings", body)
        try:
            rows = sorted(data["data"], key=lambda row: row["index"])
            return Embeddings(vectors=[row["embedding"] for row in rows], usage=read_usage(data.get("usage")))
        except (KeyError, TypeError):
            raise self._upstream.unexpected() from None

    async def aclose(self) -> None:
        await self._upstream.aclose()

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
                    usage = read_usage(event["usage"])
                for choice in event.get("choices") or []:
                    text, logprobs = read_chunk(choice, chat=chat)
                    if choice.get("finish_reason"):
                        finish = read_finish_reason(choice["finish_reason"])
                    if text or logprobs:
                        yield Chunk(text=text or "", logprobs=logprobs)
        if finish is None:
            raise self._upstream.failed("ended the stream before finishing")
        yield Chunk(finish_reason=finish, usage=usage or Usage())
