"""Core domain types, independent of any wire format.

The OpenAI wire schemas live in `strato.wire`; they convert to and from these types, so the
gateway and providers never see HTTP or JSON shapes.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length"]
EnergySource = Literal["rapl", "estimate"]  # measured from RAPL counters, or CPU time x watts per core


class Endpoint(StrEnum):
    """Which kind of work a request asks for; also the label used in traces and metrics."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"


class ModelKind(StrEnum):
    """What a configured model can serve."""

    GENERATE = "generate"  # chat and text completions
    EMBED = "embed"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """`text` (anything), `json_object` (any JSON object) or `json_schema` (JSON valid for `schema`)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None  # None: as many as the context allows
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_k: int | None = None  # None: the model's configured default; 0 disables
    min_p: float | None = None  # None: the model's configured default; 0 disables
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives reported per token (needs logprobs)
    response_format: ResponseFormat | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A chat request (`messages`) or a text completion request (`prompt`), never both."""

    model: str
    params: SamplingParams
    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    user: str | None = None
    # Fields strato does not interpret, forwarded as-is to remote OpenAI-compatible upstreams.
    passthrough: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.CHAT if self.messages is not None else Endpoint.COMPLETION


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from a cached prefix instead of being computed

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its log probability under the model and the most likely alternatives."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Compute:
    """What a local engine spent on one request (or in all): its share of the engine's busy time,
    of the process's CPU time while the engine worked, and of the energy, `source` saying whether
    the energy was measured (RAPL) or estimated."""

    busy_seconds: float = 0.0
    cpu_seconds: float = 0.0
    energy_joules: float = 0.0
    source: EnergySource = "estimate"


@dataclass(frozen=True, slots=True)
class Generation:
    """A finished, non-streamed answer."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    logprobs: tuple[TokenLogprob, ...] | None = None  # when the request asked for them
    compute: Compute | None = None  # a local engine's answer: what it spent


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a streamed answer. The last chunk carries `finish_reason` and `usage`."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    logprobs: tuple[TokenLogprob, ...] = ()  # the tokens behind `text`, when the request asked
    compute: Compute | None = None  # on a local engine's last chunk: what the request spent


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    usage: Usage


@dataclass(frozen=True, slots=True)
class Price:
    """What a deployment costs, in USD per million tokens."""

    input: float = 0.0
    output: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000

    def overridden(self, input_cost: float | None, output_cost: float | None) -> Price:
        """This price with the costs a configuration sets in its place (None: keep this one's)."""
        return Price(
            self.input if input_cost is None else input_cost,
            self.output if output_cost is None else output_cost,
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What `/v1/models` and `strato models` show about one configured model."""

    name: str
    kind: ModelKind
    provider: str
    source: str
    loaded: bool
    context_length: int | None = None
    memory_bytes: int | None = None  # estimated memory the loaded model holds (weights + KV cache)


@dataclass(frozen=True, slots=True)
class EngineState:
    """One loaded local model, as the engine reports it at scrape time."""

    model: str
    slots: int
    busy_slots: int
    queued: int
    memory_bytes: int
    drafted_tokens: int = 0  # prompt-lookup tokens evaluated ahead since the model loaded
    accepted_tokens: int = 0  # of those, the ones the sampler agreed with
    loaded_seconds: float = 0.0  # wall time since the model loaded
    spent: Compute = field(default_factory=Compute)  # busy, CPU and energy since the model loaded


@dataclass(slots=True)
class Span:
    """One stage of a request (auth, a guard, the cache, a provider attempt, ...), in the shape of an
    OpenTelemetry span: ids in OpenTelemetry's hex form (the trace id is the request's id), times in
    seconds since the epoch, attributes named by its GenAI semantic conventions where one exists."""

    span_id: str  # 16 hex characters
    name: str  # e.g. "chat smollm2", "strato.auth", "strato.guard.pii"
    started_at: float
    ended_at: float
    parent_id: str | None = None  # None: the request's root span
    status: Literal["ok", "error", "unset"] = "unset"
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Trace:
    """One request as strato saw it: what was asked, who served it, what came back, how long it took."""

    id: str
    started_at: float  # seconds since the epoch, UTC
    endpoint: Endpoint
    requested_model: str | None
    request: dict[str, Any]
    ended_at: float | None = None
    api_key: str | None = None  # the key's id once keys exist; never the secret itself
    user: str | None = None
    deployment: str | None = None
    provider: str | None = None
    stream: bool = False
    completion: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    ttft_ms: float | None = None
    latency_ms: float | None = None
    status: int = 200
    error: str | None = None
    error_code: str | None = None
    finish_reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # each provider call (routing)
    route: dict[str, Any] | None = None  # a router's decision: target, reason, score, decision_ms
    cache: str | None = None  # "exact" or "semantic" when the answer came from the cache
    cost: float | None = None  # USD, from the price table of the deployment that answered
    anomalies: list[str] = field(default_factory=list)  # e.g. ["EMPTY_ANSWER", "REFUSAL"]
    spans: list[Span] = field(default_factory=list)  # the request's stages; stored with the trace
    compute: Compute | None = None  # a local engine's spend; stored as the request span's attributes


@dataclass(frozen=True, slots=True)
class Score:
    """A judgement of one trace's answer: from a user's feedback, an evaluation or a judge model."""

    trace_id: str
    name: str  # what was judged, e.g. "quality", "correct", "feedback"
    value: float
    source: str = "api"  # who judged: "api", "eval", "judge", ...
    comment: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    label: str | None = None  # a category the judge chose, e.g. "wrong_answer", "helpful"
    correction: str | None = None  # the answer it should have been (feedback)


@dataclass(frozen=True, slots=True)
class Spend:
    """Requests, tokens and cost summed over traces that share one value of a grouping field."""

    group: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float  # USD; traces without a known price count as 0
    unpriced: int  # answered requests whose deployment has no price


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Which traces to list; every filter set must hold."""

    limit: int = 50
    model: str | None = None
    errors_only: bool = False
    since: float | None = None
    until: float | None = None  # started before this instant
    api_key: str | None = None  # the key's id
    user: str | None = None
    anomaly: str | None = None  # a kind such as "EMPTY_ANSWER", or "any"
    feedback: Literal["any", "none", "positive", "negative"] | None = None  # negative: a score < 0.5
    search: str | None = None  # words that must occur in the request or the answer (any case)
