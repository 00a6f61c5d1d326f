"""The shapes of the OpenAI-compatible responses, as the OpenAPI document shows them.

The routes build their bodies as plain dicts (`wire.py`), which is fast; these models say what those
dicts hold, field for field. Every field is always sent (nullable where it may be null), and no other
field is: `tests/server/test_openapi.py` fuzzes the server against them, so a body that drifts from its
model fails there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    """A response object: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Shape):
    message: str = Field(description="What went wrong, for a person to read.")
    type: str = Field(description="The error's class, e.g. `invalid_request_error`, `rate_limit_error`.")
    param: str | None = Field(description="The request field at fault (dotted path), when one is.")
    code: str | None = Field(description="A stable machine-readable code, e.g. `model_not_found`.")


class ErrorBody(Shape):
    """OpenAI's error body; every failure leaves strato in this shape."""

    error: ErrorDetail


class PromptTokensDetails(Shape):
    cached_tokens: int = Field(ge=0, description="Prompt tokens served from a prefix cache.")


class Usage(Shape):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
    prompt_tokens_details: PromptTokensDetails


class TopLogprob(Shape):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(Shape):
    content: list[TokenLogprob]
    refusal: None


class AssistantMessage(Shape):
    role: Literal["assistant"]
    content: str


class ChatChoice(Shape):
    index: int = Field(ge=0)
    message: AssistantMessage
    logprobs: ChatLogprobs | None
    finish_reason: str | None = Field(description="`stop`, `length`, ...; null if the model said none.")


class ChatCompletion(Shape):
    """`POST /v1/chat/completions` without `stream`."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(Shape):
    """The first chunk has the role (and empty content); later ones the text they add, if any."""

    role: Literal["assistant"] = "assistant"
    content: str = ""


class ChatChunkChoice(Shape):
    index: int = Field(ge=0)
    delta: ChatDelta
    logprobs: ChatLogprobs | None
    finish_reason: str | None


class ChatCompletionChunk(Shape):
    """One event of a streamed chat completion. With `stream_options.include_usage`, the last
    chunk before `[DONE]` has no choices and carries `usage`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(Shape):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(Shape):
    index: int = Field(ge=0)
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: str | None


class TextCompletion(Shape):
    """`POST /v1/completions` (each streamed event has this shape too; the usage event has no
    choices and carries `usage`)."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class Embedding(Shape):
    object: Literal["embedding"]
    index: int = Field(ge=0)
    embedding: list[float] | str = Field(
        description="The vector; with `encoding_format: base64`, its little-endian float32 bytes in base64."
    )


class EmbeddingUsage(Shape):
    prompt_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class EmbeddingList(Shape):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Model(Shape):
    """A configured model. `kind`, `provider`, `loaded`, `context_length` and `memory_bytes` are
    strato's additions to OpenAI's model object."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: Literal["strato"]
    kind: Literal["generate", "embed"]
    provider: str
    loaded: bool
    context_length: int | None
    memory_bytes: int | None


class ModelList(Shape):
    object: Literal["list"]
    data: list[Model]


class DeletedModel(Shape):
    id: str
    object: Literal["model"]
    deleted: Literal[True]


class Health(Shape):
    status: Literal["ok"]


def streamed(event: type[BaseModel], description: str) -> dict[str, Any]:
    """The `text/event-stream` content of a 200 with `stream: true`: one JSON object per `data:`
    line, then `data: [DONE]`; a failure after the stream began is sent as an error event."""
    return {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": description,
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "string",
                        "description": f"A JSON {event.__name__} or ErrorBody, or `[DONE]`.",
                        "contentMediaType": "application/json",
                    },
                    "event": {"type": "string", "enum": ["message"]},
                },
            }
        }
    }
