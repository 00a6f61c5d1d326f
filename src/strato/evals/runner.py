"""Running an evaluation: every case of a data set, `samples` times, through a target, scored by
every scorer, each result stored as it completes; and the summary of a run.

Samples: sample 0 sends the case as it is (with the run's overrides); sample k > 0 sends it with
`seed = (the request's seed or 0) + k`, at the request's own temperature. So each sample is
reproducible, and agreement measures how consistent the model is at the temperature it is asked at
(at temperature 0 every sample agrees by construction).

Resume: running a run again skips the (position, sample) pairs it already stored, failed answers
included (their error is the result). Cancelling (Ctrl-C) keeps what was stored and marks the run
"interrupted"; the runner never prints, the caller tells the user how to resume.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from strato.errors import StratoError
from strato.evals.runs import Result, Run, RunStore
from strato.evals.types import Answer, Case, Judgement, Scorer, Target

DEFAULT_CONCURRENCY = 4


class DuplicateScorer(StratoError):
    status = 400
    type = "invalid_request_error"
    code = "duplicate_scorer"


def run_config(
    specs: Sequence[str],
    scorers: Sequence[Scorer],
    *,
    samples: int = 1,
    target: str = "in-process",
    params: dict[str, Any] | None = None,
    system: str | None = None,
    limit: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A run's `config`: everything needed to resume it or to know what its numbers mean."""
    names = [s.name for s in scorers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DuplicateScorer(f"two scorers report as {repeated[0]!r}; give each its own name")
    config = {"scorers": list(specs), "scorer_names": names, "samples": samples, "target": target}
    config.update({"params": params or {}, "system": system, "limit": limit, **extra})
    return config


def prepare_input(
    case_input: dict[str, Any],
    *,
    params: dict[str, Any] | None = None,
    system: str | None = None,
    sample: int = 0,
) -> dict[str, Any]:
    """What is sent for one sample of a case: its params with the run's `params` over them, a new
    seed for samples after the first, and `system` in place of its system messages (a prompt case
    becomes a chat: the system message, then the prompt as the user's message)."""
    prepared = dict(case_input)
    merged = {**(case_input.get("params") or {}), **(params or {})}
    if sample > 0:
        merged["seed"] = int(merged.get("seed") or 0) + sample
    if merged:
        prepared["params"] = merged
    if system is not None:
        if "messages" in prepared:
            rest = [
                m for m in prepared["messages"] if not (isinstance(m, dict) and m.get("role") == "system")
            ]
        else:
            rest = [{"role": "user", "content": prepared.pop("prompt", "")}]
        prepared["messages"] = [{"role": "system", "content": system}, *rest]
    return prepared


async def run_eval(
    target: Target,
    store: RunStore,
    run: Run,
    cases: Sequence[Case],
    scorers: Sequence[Scorer],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[Result], None] | None = None,
) -> Run:
    """Answer and score every (case, sample) of `run` not stored yet, `concurrency` at a time, and
    mark the run complete. Cancelled (Ctrl-C), it marks the run interrupted and re-raises."""
    done = await asyncio.to_thread(store.done, run.id)
    todo = [(c, s) for c in cases for s in range(run.samples) if (c.position, s) not in done]
    if not todo and run.status == "complete":
        return run
    jobs, workers = iter(todo), max(1, min(concurrency, len(todo)))
    if run.status != "running":
        await asyncio.to_thread(store.mark, run.id, "running")

    async def work() -> None:
        for case, sample in jobs:  # one iterator shared by the workers: each job is taken once
            result = await evaluate(target, run, case, sample, scorers)
            await asyncio.to_thread(store.add_result, result)
            if on_result is not None:
                on_result(result)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(work())
    except BaseException:
        store.mark(run.id, "interrupted")  # not in a thread: the loop may be going away
        raise
    await asyncio.to_thread(store.mark, run.id, "complete")
    return await asyncio.to_thread(store.get, run.id)


async def record_answers(
    store: RunStore, run: Run, cases: Sequence[Case], scorers: Sequence[Scorer], answers: dict[int, Answer]
) -> Run:
    """Store answers given rather than asked for (sample 0 of each case in `answers`), scored like
    any other, and mark the run complete: a replay's baseline, the answers its traces recorded."""
    for case in cases:
        if case.position in answers:
            answer = answers[case.position]
            judgements = await asyncio.gather(*(judge(scorer, case, answer) for scorer in scorers))
            store.add_result(result_of(run.id, case.position, 0, answer, scorers, judgements))
    store.mark(run.id, "complete")
    return store.get(run.id)


async def evaluate(target: Target, run: Run, case: Case, sample: int, scorers: Sequence[Scorer]) -> Result:
    """One sample of one case: the answer, and every scorer's judgement of it."""
    sent = prepare_input(
        case.input, params=run.config.get("params"), system=run.config.get("system"), sample=sample
    )
    try:
        answer = await target.complete(run.model, sent)
    except Exception as exc:  # a target should not raise; one from a plugin still must not stop the run
        answer = Answer(None, error=f"500 target_error: {type(exc).__name__}: {exc}")
    judgements = await asyncio.gather(*(judge(scorer, case, answer) for scorer in scorers))
    return result_of(run.id, case.position, sample, answer, scorers, judgements)


