"""OpenAI wire format: request schemas that convert to core types, and response bodies built from them.

This module is the only place that knows OpenAI's JSON shapes; the gateway sees core types only.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from strato.errors import InvalidRequest
from strato.types import (
    EmbeddingRequest,
    Embeddings,
    Generation,
    GenerationRequest,
    Message,
    ModelInfo,
    ResponseFormat,
    SamplingParams,
    TokenLogprob,
    Usage,
)

# Parameters clients commonly send that do not change what a model generates here.
HARMLESS_EXTRAS = {"store", "metadata", "service_tier", "parallel_tool_calls", "modalities", "prediction"}
# Deepest nesting accepted in a free-form value (a JSON schema, a parameter passed on to the
# upstream): far beyond any real schema (OpenAI's structured outputs allow 10 levels), well short of
# what recursive code downstream (hashing a cache key, encoding the trace) can walk.
MAX_NESTING = 64
MAX_EMBEDDING_INPUTS = 2048  # inputs in one embeddings request, as OpenAI's API allows


def _whole(value: Any) -> Any:
    """JSON does not tell 16 from 16.0, nor does JSON Schema's `integer`: a float with nothing after
    the point is that integer (strict mode still refuses "16", true and 16.5)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WHOLE = BeforeValidator(_whole)  # after the bounds: `Annotated[int, Field(ge=1), WHOLE]`


def nesting(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar: 0), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING:  # deeper is refused anyway: stop counting there
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_nesting(value: Any, param: str) -> None:
    depth = nesting(value)
    if depth > MAX_NESTING:
        raise InvalidRequest(
            f"Invalid value for '{param}': it nests lists and objects more than {MAX_NESTING} levels deep.",
            param=param,
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = False


class ContentPart(BaseModel):
    # Other part types parse, so that `to_core` can say they are not supported; the schema shows
    # the one that is.
    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
            "required": ["type", "text"],
        },
    )
    type: str
    text: str | None = None


class WireMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def to_core(self, index: int) -> Message:
        role = {"developer": "system", "function": "tool"}.get(self.role, self.role)
        if isinstance(self.content, list):
            if any(part.type != "text" or part.text is None for part in self.content):
                raise InvalidRequest(
                    "only text content parts are supported", param=f"messages.{index}.content"
                )
            content = "".join(part.text or "" for part in self.content)
        else:
            content = self.content or ""
        return Message(role=role, content=content, name=self.name)  # type: ignore[arg-type]


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class WireResponseFormat(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={  # `to_core`: type json_schema needs its json_schema object
            "if": {"properties": {"type": {"const": "json_schema"}}},
            "then": {"required": ["json_schema"], "properties": {"json_schema": {"type": "object"}}},
        },
    )
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def to_core(self) -> ResponseFormat:
        if self.type != "json_schema":
            return ResponseFormat(type=self.type)
        if self.json_schema is None:
            raise InvalidRequest(
                "response_format of type json_schema needs a `json_schema` object",
                param="response_format.json_schema",
            )
        check_nesting(self.json_schema.schema_, "response_format.json_schema.schema")
        return ResponseFormat(type="json_schema", schema=self.json_schema.schema_, name=self.json_schema.name)


