"""`strato eval`: run models over a data set and score them, compare two runs (a CI gate), replay
recorded traces against another model or system prompt.

Runs go through the gateway in this process (the configured models, traced and priced like served
requests) unless `--url` points at a running gateway. Every result is stored as it completes: Ctrl-C
keeps them, and `strato eval run --resume RUN_ID` carries on where the run stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.console import Console

from strato.cli.eval_session import (
    Plan,
    Session,
    evaluate,
    interruptible,
    print_and_write,
    report_of,
    usage,
)
from strato.cli.options import ConfigOption, SinceOption, dataset_ref, parse_since
from strato.errors import StratoError
from strato.evals.compare import compare_runs, gate
from strato.evals.datasets import DatasetNotFound, cases_from_traces
from strato.evals.replay import recorded_answers, trace_filter, traced_models
from strato.evals.report import RunReport, comparison_view, results_table, summary_table, write_html
from strato.evals.runner import DEFAULT_CONCURRENCY, record_answers, run_config
from strato.evals.runs import Run
from strato.evals.types import Answer, Case, DatasetVersion, Scorer
from strato.store import open_store
from strato.types import TraceQuery

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Evaluate models on data sets: run, compare, replay traces.",
    no_args_is_help=True,
)

ScorersOption = Annotated[
    list[str] | None,
    typer.Option(
        "--scorer",
        "-s",
        help="exact, contains, numeric, regex:pattern=..., judge:model=..., latency, cost ...",
    ),
]
ConcurrencyOption = Annotated[int, typer.Option(min=1, help="Cases answered at once.")]
UrlOption = Annotated[
    str | None, typer.Option(help="A running gateway (or OpenAI-compatible server) to call.")
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(envvar="STRATO_API_KEY", help="The key calls present (default in process: the master key)."),
]
ReportOption = Annotated[
    Path | None, typer.Option(help="The HTML report to write (default: ./strato-eval-RUN_ID.html).")
]
NoReportOption = Annotated[bool, typer.Option("--no-report", help="Write no HTML report.")]
TemperatureOption = Annotated[float | None, typer.Option(min=0, max=2, help="Temperature for every case.")]
MaxTokensOption = Annotated[int | None, typer.Option(min=1, help="max_tokens for every case.")]
Feedback = Literal["any", "none", "positive", "negative"]


@app.command("run")
def run(
    dataset: Annotated[
        str | None, typer.Argument(help="DATASET or DATASET:VERSION (default: its latest version).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="A model to evaluate; repeat for more.")
    ] = None,
    scorer: ScorersOption = None,
    samples: Annotated[int, typer.Option(min=1, help="Answers per case (> 1: agreement is reported).")] = 1,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    system: Annotated[str | None, typer.Option(help="A system prompt in place of the cases' own.")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    report: ReportOption = None,
    no_report: NoReportOption = False,
    resume: Annotated[
        str | None, typer.Option(help="Carry on an interrupted run (its settings stay).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Answer every case with each model, score the answers, print a summary and write an HTML report.

    One run per model; each result is stored as it completes. Ctrl-C stops (exit 130) and keeps
    what is done: `strato eval run --resume RUN_ID` finishes it. Samples after the first of a case
    use seed = (the case's seed or 0) + sample number."""
    if resume is not None:
        if dataset or model or scorer:
            usage("--resume carries on a run as it was started: give no DATASET, --model or --scorer")
    elif not dataset or not model or not scorer:
        usage("give a DATASET, at least one --model and at least one --scorer (or --resume RUN_ID)")
    params = _params(temperature, max_tokens)
    plan = Plan(samples, concurrency, limit, params, system, url, api_key, report, no_report)
    session = Session.open(config)
    if resume is not None:
        interruptible(session, lambda: _resume(session, plan, resume))
    else:
        interruptible(session, lambda: _run(session, plan, dataset or "", model or [], scorer or []))


async def _run(session: Session, plan: Plan, dataset: str, models: list[str], specs: list[str]) -> None:
    try:
        found, cases = session.cases(*dataset_ref(dataset), plan.limit)
        session.use_target(plan.url, plan.api_key)
        scorers = await session.prepare(specs, models)
        config = run_config(
            specs,
            scorers,
            samples=plan.samples,
            target=plan.target,
            params=plan.params,
            system=plan.system,
            limit=plan.limit,
        )
        reports = []
        session.pending = list(models)
        for model in models:
            session.pending.remove(model)
            run = session.runs.create(found.name, found.version, model, config, plan.samples)
            where = f"{found.name}:{found.version} ({len(cases)} cases x {plan.samples})"
            typer.echo(f"run {run.id}: {model} on {where}", err=True)
            reports.append(await evaluate(session, run, cases, scorers, plan.concurrency))
        print_and_write(reports, cases, plan, f"{found.name}:{found.version}")
    finally:
        await session.aclose()


