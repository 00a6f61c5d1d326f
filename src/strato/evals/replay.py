"""Replaying recorded traffic: the answers the traces of a data set's cases recorded, as a baseline
run to compare a new model or system prompt with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strato.evals.scrub import Scrubber
from strato.evals.types import Answer, Case
from strato.guards.redact import Placeholders
from strato.store import Store
from strato.types import TraceQuery


def recorded_answers(store: Store, cases: Sequence[Case], *, scrub: bool = True) -> dict[int, Answer]:
    """Per case made from a trace, the answer that trace recorded, with its latency, cost and tokens.
    The answer is the case's expected one unless feedback corrected it; then it is the trace's own
    text (scrubbed like the case, when `scrub`)."""
    scrubber = Scrubber() if scrub else None
    answers = {}
    for case in cases:
        trace = store.trace(case.trace_id) if case.trace_id else None
        if trace is None:
            continue
        corrected = case.metadata.get("expected_from") == "correction"
        text = trace.completion if corrected else case.expected
        if corrected and scrubber is not None and text:
            text = scrubber.scrub(text, Placeholders())
        answers[case.position] = Answer(
            None if text is None else str(text),
            latency_ms=trace.latency_ms,
            cost=trace.cost,
            prompt_tokens=trace.prompt_tokens,
            completion_tokens=trace.completion_tokens,
            trace_id=trace.id,
        )
    return answers


def traced_models(cases: Sequence[Case]) -> str:
    """The model name(s) the cases' traces asked for: the baseline run's model."""
    names = sorted({str(c.metadata["model"]) for c in cases if c.metadata.get("model")})
    return ",".join(names) or "traces"


def trace_filter(query: TraceQuery) -> dict[str, Any]:
    """The trace filter a replay data set was made with (kept as its `source`)."""
    fields = ("model", "since", "until", "feedback", "anomaly", "search", "limit")
    return {k: v for k in fields if (v := getattr(query, k)) is not None}
