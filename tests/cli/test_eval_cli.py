"""`strato eval` as a user runs it: a subprocess with a config file and its own data directory, models
served by a real OpenAI-compatible upstream (answers chosen by the model name)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from strato.evals.datasets import DatasetStore
from strato.evals.runs import RunStore
from strato.evals.types import Case
from tests.support.upstream import Upstream


class Project:
    """A config file naming the upstream's models, a data directory, and the `strato` command."""

    def __init__(self, tmp: Path, upstream: Upstream) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.config = tmp / "strato.yaml"
        models = [
            upstream.model("right", "say:4"),
            upstream.model("wrong", "say:5"),
            upstream.model("slow", "sleep:0.3"),
            upstream.model("broken", "fail"),
            upstream.model("babbler", "say:Hard to say, it depends."),
        ]
        self.config.write_text(yaml.safe_dump({"models": models, "store": {"flush_interval": 0.05}}))
        self.env = {
            **os.environ,
            "STRATO_DATA_DIR": str(self.data),
            "HF_HUB_OFFLINE": "1",
            "COLUMNS": "200",
        }
        self.url = f"sqlite:///{self.data / 'strato.db'}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "strato", *args, "--config", str(self.config)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, env=self.env, timeout=300, cwd=self.tmp
        )

    def dataset(self, name: str, cases: list[Case]) -> None:
        store = DatasetStore.open(self.url)
        try:
            store.create(name, cases, source={"kind": "test"})
        finally:
            store.close()

    def runs(self) -> RunStore:
        return RunStore.open(self.url)


def arithmetic(n: int) -> list[Case]:
    return [
        Case(i, {"messages": [{"role": "user", "content": f"What is {i}+{4 - i}?"}]}, "4") for i in range(n)
    ]


@pytest.fixture
def project(tmp_path: Path, upstream: Upstream) -> Project:
    return Project(tmp_path, upstream)


def run_ids(stderr: str) -> list[str]:
    return re.findall(r"^run ([0-9a-f]{12}):", stderr, re.MULTILINE)


def summary_row(stdout: str, name: str) -> str:
    """The line of the run summary (a row per measure, a column per run) that `name` starts."""
    return next(line for line in stdout.splitlines() if line.split()[:1] == [name])


def test_run_runs_show_compare_and_replay(project: Project) -> None:
    project.dataset("arith", arithmetic(3))
    report = project.tmp / "report.html"

    ran = project.run(
        "eval", "run", "arith", "--model", "right", "--model", "wrong", "--scorer", "exact",
        "--scorer", "latency", "--report", str(report),
    )  # fmt: skip

    assert ran.returncode == 0, ran.stderr
    right, wrong = run_ids(ran.stderr)
    header = summary_row(ran.stdout, "run")  # a column per run, in the order they ran
    assert header.split()[1:] == [right, wrong]
    assert summary_row(ran.stdout, "model").split()[1:] == ["right", "wrong"]
    assert summary_row(ran.stdout, "results").split()[1:] == ["3/3", "3/3"]
    assert summary_row(ran.stdout, "exact").split()[1:] == ["1.000", "(3)", "0.000", "(3)"]
    assert f"report: {report}" in ran.stdout
    page = report.read_text()
    assert "<svg" in page and "What is 0+4?" in page

    listed = project.run("eval", "runs")
    assert listed.returncode == 0, listed.stderr
    assert right in listed.stdout and wrong in listed.stdout
    assert "arith:1" in listed.stdout and "complete" in listed.stdout

    shown = project.run("eval", "show", right[:6], "--cases")
    assert shown.returncode == 0, shown.stderr
    assert f"run {right}: right on arith:1, complete" in shown.stdout
    assert "exact=1" in shown.stdout

    gated = project.run("eval", "compare", right, wrong, "--fail-under", "0.5")
    assert gated.returncode == 1
    assert "mean difference B - A: -1.0000" in gated.stdout and "worse in B" in gated.stdout
    assert gated.stderr.startswith(f"strato: gate failed: run {wrong} scored exact 0 on average")

    improved = project.run("eval", "compare", wrong, right, "--scorer", "exact", "--max-drop", "0")
    assert improved.returncode == 0, improved.stderr
    assert "better in B" in improved.stdout and "gate passed" in improved.stdout

    # The run's own calls were traced: replay those of `right` against `wrong`.
    replayed = project.run(
        "eval", "replay", "--model", "right", "--to", "wrong", "--scorer", "exact", "--no-report"
    )
    assert replayed.returncode == 0, replayed.stderr
    baseline, candidate = run_ids(replayed.stderr)
    assert "mean difference B - A: -1.0000" in replayed.stdout
    runs = project.runs()
    try:
        assert runs.get(baseline).model == "right" and runs.get(candidate).model == "wrong"
        assert [r.output for r in runs.results(baseline)] == ["4", "4", "4"]  # as recorded, no call
        assert all(r.scores["exact"] == 0.0 for r in runs.results(candidate))
        assert runs.get(baseline).dataset == "replay"
    finally:
        runs.close()


