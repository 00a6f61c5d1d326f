"""Scorers for answers that may say the right thing in other words: the cosine similarity of their
embeddings, and ROUGE-L's longest common subsequence of words."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rouge_score import rouge_scorer  # type: ignore[import-untyped]

from strato.config import default_models
from strato.errors import first_line
from strato.evals.scorers import Options, references, unanswered
from strato.evals.types import Answer, Case, Judgement, Target


def default_embedder() -> str:
    """The embedding model every strato has unless configured otherwise (all-MiniLM-L6-v2)."""
    return next(m.name for m in default_models() if m.provider == "sentence_transformers")


class EmbeddingSimilarity:
    """Cosine similarity between the answer and the expected text (the best of several), embedded by
    `model=` through the target (default: the embedded MiniLM); values below 0 count as 0."""

    name = "embedding"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        self.model = options.text("model") or default_embedder()
        options.done()
        self.target = target

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer)) is not None:
            return skip
        refs = references(case.expected)
        try:
            vectors = await self.target.embed(self.model, [answer.text or "", *refs])
        except Exception as exc:  # the embedding model failed: say so, never guess a value
            return Judgement(None, error=f"embedding: model {self.model} failed: {first_line(exc)}")
        if len(vectors) != len(refs) + 1:
            return Judgement(None, error=f"embedding: model {self.model} returned {len(vectors)} vectors")
        similarities = [cosine(vectors[0], v) for v in vectors[1:]]
        if any(s is None for s in similarities):
            return Judgement(None, error="embedding: an empty or zero embedding has no direction")
        best = max(s for s in similarities if s is not None)
        return Judgement(min(1.0, max(0.0, best)), {"cosine": round(best, 6), "model": self.model})


def cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) != len(b) or not a:
        return None
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if norm == 0 or not math.isfinite(norm):
        return None
    value = sum(x * y for x, y in zip(a, b, strict=True)) / norm
    return value if math.isfinite(value) else None


class RougeL:
    """ROUGE-L F-measure (Lin 2004, Google's rouge-score) against the expected text, the best of
    several; `stem=true` applies the Porter stemmer. Its tokenizer keeps only a-z and 0-9: text in
    other scripts scores 0."""

    name = "rouge_l"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        stem = options.flag("stem", False)
        options.done()
        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer)) is not None:
            return skip
        scores = [self.scorer.score(ref, answer.text or "")["rougeL"] for ref in references(case.expected)]
        best = max(scores, key=lambda s: s.fmeasure)
        detail = {"precision": round(best.precision, 6), "recall": round(best.recall, 6)}
        return Judgement(float(best.fmeasure), detail)
