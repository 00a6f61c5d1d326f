"""The evaluation layer's types and seams: cases of a data set, a model's answer to one, and the
`Scorer` and `Target` protocols that scorers and the runner meet at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Case:
    """One row of a data set. `input` is `{"messages": [{"role", "content"}, ...]}` or
    `{"prompt": str}`, optionally with `"params"` (temperature, max_tokens, response_format, ...).
    `expected` is the reference answer: a string, a number, or any JSON value."""

    position: int  # 0-based place in its data set version
    input: dict[str, Any]
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str | None = None  # the trace it was made from, if any


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    name: str
    version: int  # 1, 2, ...; a version never changes once written
    created_at: float
    size: int
    source: dict[str, Any] = field(default_factory=dict)  # how it was made: file, trace filter, ...
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What a model returned for one case (or why it returned nothing)."""

    text: str | None
    latency_ms: float | None = None
    cost: float | None = None  # USD, as the gateway priced it
    prompt_tokens: int = 0
    completion_tokens: int = 0
    trace_id: str | None = None  # the gateway's trace of the call
    error: str | None = None  # e.g. "429 rate_limited: ..."; text is None then


@dataclass(frozen=True, slots=True)
class Judgement:
    """A scorer's verdict on one answer. `value` is None only when the scorer could not judge, and
    then `error` says why (a judge's unparseable output, an invalid regex ...); never a silent NaN."""

    value: float | None
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. the judge's raw output, the number found
    error: str | None = None


class Target(Protocol):
    """Where cases are sent: the gateway in this process, or a running gateway over HTTP."""

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        """Answer one case's input with `model`. Errors become `Answer(text=None, error=...)`."""
        ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Embeddings of `texts` from an embedding model (for similarity scorers)."""
        ...


class Scorer(Protocol):
    """Judges one answer against its case. Built-ins and plugins (entry point group
    `strato.scorers`) are built from a spec such as `regex:pattern=^\\d+$` by `build_scorer`."""

    name: str  # the column this scorer's values appear under, e.g. "exact", "judge"

    async def score(self, case: Case, answer: Answer) -> Judgement: ...