def test_bad_input_is_one_line_and_exit_2(project: Project) -> None:
    project.dataset("arith", arithmetic(2))
    cases = {
        ("eval", "run", "nosuch", "--model", "right", "--scorer", "exact"): "no data set 'nosuch'",
        ("eval", "run", "arith:7", "--model", "right", "--scorer", "exact"): "has no version 7",
        (
            "eval",
            "run",
            "arith",
            "--model",
            "nosuch",
            "--scorer",
            "exact",
        ): "The model 'nosuch' does not exist",
        ("eval", "run", "arith", "--model", "right", "--scorer", "nosuch"): "nosuch",
        ("eval", "run", "arith", "--model", "right"): "at least one --scorer",
        ("eval", "run", "--resume", "nosuchrun"): "no evaluation run 'nosuchrun'",
        ("eval", "show", "nosuchrun"): "no evaluation run 'nosuchrun'",
    }
    for args, message in cases.items():
        result = project.run(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("strato: error: ") and message in lines[0], (
            args,
            lines,
        )
    runs = project.runs()
    try:
        assert runs.runs() == []  # nothing was started
    finally:
        runs.close()


def test_a_failing_model_completes_with_its_errors(project: Project) -> None:
    project.dataset("arith", arithmetic(2))
    ran = project.run("eval", "run", "arith", "--model", "broken", "--scorer", "exact", "--no-report")
    assert ran.returncode == 0, ran.stderr
    (run_id,) = run_ids(ran.stderr)
    assert run_id in summary_row(ran.stdout, "run")
    assert "2/2" in summary_row(ran.stdout, "results")
    assert "- (0) 2 err" in summary_row(ran.stdout, "exact")
    shown = project.run("eval", "show", run_id, "--cases")
    assert "upstream exploded" in shown.stdout


def test_a_judge_without_a_readable_verdict_gives_errors_not_scores(project: Project) -> None:
    project.dataset("arith", arithmetic(2))
    report = project.tmp / "judged.html"
    ran = project.run(
        "eval", "run", "arith", "--model", "right", "--scorer", "judge:model=babbler", "--scorer", "exact",
        "--report", str(report),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (run_id,) = run_ids(ran.stderr)
    assert run_id in summary_row(ran.stdout, "run")
    assert "- (0) 2 err" in summary_row(ran.stdout, "judge")  # the judge judged nothing; exact did
    assert "1.000 (2)" in summary_row(ran.stdout, "exact")
    page = report.read_text()
    assert "Hard to say, it depends." in page  # the judge's raw output is shown


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_keeps_what_is_done_and_resume_finishes(project: Project, stop: signal.Signals) -> None:
    project.dataset("slowly", arithmetic(6))
    command = project.command(
        "eval", "run", "slowly", "--model", "slow", "--scorer", "contains:text=echo", "--concurrency", "1",
        "--no-report",
    )  # fmt: skip
    proc = subprocess.Popen(
        command, env=project.env, cwd=project.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    runs = project.runs()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(runs.done(r.id) for r in runs.runs()):
            time.sleep(0.05)
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
        stderr = err.decode()
        assert proc.returncode == 130, (out, stderr)
        (run,) = runs.runs()
        assert run.status == "interrupted"
        kept = {(r.position, r.sample): r.created_at for r in runs.results(run.id)}
        assert 1 <= len(kept) < 6
        assert f"resume with `strato eval run --resume {run.id}`" in stderr

        resumed = project.run("eval", "run", "--resume", run.id, "--no-report")
        assert resumed.returncode == 0, resumed.stderr
        assert runs.get(run.id).status == "complete"
        results = runs.results(run.id)
        assert [r.position for r in results] == list(range(6))
        assert all(r.scores["contains"] == 1.0 for r in results)
        assert all(
            kept[(r.position, r.sample)] == r.created_at for r in results if (r.position, r.sample) in kept
        )
    finally:
        runs.close()
        if proc.poll() is None:
            proc.kill()
