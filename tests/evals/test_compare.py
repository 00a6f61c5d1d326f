"""Comparisons of runs built by hand: the bootstrap interval, dropped cases, refusals, and the gate
through the real `strato eval compare` (exit 1 when it fails, 2 for a usage error)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from strato.evals.compare import CannotCompare, bootstrap_ci, compare_runs, gate
from strato.evals.runs import Result, Run, RunStore


def make_run(store: RunStore, values: list[float | None], *, dataset: str = "qa", model: str = "m") -> Run:
    """A complete run with one `exact` value per case (None: the scorer could not judge)."""
    run = store.create(dataset, 1, model, {"scorers": ["exact"], "scorer_names": ["exact"]}, 1)
    for position, value in enumerate(values):
        store.add_result(Result(run.id, position, 0, "answer", scores={"exact": value}, latency_ms=10.0))
    store.mark(run.id, "complete")
    return store.get(run.id)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    runs = RunStore.open(f"sqlite:///{tmp_path / 'data' / 'strato.db'}")
    yield runs  # type: ignore[misc]
    runs.close()


def compare(store: RunStore, a: Run, b: Run, scorer: str | None = None):  # type: ignore[no-untyped-def]
    return compare_runs(a, store.results(a.id), b, store.results(b.id), scorer)


def test_identical_runs_differ_by_nothing(store: RunStore) -> None:
    values: list[float | None] = [float(random.Random(7).random() < 0.6) for _ in range(40)]
    a, b = make_run(store, values), make_run(store, values)
    c = compare(store, a, b)
    assert c.scorer == "exact" and len(c.cases) == 40 and c.dropped == 0
    assert c.mean_diff == 0
    assert c.ci_low is not None and c.ci_high is not None and c.ci_low <= 0 <= c.ci_high
    assert c.better == [] and c.worse == []
    assert gate(c, fail_under=0.5) is None


def test_a_clear_improvement_has_an_interval_above_zero(store: RunStore) -> None:
    rng = random.Random(1)
    a = make_run(store, [float(rng.random() < 0.3) for _ in range(60)])
    b = make_run(store, [float(rng.random() < 0.9) for _ in range(60)])
    c = compare(store, a, b)
    assert c.mean_diff is not None and c.mean_diff > 0.4
    assert c.ci_low is not None and c.ci_low > 0
    assert len(c.better) > len(c.worse)
    assert c.better[0].diff == 1.0
    # Repeatable: the same runs give the same interval.
    assert (compare(store, a, b).ci_low, compare(store, a, b).ci_high) == (c.ci_low, c.ci_high)
    # And the other way round, a clear regression.
    back = compare(store, b, a)
    assert back.ci_high is not None and back.ci_high < 0
    assert gate(back, max_drop=0.1) is not None and gate(back, max_drop=0.9) is None


def test_lower_latency_is_better(store: RunStore) -> None:
    a = store.create("qa", 1, "slow", {"scorer_names": ["latency"]}, 1)
    b = store.create("qa", 1, "fast", {"scorer_names": ["latency"]}, 1)
    for position, (slow, fast) in enumerate([(900.0, 100.0), (800.0, 850.0)]):
        store.add_result(Result(a.id, position, 0, "x", scores={"latency": slow}))
        store.add_result(Result(b.id, position, 0, "x", scores={"latency": fast}))
    c = compare(store, store.get(a.id), store.get(b.id))
    assert [d.position for d in c.better] == [0] and [d.position for d in c.worse] == [1]
    assert gate(c, max_drop=0) is None  # 375 ms faster on average
    back = compare(store, store.get(b.id), store.get(a.id))
    reason = gate(back, max_drop=100)
    assert reason is not None and "375 higher than run" in reason


def test_cases_scored_in_one_run_only_are_dropped_and_counted(store: RunStore) -> None:
    a = make_run(store, [1.0, 1.0, 0.0, 1.0])
    b = make_run(store, [1.0, None, 1.0])  # case 1: the judge could not judge; case 3: never reached
    c = compare(store, a, b)
    assert [d.position for d in c.cases] == [0, 2]
    assert c.dropped == 2 and c.failed_b == []
    assert c.mean_a == 0.5 and c.mean_b == 1.0


def test_a_candidate_that_fails_to_answer_fails_the_gate(store: RunStore) -> None:
    a = make_run(store, [1.0, 1.0, 1.0])
    b = store.create("qa", 1, "broken", {"scorer_names": ["exact"]}, 1)
    store.add_result(Result(b.id, 0, 0, "answer", scores={"exact": 1.0}))
    for position in (1, 2):
        store.add_result(
            Result(b.id, position, 0, None, error="502 upstream_error: boom", scores={"exact": None})
        )
    c = compare(store, a, store.get(b.id))
    assert c.mean_b == 1.0 and c.failed_b == [1, 2]  # a mean of 1 over the one case it answered ...
    reason = gate(c, fail_under=0.9)
    assert reason is not None and "failed to answer 2 cases" in reason  # ... does not pass the gate


def test_samples_are_averaged_per_case(store: RunStore) -> None:
    a = make_run(store, [0.0, 0.0])
    b = store.create("qa", 1, "m", {"scorer_names": ["exact"]}, 2)
    for position, sample, value in [(0, 0, 1.0), (0, 1, 0.0), (1, 0, 1.0), (1, 1, 1.0)]:
        store.add_result(Result(b.id, position, sample, "x", scores={"exact": value}))
    c = compare(store, a, store.get(b.id))
    assert [(d.position, d.b) for d in c.cases] == [(0, 0.5), (1, 1.0)]
    assert c.mean_diff == 0.75


def test_runs_over_different_data_sets_or_scorers_do_not_compare(store: RunStore) -> None:
    a, b = make_run(store, [1.0]), make_run(store, [1.0], dataset="other")
    with pytest.raises(CannotCompare, match="same data set version"):
        compare(store, a, b)
    with pytest.raises(CannotCompare, match="not in both runs"):
        compare(store, a, make_run(store, [1.0]), scorer="judge")


def test_bootstrap_of_nothing_is_nothing() -> None:
    assert bootstrap_ci([]) == (None, None)
    low, high = bootstrap_ci([0.25] * 5)
    assert low == pytest.approx(0.25) and high == pytest.approx(0.25)


def strato(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRATO_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "strato", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_fail_under_gates_through_the_cli(tmp_path: Path, store: RunStore) -> None:
    data = tmp_path / "data"
    a = make_run(store, [1.0, 0.0, 1.0, 0.0])
    b = make_run(store, [1.0, 1.0, 1.0, 0.0])  # mean 0.75

    passed = strato("eval", "compare", a.id, b.id, "--fail-under", "0.7", data_dir=data)
    assert passed.returncode == 0, passed.stderr
    assert "gate passed" in passed.stdout
    assert "+0.2500" in passed.stdout and "95% bootstrap CI" in passed.stdout

    failed = strato("eval", "compare", a.id, b.id, "--fail-under", "0.8", data_dir=data)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"strato: gate failed: run {b.id} scored exact 0.75 on average, under 0.8 (4 cases)"
    ]

    dropped = strato("eval", "compare", b.id, a.id, "--max-drop", "0.2", data_dir=data)
    assert dropped.returncode == 1 and "lower than run" in dropped.stderr

    unknown = strato("eval", "compare", a.id, "nosuchrun", data_dir=data)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "strato: error: no evaluation run 'nosuchrun' (see `strato eval runs`)"
