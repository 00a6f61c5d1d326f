"""The evaluation gate a fine-tuned model passes before it becomes a candidate: base and tuned model
answer the job's held-out cases through the gateway (evaluation runs, stored like any `strato
eval run`), and the tuned model is a candidate only when the 95% bootstrap interval of its gain
over the base lies above zero. Otherwise it is rejected; either way the verdict is stored with the
model and the two runs can be compared again with `strato eval compare`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from strato.evals.compare import compare_runs
from strato.evals.datasets import DatasetStore
from strato.evals.runner import run_config, run_eval
from strato.evals.runs import RunStore
from strato.evals.scorers import build_scorer
from strato.evals.targets import GatewayTarget
from strato.evals.types import Case
from strato.tokens import approx_tokens
from strato.tune.jobs import Job
from strato.tune.registry import TunedModels

SCORER = "normalised"  # the expected answer, ignoring case, punctuation and spacing


@dataclass(frozen=True, slots=True)
class Verdict:
    stage: str  # candidate or rejected
    reason: str
    cases: int
    base: float | None  # mean score of the base on the held-out cases
    tuned: float | None
    gain: float | None
    ci_low: float | None
    ci_high: float | None
    base_run: str
    tuned_run: str
    scorer: str = SCORER

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_gate(target: GatewayTarget, runs: RunStore, job: Job, cases: Sequence[Case]) -> Verdict:
    """Evaluate `job`'s base and tuned model on `cases` (its held-out cases) and judge the gain."""
    if not cases:
        reason = "no held-out cases to evaluate on (--held-out 0)"
        return Verdict("rejected", reason, 0, None, None, None, None, None, "", "")
    scorer = build_scorer(SCORER, target)
    # Room for the longest expected answer, twice over: a base that rambles is cut, not waited for.
    longest = max(approx_tokens(str(c.expected)) for c in cases)
    params = {"temperature": 0, "max_tokens": 2 * longest + 16}
    finished = []
    for model in (job.base, job.name):
        config = run_config([SCORER], [scorer], gate=job.id, params=params)
        run = runs.create(job.dataset, job.version, model, config)
        finished.append(await run_eval(target, runs, run, cases, [scorer]))
    base_run, tuned_run = finished
    comparison = compare_runs(
        base_run, runs.results(base_run.id), tuned_run, runs.results(tuned_run.id), SCORER
    )
    low, high, gain = comparison.ci_low, comparison.ci_high, comparison.mean_diff
    passed = low is not None and low > 0
    if passed:
        reason = f"gain {gain:+.3f}, 95% interval [{low:+.3f}, {high:+.3f}] above zero"
    elif low is None:
        reason = "no case was scored for both models"
    else:
        reason = f"gain {gain:+.3f}, 95% interval [{low:+.3f}, {high:+.3f}] does not lie above zero"
    return Verdict(
        "candidate" if passed else "rejected",
        reason,
        len(comparison.cases),
        comparison.mean_a,
        comparison.mean_b,
        gain,
        low,
        high,
        base_run.id,
        tuned_run.id,
    )


async def gate_job(
    target: GatewayTarget, runs: RunStore, datasets: DatasetStore, registry: TunedModels, job: Job
) -> Verdict:
    """The gate on `job`'s held-out cases (read from its data set version), its verdict stored
    with the registered model. The store's reads and writes run on threads."""
    held = set(job.held_out)
    cases = [
        c for c in (await asyncio.to_thread(datasets.get, job.dataset, job.version))[1] if c.position in held
    ]
    verdict = await run_gate(target, runs, job, cases)
    await asyncio.to_thread(registry.judged, job.name, verdict.stage, verdict.as_dict())
    return verdict