async def _resume(session: Session, plan: Plan, run_id: str) -> None:
    """Carry on a run with the settings it was started with (a new --url or --concurrency apply)."""
    try:
        previous = session.runs.get(run_id)
        cases = session.cases_of(previous)
        recorded = previous.config.get("target")
        if recorded == "traces":
            raise StratoError(
                f"run {previous.id} is a replay's baseline: it has nothing to resume", status=400
            )
        session.use_target(plan.url or (None if recorded in (None, "in-process") else recorded), plan.api_key)
        scorers = await session.prepare(previous.config.get("scorers", []), [previous.model])
        typer.echo(f"run {previous.id}: {previous.model} on {previous.dataset}:{previous.version}", err=True)
        report = await evaluate(session, previous, cases, scorers, plan.concurrency)
        print_and_write([report], cases, plan, f"{previous.dataset}:{previous.version}")
    finally:
        await session.aclose()


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="The baseline run (id or unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="The run compared with it.")],
    scorer: Annotated[
        str | None, typer.Option(help="Scorer to compare on (default: the first both have).")
    ] = None,
    fail_under: Annotated[
        float | None, typer.Option(help="Exit 1 when B's mean over the compared cases is below this.")
    ] = None,
    max_drop: Annotated[
        float | None, typer.Option(min=0, help="Exit 1 when B's mean is lower than A's by more than this.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Per-case differences (B - A) on one scorer, their mean with a 95% bootstrap interval, and the
    cases that got better or worse. Only cases scored in both runs count. With a gate, exit 1 when
    it fails (also when B failed to answer a case A was scored on)."""
    session = Session.open(config)
    try:
        a, b = session.runs.get(run_a), session.runs.get(run_b)
        comparison = compare_runs(a, session.runs.results(a.id), b, session.runs.results(b.id), scorer)
        cases = _inputs(session, a)
    except StratoError as exc:
        usage(exc.message)
    finally:
        session.close()
    Console().print(comparison_view(comparison, cases))
    reason = gate(comparison, fail_under=fail_under, max_drop=max_drop)
    if reason is not None:
        typer.echo(f"strato: gate failed: {reason}", err=True)
        raise typer.Exit(1)
    if fail_under is not None or max_drop is not None:
        typer.echo("gate passed")


@app.command("runs")
def list_runs(
    dataset: Annotated[str | None, typer.Option(help="Only runs over this data set.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    config: ConfigOption = None,
) -> None:
    """Recent evaluation runs: data set, model, status, and each scorer's mean."""
    session = Session.open(config)
    try:
        sizes = {(v.name, v.version): v.size for v in session.datasets.versions(dataset)}
        summaries = []
        for found in session.runs.runs(dataset=dataset, limit=limit):
            size = sizes.get((found.dataset, found.version))
            limited = found.config.get("limit")
            cases = min(size, int(limited)) if size is not None and limited else size
            summaries.append(report_of(session, found, cases).summary)
    finally:
        session.close()
    if not summaries:
        typer.echo("no evaluation runs yet: start one with `strato eval run DATASET --model M --scorer S`")
        return
    Console().print(summary_table(summaries, listing=True))


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="The run id (or a unique prefix of it).")],
    cases: Annotated[bool, typer.Option("--cases", help="Also list every case's answer and scores.")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write the run's HTML report here.")] = None,
    config: ConfigOption = None,
) -> None:
    """One run: its settings, its summary, and (with --cases) each case."""
    session = Session.open(config)
    try:
        found = session.runs.get(run_id)
        all_cases = session.cases_of(found)
        shown = report_of(session, found, len(all_cases))
    except StratoError as exc:
        usage(exc.message)
    finally:
        session.close()
    console = Console()
    console.print(f"run {found.id}: {found.model} on {found.dataset}:{found.version}, {found.status}")
    settings = {k: v for k, v in found.config.items() if v not in (None, {}, []) and k != "scorer_names"}
    console.print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), highlight=False)
    console.print(summary_table([shown.summary]))
    if not shown.summary.complete:
        console.print(f"unfinished: resume with `strato eval run --resume {found.id}`")
    if cases:
        console.print(results_table(shown.results))
    if report is not None:
        write_html(report, f"strato eval: run {found.id}", [shown], all_cases)
        typer.echo(f"report: {report.resolve()}")


