"""OpenAI's request bodies, both ways: schemas that read a body into core types (`to_core`), and
`request_body`, which writes a core request as the body an OpenAI-compatible server takes.

The server reads clients' bodies with these schemas, evaluations read their cases with them, the
remote provider writes upstream bodies with `request_body`, and the trace keeps what
`request_record` writes: one reading and one writing of the format, used by all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from strato.config import describe_validation_error
from strato.errors import InvalidRequest
from strato.types import (
    EmbeddingRequest,
    GenerationRequest,
    Message,
    ResponseFormat,
    SamplingParams,
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


def read_generation(body: dict[str, Any]) -> GenerationRequest:
    """A chat body (with `messages`) or a text completion body (with `prompt`) as a core request.
    Raises `InvalidRequest` naming the field at fault."""
    schema: type[ChatCompletionRequest | CompletionRequest]
    schema = ChatCompletionRequest if "messages" in body else CompletionRequest
    try:
        parsed = schema.model_validate(body)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        raise InvalidRequest(describe_validation_error(exc), param=where or None) from None
    return parsed.to_core()


def request_body(
    request: GenerationRequest, model: str, *, stream: bool = False
) -> tuple[str, dict[str, Any]]:
    """The path (`chat/completions` or `completions`, relative to the API root) and the OpenAI body
    for `request`, sent as `model`. Parameters a client passed through go first, so strato's own
    fields win; optional ones are written only when set. A stream always asks for usage, so the
    trace has token counts (the client sees it only if it asked)."""
    params, chat = request.params, request.messages is not None
    body: dict[str, Any] = dict(request.passthrough)
    body.update(model=model, temperature=params.temperature, top_p=params.top_p)
    body.update(_sampling_fields(params, chat=chat))
    if request.user:
        body["user"] = request.user
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    if request.messages is not None:
        body["messages"] = [
            {"role": m.role, "content": m.content} | ({"name": m.name} if m.name else {})
            for m in request.messages
        ]
        return "chat/completions", body
    body["prompt"] = request.prompt
    return "completions", body


def request_record(request: GenerationRequest) -> dict[str, Any]:
    """What a trace keeps of a request: its OpenAI body without the model and the user, which the
    trace has fields of its own for."""
    body = request_body(request, request.model)[1]
    del body["model"]
    body.pop("user", None)
    return body


def _sampling_fields(params: SamplingParams, *, chat: bool) -> dict[str, Any]:
    """The sampling fields that are set (`stop` empty, penalties 0 and no logprobs are unset)."""
    optional: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "stop": list(params.stop) or None,
        "seed": params.seed,
        "top_k": params.top_k,  # vLLM, llama-server and Ollama's OpenAI APIs accept these two
        "min_p": params.min_p,
        "presence_penalty": params.presence_penalty or None,
        "frequency_penalty": params.frequency_penalty or None,
    }
    body = {k: v for k, v in optional.items() if v is not None}
    if params.logprobs:
        if chat:
            body.update(logprobs=True, top_logprobs=params.top_logprobs)
        else:
            body["logprobs"] = params.top_logprobs
    fmt = params.response_format
    if fmt is not None:
        body["response_format"] = {"type": fmt.type}
        if fmt.type == "json_schema":
            schema: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
            body["response_format"]["json_schema"] = schema
    return body
