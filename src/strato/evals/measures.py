"""Scorers that report what an answer took rather than how good it is: latency and cost."""

from __future__ import annotations

from strato.evals.scorers import Options
from strato.evals.types import Answer, Case, Judgement, Target


class Latency:
    """The answer's latency in milliseconds; a failed call's too (how long it took to fail)."""

    name = "latency"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        Options(self.name, params).done()

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if answer.latency_ms is None:
            return Judgement(None, {"failed": answer.error} if answer.error else {}, "latency: not measured")
        return Judgement(float(answer.latency_ms), {"failed": answer.error} if answer.error else {})


class Cost:
    """What the answer cost in USD, as the gateway priced it."""

    name = "cost"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        Options(self.name, params).done()

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if answer.error is not None:
            return Judgement(None, error=answer.error)
        if answer.cost is None:
            return Judgement(None, error="cost: unknown (the model has no price)")
        return Judgement(float(answer.cost))
