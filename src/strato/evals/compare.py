"""Comparing two runs over the same data set version on one scorer: per case the mean over its
samples in each run, the differences B - A, their mean with a 95% bootstrap confidence interval,
and the cases that got better or worse.

Only cases both runs scored are compared (an answer the scorer could not judge, or a case a run did
not reach, drops the case; the comparison says how many). The bootstrap resamples those cases with
replacement 10,000 times from a fixed seed, so the same two runs always give the same interval.

Better and worse follow the scorer: higher is better, except for the measures `latency` and `cost`.

The gate, for CI: `fail_under` fails when run B's mean over the compared cases is below it (for
any scorer: it is meant for quality scores); `max_drop` fails when B is worse than A on average by
more than it (mean of B - A < -max_drop; for latency and cost, > max_drop). Either
gate also fails when B failed to answer (an error, not a low score) a case A was scored on, since
dropping such a case would flatter B; and with no case compared, since nothing shows B is good enough.
A case only the scorer could not judge (a judge's unparseable output) is dropped, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from strato.errors import StratoError
from strato.evals.runner import scorer_names
from strato.evals.runs import Result, Run

LOWER_IS_BETTER = frozenset({"latency", "cost"})  # the built-in measures
RESAMPLES = 10_000
SEED = 0  # fixed: a comparison is repeatable
LEVEL = 0.95


class CannotCompare(StratoError):
    status = 400
    type = "invalid_request_error"
    code = "cannot_compare"


@dataclass(frozen=True, slots=True)
class CaseDelta:
    position: int
    a: float  # mean over the case's scored samples in run A
    b: float

    @property
    def diff(self) -> float:
        return self.b - self.a


@dataclass(frozen=True, slots=True)
class Comparison:
    run_a: Run
    run_b: Run
    scorer: str
    cases: list[CaseDelta]  # the compared cases, by position
    dropped: int  # cases of either run not scored in both
    failed_b: list[int]  # cases A scored where every answer of B was an error (B could not answer)
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def direction(self) -> int:
        """1 when a higher value is better, -1 when a lower one is (latency, cost)."""
        return -1 if self.scorer in LOWER_IS_BETTER else 1

    @property
    def better(self) -> list[CaseDelta]:
        """Cases where B did better than A, most improved first."""
        gains = [c for c in self.cases if c.diff * self.direction > 0]
        return sorted(gains, key=lambda c: (-abs(c.diff), c.position))

    @property
    def worse(self) -> list[CaseDelta]:
        losses = [c for c in self.cases if c.diff * self.direction < 0]
        return sorted(losses, key=lambda c: (-abs(c.diff), c.position))


def compare_runs(
    run_a: Run,
    results_a: Sequence[Result],
    run_b: Run,
    results_b: Sequence[Result],
    scorer: str | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Raises `CannotCompare` when the runs are over different data sets (or versions) or share
    no scorer, or `scorer` is not one both have."""
    if (run_a.dataset, run_a.version) != (run_b.dataset, run_b.version):
        raise CannotCompare(
            f"run {run_a.id} is over {run_a.dataset}:{run_a.version} and run {run_b.id} over "
            f"{run_b.dataset}:{run_b.version}; only runs over the same data set version compare"
        )
    names_b = scorer_names(run_b, results_b)
    shared = [n for n in scorer_names(run_a, results_a) if n in names_b]
    if scorer is None:
        if not shared:
            raise CannotCompare(f"runs {run_a.id} and {run_b.id} have no scorer in common")
        scorer = shared[0]
    elif scorer not in shared:
        raise CannotCompare(
            f"scorer {scorer!r} is not in both runs; they share: {', '.join(shared) or 'none'}"
        )
    per_a, per_b = case_means(results_a, scorer), case_means(results_b, scorer)
    both = sorted(per_a.keys() & per_b.keys())
    cases = [CaseDelta(p, per_a[p], per_b[p]) for p in both]
    everyone = {r.position for r in (*results_a, *results_b)}
    errors_b = _failed_cases(results_b)
    low, high = bootstrap_ci([c.diff for c in cases], resamples=resamples, seed=seed)
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        scorer=scorer,
        cases=cases,
        dropped=len(everyone) - len(both),
        failed_b=sorted(p for p in per_a.keys() - per_b.keys() if p in errors_b),
        mean_a=_mean([c.a for c in cases]),
        mean_b=_mean([c.b for c in cases]),
        mean_diff=_mean([c.diff for c in cases]),
        ci_low=low,
        ci_high=high,
    )


def case_means(results: Sequence[Result], scorer: str) -> dict[int, float]:
    """Per case, the mean of the scorer's values over its samples (cases with none are left out)."""
    values: dict[int, list[float]] = {}
    for r in results:
        value = r.scores.get(scorer)
        if value is not None:
            values.setdefault(r.position, []).append(value)
    return {p: sum(v) / len(v) for p, v in values.items()}


def bootstrap_ci(
    diffs: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL
) -> tuple[float | None, float | None]:
    """The percentile bootstrap interval of the mean of `diffs` (None, None for no values)."""
    if not diffs:
        return None, None
    data = np.asarray(diffs, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // len(data))  # resamples per batch: bounded memory for large data sets
    for start in range(0, resamples, step):
        stop = min(start + step, resamples)
        picks = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def gate(
    comparison: Comparison, *, fail_under: float | None = None, max_drop: float | None = None
) -> str | None:
    """Why the comparison fails the gate, in one line, or None when it passes (or no gate is set)."""
    if fail_under is None and max_drop is None:
        return None
    c = comparison
    a, b, n = c.run_a.id, c.run_b.id, len(c.cases)
    if c.mean_b is None or c.mean_a is None or c.mean_diff is None:
        return f"no case was scored {c.scorer!r} in both runs ({c.dropped} dropped)"
    if c.failed_b:
        shown = ", ".join(str(p) for p in c.failed_b[:5]) + (", ..." if len(c.failed_b) > 5 else "")
        return f"run {b} failed to answer {len(c.failed_b)} cases that run {a} scored ({shown})"
    if fail_under is not None and c.mean_b < fail_under:
        return f"run {b} scored {c.scorer} {c.mean_b:.4g} on average, under {fail_under:g} ({n} cases)"
    if max_drop is not None and c.mean_diff * c.direction < -max_drop:
        how = "lower" if c.direction > 0 else "higher"
        return (
            f"run {b} scored {c.scorer} {abs(c.mean_diff):.4g} {how} than run {a} on average, "
            f"more than the {max_drop:g} allowed ({n} cases)"
        )
    return None


def _failed_cases(results: Sequence[Result]) -> set[int]:
    """Cases whose every answer in a run is an error."""
    answered = {r.position for r in results if r.error is None}
    return {r.position for r in results if r.position not in answered}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