class SamplingFields(BaseModel):
    """The fields chat and text completions share."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1, max_length=256)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    # vLLM's and llama.cpp's extension; -1 or 0 disables
    top_k: Annotated[int, Field(ge=-1), WHOLE] | None = None
    min_p: float | None = Field(None, ge=0, le=1)  # likewise
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    max_tokens: Annotated[int, Field(ge=1), WHOLE] | None = None
    # Checked in `sampling`, so that a list too long is told so (and not that it is not a string).
    stop: Annotated[
        str | list[str] | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "maxItems": 4},
                    {"type": "null"},
                ]
            }
        ),
    ] = None
    seed: Annotated[int, WHOLE] | None = None
    n: Annotated[int, Field(ge=1, le=1), WHOLE] | None = Field(None, description="Only 1 is supported.")
    user: str | None = Field(None, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: WireResponseFormat | None = None

    def sampling(self, max_tokens: int | None, logprobs: bool, top_logprobs: int) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stop) > 4:
            raise InvalidRequest("at most 4 stop sequences are allowed", param="stop")
        return SamplingParams(
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            max_tokens=max_tokens,
            stop=tuple(stop),
            seed=self.seed,
            top_k=None if self.top_k is None else max(self.top_k, 0),
            min_p=self.min_p,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            response_format=self.response_format.to_core() if self.response_format else None,
        )

    def passthrough(self) -> dict[str, Any]:
        extras = {k: v for k, v in (self.model_extra or {}).items() if k not in HARMLESS_EXTRAS}
        for name, value in extras.items():
            check_nesting(value, name)
        return extras

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingFields):
    model_config = ConfigDict(
        json_schema_extra={  # `to_core`: top_logprobs needs logprobs
            "if": {
                "required": ["top_logprobs"],
                "properties": {"top_logprobs": {"type": "integer", "minimum": 1}},
            },
            "then": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}},
        }
    )
    messages: list[WireMessage] = Field(min_length=1)
    max_completion_tokens: Annotated[int, Field(ge=1), WHOLE] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20), WHOLE] | None = None

    def to_core(self) -> GenerationRequest:
        if self.top_logprobs and not self.logprobs:
            raise InvalidRequest("top_logprobs needs logprobs set to true", param="top_logprobs")
        return GenerationRequest(
            model=self.model,
            messages=tuple(m.to_core(i) for i, m in enumerate(self.messages)),
            params=self.sampling(
                self.max_completion_tokens or self.max_tokens, bool(self.logprobs), self.top_logprobs or 0
            ),
            user=self.user,
            passthrough=self.passthrough(),
        )


class CompletionRequest(SamplingFields):
    # What `to_core` accepts: one prompt, no echo, no suffix.
    prompt: Annotated[
        str | list[str],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1},
                ]
            }
        ),
    ]
    # OpenAI's default for the legacy completions endpoint.
    max_tokens: Annotated[int, Field(ge=1), WHOLE] | None = 16
    echo: bool = Field(False, json_schema_extra={"enum": [False]}, description="Not supported.")
    suffix: Annotated[
        str | None, WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 0}, {"type": "null"}]})
    ] = Field(None, description="Not supported.")
    logprobs: Annotated[int, Field(ge=0, le=5), WHOLE] | None = None

    def to_core(self) -> GenerationRequest:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise InvalidRequest("send one prompt per request", param="prompt")
            prompt = prompt[0]
        if self.echo:
            raise InvalidRequest("echo is not supported", param="echo")
        if self.suffix:
            raise InvalidRequest("suffix is not supported", param="suffix")
        return GenerationRequest(
            model=self.model,
            prompt=prompt,
            params=self.sampling(self.max_tokens, self.logprobs is not None, self.logprobs or 0),
            user=self.user,
            passthrough=self.passthrough(),
        )


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(min_length=1, max_length=256)
    # Token arrays parse, so that `to_core` can say they are not supported; the schema shows what is.
    input: Annotated[
        str | list[str] | list[int] | list[list[int]],
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "minItems": 1,
                        "maxItems": MAX_EMBEDDING_INPUTS,
                    },
                ]
            }
        ),
    ]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int | None, WithJsonSchema({"type": "null"})] = Field(
        None, description="Not supported: models answer in their own size."
    )
    user: str | None = Field(None, max_length=256)

    def to_core(self) -> EmbeddingRequest:
        inputs = [self.input] if isinstance(self.input, str) else self.input
        if not inputs:
            raise InvalidRequest("input must not be empty", param="input")
        if len(inputs) > MAX_EMBEDDING_INPUTS:
            raise InvalidRequest(
                f"input has {len(inputs):,} items; at most {MAX_EMBEDDING_INPUTS} are accepted in one "
                "request: send them in several",
                param="input",
            )
        if not all(isinstance(item, str) for item in inputs):
            raise InvalidRequest("token-array inputs are not supported; send text", param="input")
        if any(item == "" for item in inputs):
            raise InvalidRequest("input must not contain empty strings", param="input")
        if self.dimensions is not None:
            raise InvalidRequest(
                "dimensions is not supported; models answer in their own size", param="dimensions"
            )
        return EmbeddingRequest(model=self.model, inputs=tuple(str(i) for i in inputs), user=self.user)


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