def result_of(
    run_id: str,
    position: int,
    sample: int,
    answer: Answer,
    scorers: Sequence[Scorer],
    judgements: Sequence[Judgement],
) -> Result:
    details: dict[str, dict[str, Any]] = {}
    for scorer, j in zip(scorers, judgements, strict=True):
        detail = {**j.detail, **({"error": j.error} if j.error else {})}
        if detail:
            details[scorer.name] = detail
    return Result(
        run_id=run_id,
        position=position,
        sample=sample,
        output=answer.text,
        error=answer.error,
        scores={s.name: j.value for s, j in zip(scorers, judgements, strict=True)},
        details=details,
        latency_ms=answer.latency_ms,
        cost=answer.cost,
        trace_id=answer.trace_id,
    )


async def judge(scorer: Scorer, case: Case, answer: Answer) -> Judgement:
    """A scorer's judgement; one that raises, or returns no finite number, judged nothing."""
    try:
        judgement = await scorer.score(case, answer)
    except Exception as exc:
        return Judgement(None, error=f"{type(exc).__name__}: {exc}")
    value = judgement.value
    if value is not None and not math.isfinite(value):
        return Judgement(None, judgement.detail, judgement.error or f"the scorer returned {value}")
    if value is None and judgement.error is None:
        return Judgement(None, judgement.detail, "the scorer gave no value")
    return Judgement(None if value is None else float(value), judgement.detail, judgement.error)


# --- summary --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScorerSummary:
    name: str
    mean: float | None  # None when nothing was scored: shown as "-", never NaN
    scored: int  # results with a value
    errors: int  # results the scorer could not judge
    spread: float | None = None  # samples > 1: mean over cases of (highest - lowest value)


@dataclass(frozen=True, slots=True)
class Summary:
    run: Run
    results: int  # stored case-samples
    expected: int | None  # cases x samples, when the number of cases is known
    failed: int  # answers that are errors
    scorers: list[ScorerSummary]
    latency_p50: float | None  # ms, over answers that are not errors
    latency_p95: float | None
    cost: float | None  # USD, sum over priced answers; None when none was priced
    priced: int
    agreement: float | None  # samples > 1: mean over cases of the share of the most common answer
    case_agreement: dict[int, float]  # position -> that share

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.results >= self.expected


def summarize(run: Run, results: Sequence[Result], cases: int | None = None) -> Summary:
    """Per scorer: mean, counts and (samples > 1) spread; latency percentiles; total cost; agreement."""
    answered = [r for r in results if r.error is None]
    latencies = [r.latency_ms for r in answered if r.latency_ms is not None]
    costs = [r.cost for r in results if r.cost is not None]
    grouped = by_case(results)
    several = {p: rs for p, rs in grouped.items() if len(rs) > 1}
    case_agreement = {p: agreement(r.output for r in rs) for p, rs in several.items()}
    return Summary(
        run=run,
        results=len(results),
        expected=None if cases is None else cases * run.samples,
        failed=len(results) - len(answered),
        scorers=[_scorer_summary(name, results, several) for name in scorer_names(run, results)],
        latency_p50=_percentile(latencies, 50),
        latency_p95=_percentile(latencies, 95),
        cost=sum(costs) if costs else None,
        priced=len(costs),
        agreement=sum(case_agreement.values()) / len(case_agreement) if case_agreement else None,
        case_agreement=case_agreement,
    )


def scorer_names(run: Run, results: Sequence[Result] = ()) -> list[str]:
    """The run's scorers in the order they were given, then any other name its results hold."""
    names = list(run.config.get("scorer_names", []))
    for r in results:
        names += [n for n in r.scores if n not in names]
    return names


def agreement(outputs: Iterator[str | None] | Sequence[str | None]) -> float:
    """The share of samples whose normalised output equals the most common one (errors agree with
    each other only)."""
    counts = Counter(normalise(o) for o in outputs)
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else 1.0


def normalise(text: str | None) -> str | None:
    """Case, runs of white space and trailing full stops do not make two answers differ."""
    if text is None:
        return None
    return " ".join(text.casefold().split()).rstrip(".!?").strip()


def _scorer_summary(name: str, results: Sequence[Result], several: dict[int, list[Result]]) -> ScorerSummary:
    values = [v for r in results if name in r.scores and (v := r.scores[name]) is not None]
    errors = sum(1 for r in results if name in r.scores and r.scores[name] is None)
    ranges = []
    for rs in several.values():
        case_values = [v for r in rs if (v := r.scores.get(name)) is not None]
        if len(case_values) > 1:
            ranges.append(max(case_values) - min(case_values))
    return ScorerSummary(
        name=name,
        mean=sum(values) / len(values) if values else None,
        scored=len(values),
        errors=errors,
        spread=sum(ranges) / len(ranges) if ranges else None,
    )


def by_case(results: Sequence[Result]) -> dict[int, list[Result]]:
    """A run's results grouped by case position (samples in stored order)."""
    grouped: dict[int, list[Result]] = {}
    for r in results:
        grouped.setdefault(r.position, []).append(r)
    return grouped


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None
