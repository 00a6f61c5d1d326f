"""Scored traces for training a learned router, from real prompts in ../shared/datasets (read in
place, never copied): GSM8K maths questions the cheap model got wrong (score 0) and CLINC150
assistant requests it answered well (score 1), as an evaluation run would have logged them."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from strato.store import Store
from strato.types import Endpoint, Score, Trace

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def _require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/datasets)")
    return path


@cache
def gsm8k() -> tuple[str, ...]:
    """GSM8K test questions, shuffled with a fixed seed."""
    lines = _require(DATASETS / "quality/gsm8k_test.jsonl").read_text().splitlines()
    questions = [json.loads(line)["question"] for line in lines]
    random.Random(0).shuffle(questions)
    return tuple(questions)


@cache
def clinc(split: str = "train") -> tuple[str, ...]:
    """CLINC150 requests of one split, shuffled with a fixed seed."""
    data = json.loads(_require(DATASETS / "analytics/clinc150_data_full.json").read_text())
    texts = [text for text, _intent in data[split]]
    random.Random(0).shuffle(texts)
    return tuple(texts)


@cache
def mt_bench() -> tuple[tuple[str, str], ...]:
    """MT-Bench first turns with their category."""
    lines = _require(DATASETS / "quality/mt_bench_questions.jsonl").read_text().splitlines()
    return tuple((row["category"], row["turns"][0]) for row in map(json.loads, lines))


def answered(
    model: str,
    text: str,
    *,
    route: dict[str, object] | None = None,
    requested: str | None = None,
    started_at: float | None = None,
    tokens: tuple[int, int] = (40, 120),
    cost: float | None = None,
) -> Trace:
    return Trace(
        id=uuid.uuid4().hex,
        started_at=time.time() if started_at is None else started_at,
        endpoint=Endpoint.CHAT,
        requested_model=requested or model,
        request={"messages": [{"role": "user", "content": text}]},
        deployment=model,
        provider="openai",
        completion="…",
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        route=route,
        cost=cost,
    )


def write_scored(
    store: Store,
    hard: Sequence[str],
    easy: Sequence[str],
    *,
    cheap: str = "small",
    strong: str = "big",
    compared: int = 0,
) -> None:
    """The cheap model answered every prompt: `hard` ones scored 0, `easy` ones 1. For the first
    `compared` of each, the strong model answered too: better on the hard ones, equal on the easy."""
    traces: list[Trace] = []
    scores: list[Score] = []
    for value, texts in ((0.0, hard), (1.0, easy)):
        for i, text in enumerate(texts):
            trace = answered(cheap, text)
            traces.append(trace)
            scores.append(Score(trace.id, "quality", value, source="eval"))
            if i < compared:
                other = answered(strong, text)
                traces.append(other)
                scores.append(Score(other.id, "quality", 1.0, source="eval"))
    store.record(traces)
    store.add_scores(scores)