@app.command("replay")
def replay(
    to: Annotated[str, typer.Option("--to", help="The model to replay the traces against.")],
    scorer: ScorersOption = None,
    model: Annotated[str | None, typer.Option(help="Only traces of this model.")] = None,
    since: SinceOption = None,
    until: Annotated[str | None, typer.Option(help="Only requests before: 30m, 24h, 7d or a date.")] = None,
    feedback: Annotated[
        str | None, typer.Option(help="Only traces with feedback: any, none, positive or negative.")
    ] = None,
    anomaly: Annotated[str | None, typer.Option(help="Only traces with this anomaly (or `any`).")] = None,
    search: Annotated[
        str | None, typer.Option(help="Only traces whose request or answer has these words.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many traces, newest first.")
    ] = 50,
    system: Annotated[str | None, typer.Option(help="A new system prompt (replaces the traced one).")] = None,
    dataset: Annotated[
        str, typer.Option(help="The data set the traces are saved as (a new version).")
    ] = "replay",
    no_scrub: Annotated[bool, typer.Option("--no-scrub", help="Keep PII and secrets in the cases.")] = False,
    temperature: TemperatureOption = None,
    max_tokens: MaxTokensOption = None,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    report: ReportOption = None,
    no_report: NoReportOption = False,
    config: ConfigOption = None,
) -> None:
    """Re-run recorded requests against another model (or system prompt) and compare.

    The matching traces become a data set; a baseline run records their answers as they were (no
    calls), a second run asks `--to`; the comparison is on the first scorer."""
    if not scorer:
        usage("give at least one --scorer")
    if feedback not in (None, "any", "none", "positive", "negative"):
        usage("--feedback must be any, none, positive or negative")
    query = TraceQuery(
        limit=limit,
        model=model,
        since=parse_since(since),
        until=parse_since(until),
        feedback=cast(Feedback | None, feedback),
        anomaly=anomaly,
        search=search,
    )
    plan = Plan(
        1, concurrency, None, _params(temperature, max_tokens), system, url, api_key, report, no_report
    )
    session = Session.open(config, reader=True)
    interruptible(session, lambda: _replay(session, plan, query, to, scorer or [], dataset, not no_scrub))


async def _replay(
    session: Session, plan: Plan, query: TraceQuery, to: str, specs: list[str], name: str, scrub: bool
) -> None:
    store = open_store(session.settings.store.resolved_url())
    try:
        made = cases_from_traces(store, query, scrub=scrub)
        if not made:
            usage("no recorded answer matches those filters (see `strato traces list`)")
        session.use_target(plan.url, plan.api_key)
        scorers = await session.prepare(specs, [to])
        version = session.datasets.create(
            name, made, source={"kind": "traces", "filter": trace_filter(query)}
        )
        cases = session.datasets.get(name, version.version)[1]
        answers = recorded_answers(store, cases, scrub=scrub)
        before = await _baseline(session, version, specs, scorers, cases, answers)
        config = run_config(specs, scorers, target=plan.target, params=plan.params, system=plan.system)
        candidate = session.runs.create(name, version.version, to, config)
        typer.echo(f"run {candidate.id}: {to} on {name}:{version.version}", err=True)
        after = await evaluate(session, candidate, cases, scorers, plan.concurrency)
        print_and_write([before, after], cases, plan, f"replay of {len(cases)} traces against {to}")
        comparison = compare_runs(before.run, before.results, after.run, after.results)
        Console().print(comparison_view(comparison, {c.position: c for c in cases}))
    finally:
        store.close()
        await session.aclose()


async def _baseline(
    session: Session,
    dataset: DatasetVersion,
    specs: list[str],
    scorers: list[Scorer],
    cases: list[Case],
    answers: dict[int, Answer],
) -> RunReport:
    """The traces' own answers as a run (no calls), scored like the candidate's."""
    config = run_config(specs, scorers, target="traces")
    run = session.runs.create(dataset.name, dataset.version, traced_models(cases), config)
    typer.echo(f"run {run.id}: the answers recorded in {len(answers)} traces", err=True)
    return report_of(session, await record_answers(session.runs, run, cases, scorers, answers), len(cases))


def _inputs(session: Session, run: Run) -> dict[int, Case]:
    """A run's cases by position, to show their inputs; none when the data set is gone."""
    try:
        return {c.position: c for c in session.cases_of(run)}
    except DatasetNotFound:
        return {}


def _params(temperature: float | None, max_tokens: int | None) -> dict[str, float | int]:
    """The run's overrides of every case's sampling parameters."""
    given = {"temperature": temperature, "max_tokens": max_tokens}
    return {k: v for k, v in given.items() if v is not None}
