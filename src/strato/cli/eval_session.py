"""What the `strato eval` verbs share: the stores and target they open, running one evaluation with
a progress bar, the summary and the report, and how errors and Ctrl-C end the command."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from strato.cli.admin import reader_settings
from strato.config import ConfigError, Settings, load_settings
from strato.errors import StratoError
from strato.evals.datasets import DatasetStore
from strato.evals.report import RunReport, summary_table, write_html
from strato.evals.runner import run_eval, summarize
from strato.evals.runs import Result, Run, RunStore
from strato.evals.scorers import build_scorer
from strato.evals.targets import GatewayTarget, HTTPTarget
from strato.evals.types import Case, DatasetVersion, Scorer
from strato.runtime import build_runtime
from strato.store.database import open_database


def usage(message: str) -> NoReturn:
    """A usage error (an unknown data set, run or model, a bad option): one line, exit 2."""
    typer.echo(f"strato: error: {message}", err=True)
    raise typer.Exit(2)


@dataclass(frozen=True)
class Plan:
    """How `run` or `replay` was asked to run (the options besides what to evaluate)."""

    samples: int
    concurrency: int
    limit: int | None
    params: dict[str, Any]
    system: str | None
    url: str | None
    api_key: str | None
    report: Path | None
    no_report: bool

    @property
    def target(self) -> str:
        """What a run's config records as its target."""
        return self.url or "in-process"


@dataclass
class Session:
    """What a verb has open: the database's stores and, once chosen, the target."""

    settings: Settings
    runs: RunStore
    datasets: DatasetStore
    target: GatewayTarget | HTTPTarget | None = None
    current: Run | None = None  # the run in progress: what Ctrl-C tells the user to resume
    pending: list[str] = field(default_factory=list)  # models not started yet

    @classmethod
    def open(cls, config: Path | None, *, reader: bool = False) -> Session:
        """`reader`: the verb reads every key's traces, so it needs the admin key once one is set."""
        try:
            settings = reader_settings(config) if reader else load_settings(config)
            engine = open_database(settings.store.resolved_url())
            return cls(settings, RunStore(engine), DatasetStore(engine))
        except ConfigError as exc:
            usage(str(exc))

    def use_target(self, url: str | None, api_key: str | None) -> GatewayTarget | HTTPTarget:
        if url:
            self.target = HTTPTarget(url, api_key)
        else:  # in process; with auth on, the calls present this key (or the master key)
            key = api_key or self.settings.server.master_key
            runtime = build_runtime(self.settings, self.runs.engine)  # the database this session has open
            self.target = GatewayTarget(runtime.gateway, key, owner=runtime)
        return self.target

    async def prepare(self, specs: Sequence[str], models: Sequence[str]) -> list[Scorer]:
        """The scorers of `specs` on the target, once every model is known to it."""
        assert self.target is not None
        scorers = [build_scorer(spec, self.target) for spec in specs]
        for model in models:
            await self.target.check_model(model)
        return scorers

    def cases(self, name: str, version: int | None, limit: int | None) -> tuple[DatasetVersion, list[Case]]:
        found, cases = self.datasets.get(name, version)
        return found, cases[:limit] if limit else cases

    def cases_of(self, run: Run) -> list[Case]:
        """The cases a run is over (the first `limit` of its data set version)."""
        return self.cases(run.dataset, run.version, run.config.get("limit"))[1]

    def close(self) -> None:
        self.runs.close()
        self.datasets.close()

    async def aclose(self) -> None:
        try:
            if self.target is not None:
                await self.target.aclose()
        finally:
            self.close()


async def evaluate(
    session: Session, run: Run, cases: list[Case], scorers: Sequence[Scorer], concurrency: int
) -> RunReport:
    """One run to completion, with a progress bar on stderr."""
    assert session.target is not None
    session.current = run
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    timing = (TimeElapsedColumn(), TimeRemainingColumn())
    failed = 0
    with Progress(*columns, *timing, console=Console(stderr=True)) as progress:
        done = len(session.runs.done(run.id))
        task = progress.add_task(run.model, total=len(cases) * run.samples, completed=done)

        def advance(result: Result) -> None:
            nonlocal failed
            failed += result.error is not None
            note = f" [red]({failed} failed)[/red]" if failed else ""
            progress.update(task, advance=1, description=f"{run.model}{note}")

        finished = await run_eval(
            session.target, session.runs, run, cases, scorers, concurrency=concurrency, on_result=advance
        )
    session.current = None
    return report_of(session, finished, len(cases))


def report_of(session: Session, run: Run, cases: int | None) -> RunReport:
    results = session.runs.results(run.id)
    return RunReport(run, results, summarize(run, results, cases))


def print_and_write(reports: list[RunReport], cases: list[Case], plan: Plan, title: str) -> None:
    """The summary table, and the HTML report (default: ./strato-eval-<first run id>.html)."""
    Console().print(summary_table([r.summary for r in reports]))
    if plan.no_report:
        return
    path = plan.report or Path(f"strato-eval-{reports[0].run.id}.html")
    write_html(path, f"strato eval: {title}", reports, cases)
    typer.echo(f"report: {path.resolve()}")


def interruptible(session: Session, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main()`; a `StratoError` (unknown data set, model, scorer ...) exits 2 in one line, and
    Ctrl-C exits 130 once the run in progress is marked interrupted, saying how to resume it.
    SIGTERM (a CI job cancelled, `kill`) is taken as Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        _interrupted(session)
    except StratoError as exc:
        usage(exc.message)
    except ConfigError as exc:
        usage(str(exc))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _as_ctrl_c(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _interrupted(session: Session) -> NoReturn:
    run = session.current
    if run is None:
        typer.echo("strato: interrupted", err=True)
        raise typer.Exit(130)
    runs = RunStore.open(session.settings.store.resolved_url())
    try:
        stored = len(runs.done(run.id))
    finally:
        runs.close()
    typer.echo(
        f"strato: interrupted: run {run.id} ({run.model}) keeps its {stored} stored results; "
        f"resume with `strato eval run --resume {run.id}`",
        err=True,
    )
    if session.pending:
        typer.echo(f"not started: {', '.join(session.pending)}", err=True)
    raise typer.Exit(130)
