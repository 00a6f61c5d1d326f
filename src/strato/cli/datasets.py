"""`strato datasets`: evaluation data sets, imported from files or made from recorded traces,
versioned in the store's database, exported again."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table

from strato.cli.admin import reader_settings
from strato.cli.options import ConfigOption, SinceOption, parse_since
from strato.config import load_settings
from strato.evals.datasets import (
    DatasetError,
    DatasetStore,
    NoValidRows,
    cases_from_traces,
    check_name,
    export_file,
    load_file,
)
from strato.evals.references import attach_references
from strato.evals.scrub import Scrubber
from strato.evals.types import Case, DatasetVersion
from strato.store.sql import SQLStore
from strato.types import TraceQuery

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Evaluation data sets: import, make from traces, list, show, export.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, one object a line.")]
VersionOption = Annotated[int | None, typer.Option("--version", "-v", min=1, help="Default: the latest.")]
Feedback = Literal["any", "none", "positive", "negative"]


def _refuse(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2 (as for a usage error)."""
    typer.echo(f"strato: error: {message}", err=True)
    raise typer.Exit(2)


def _open(config: ConfigOption) -> DatasetStore:
    return DatasetStore.open(load_settings(config).store.resolved_url())


@app.command("list")
def list_datasets(
    name: Annotated[str | None, typer.Argument(help="Only this data set's versions.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Data sets and their versions, with their size and where they came from."""
    store = _open(config)
    try:
        found = store.versions(name)
    finally:
        store.close()
    if as_json:
        for version in found:
            typer.echo(json.dumps(_version_dict(version), ensure_ascii=False))
        return
    if not found:
        typer.echo(
            "no data sets yet: strato datasets import FILE --name NAME, or strato datasets from-traces"
        )
        return
    table = Table(
        Column("name", no_wrap=True),
        Column("version", justify="right"),
        Column("cases", justify="right"),
        Column("created", no_wrap=True),
        Column("source", overflow="fold", min_width=16, max_width=50),
        Column("description", overflow="fold", max_width=40),
        box=box.SIMPLE_HEAD,
    )
    for v in found:
        created = _time(v.created_at)[:-3]  # to the minute
        table.add_row(v.name, str(v.version), str(v.size), created, _source(v.source), v.description)
    Console().print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The data set's name.")],
    version: VersionOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="How many cases to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cases as JSONL.")] = False,
    config: ConfigOption = None,
) -> None:
    """A version's facts and its first cases."""
    found, cases = _get(name, version, config)
    shown = cases[:limit]
    if as_json:
        for case in shown:
            typer.echo(json.dumps(_case_dict(case), ensure_ascii=False))
        return
    console = Console()
    facts = Table.grid(padding=(0, 2))
    for key, value in _version_dict(found).items():
        facts.add_row(f"[bold]{key}[/bold]", "-" if value in (None, {}) else _plain(value))
    console.print(facts)
    if not shown:
        return
    table = Table(
        Column("#", justify="right"),
        Column("input", overflow="fold", ratio=3),
        Column("expected", overflow="fold", ratio=2),
        Column("metadata", overflow="fold", ratio=1),
        box=box.SIMPLE_HEAD,
    )
    for case in shown:
        table.add_row(
            str(case.position),
            _preview(_input_text(case.input), 300),
            _preview("" if case.expected is None else _plain(case.expected), 200),
            _preview(json.dumps(case.metadata, ensure_ascii=False) if case.metadata else "", 120),
        )
    console.print(table)
    if len(cases) > len(shown):
        console.print(f"{len(shown)} of {len(cases)} cases shown; --limit shows more, --json prints them")


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="A .jsonl (or .json, one object a line) or .csv file.")],
    name: Annotated[str, typer.Option("--name", help="The data set to add a version to.")],
    description: Annotated[str | None, typer.Option(help="What the data set is for.")] = None,
    references: Annotated[
        Path | None,
        typer.Option(
            help="A .jsonl of reference answers joined by question_id or id (e.g. MT-Bench's GPT-4 "
            "answers): each matching case expects its answer."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Load a file's rows as a new version of a data set. Bad rows are reported by line number on
    stderr and skipped; the rest are stored."""
    _checked_name(name)
    try:
        cases, errors = load_file(file)
    except NoValidRows as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        _refuse(exc.message)
    for error in errors:
        typer.echo(str(error), err=True)
    source: dict[str, Any] = {
        "kind": "file",
        "file": str(file),
        "format": file.suffix.lower().lstrip("."),
        "rows": len(cases),
    }
    if errors:
        source["bad_rows"] = len(errors)
    if references is not None:
        cases, matched, bad = attach_references(cases, references)
        for error in bad:
            typer.echo(f"{references}: {error}", err=True)
        source["references"] = {"file": str(references), "matched": matched}
        typer.echo(f"{matched} of {len(cases)} cases have a reference answer from {references}")
    store = _open(config)
    try:
        version = store.create(name, cases, source=source, description=description)
    finally:
        store.close()
    skipped = f"; {len(errors)} bad rows skipped (listed above)" if errors else ""
    typer.echo(f"loaded {len(cases)} rows from {file} into {name} version {version.version}{skipped}")


@app.command("from-traces")
def from_traces(
    name: Annotated[str, typer.Option("--name", help="The data set to add a version to.")],
    model: Annotated[str | None, typer.Option(help="Only requests to this model.")] = None,
    feedback: Annotated[
        Feedback | None, typer.Option(help="Only requests with feedback: negative, positive, any or none.")
    ] = None,
    anomaly: Annotated[
        str | None, typer.Option(help="Only answers with this anomaly (e.g. EMPTY_ANSWER), or any.")
    ] = None,
    since: SinceOption = None,
    until: Annotated[
        str | None, typer.Option(help="Only requests before: 30m, 24h, 7d (ago) or a date (2026-01-31).")
    ] = None,
    search: Annotated[str | None, typer.Option(help="Words the request or the answer must contain.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only requests made with this key id.")] = None,
    user: Annotated[str | None, typer.Option(help="Only requests from this end user.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")
    ] = 100,
    no_scrub: Annotated[
        bool, typer.Option("--no-scrub", help="Keep PII and secrets (default: replaced by placeholders).")
    ] = False,
    description: Annotated[str | None, typer.Option(help="What the data set is for.")] = None,
    config: ConfigOption = None,
) -> None:
    """Make a data set from recorded requests: their input and parameters, and as the expected
    answer the correction given in feedback, else the answer the model gave. PII and secrets are
    replaced by placeholders such as <EMAIL_ADDRESS_1> unless --no-scrub."""
    _checked_name(name)
    query = TraceQuery(
        limit=limit,
        model=model,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        api_key=key,
        user=user,
        anomaly=None if anomaly is None else "any" if anomaly.lower() == "any" else anomaly.upper(),
        feedback=feedback,
        search=search,
    )
    settings = reader_settings(config)  # traces are every caller's: the admin key once auth is on
    scrubber = None if no_scrub else Scrubber.from_settings(settings.guards)
    traces = SQLStore.open(settings.store.resolved_url())
    try:
        cases = cases_from_traces(traces, query, scrub=not no_scrub, scrubber=scrubber)
        if not cases:
            given = {"model": model, "feedback": feedback, "anomaly": anomaly, "since": since}
            given.update(until=until, search=search, key=key, user=user)
            shown = " ".join(f"--{k} {v}" for k, v in given.items() if v is not None) or "(no filter)"
            _refuse(f"no answered chat or completion requests match {shown}: nothing to store")
        source = {"kind": "traces", "filter": _filters(query), "scrubbed": not no_scrub}
        datasets = DatasetStore(traces.engine)  # the same database, already open and migrated
        version = datasets.create(name, cases, source=source, description=description)
    finally:
        traces.close()
    corrected = sum(1 for c in cases if c.metadata.get("expected_from") == "correction")
    scrubbed = sum(1 for c in cases if c.metadata.get("scrubbed"))
    notes = [f"{corrected} with a corrected answer"] if corrected else []
    notes += [f"PII or secrets replaced in {scrubbed}"] if not no_scrub else ["not scrubbed"]
    typer.echo(
        f"stored {len(cases)} cases from traces as {name} version {version.version} ({'; '.join(notes)})"
    )


@app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="The data set's name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A .jsonl or .csv file to write.")],
    version: VersionOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a version's cases to a JSONL or CSV file (`strato datasets import` reads it back)."""
    found, cases = _get(name, version, config)
    written = export_file(cases, output)
    typer.echo(f"wrote {written} cases of {found.name} version {found.version} to {output}")


def _get(name: str, version: int | None, config: ConfigOption) -> tuple[DatasetVersion, list[Case]]:
    """A version and its cases. One made from traces holds what callers sent: reading it needs the
    admin key, as `strato traces` does."""
    store = _open(config)
    try:
        found, cases = store.get(name, version)
    finally:
        store.close()
    if found.source.get("kind") == "traces":
        reader_settings(config)
    return found, cases


def _checked_name(name: str) -> None:
    try:
        check_name(name)
    except DatasetError as exc:
        _refuse(exc.message)


def _when(value: str | None, option: str) -> float | None:
    try:
        return parse_since(value)
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint=option) from None


def _filters(query: TraceQuery) -> dict[str, Any]:
    fields = ("model", "since", "until", "api_key", "user", "anomaly", "feedback", "search")
    found = {f: getattr(query, f) for f in fields if getattr(query, f) is not None}
    return {**found, "limit": query.limit}


def _version_dict(version: DatasetVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "size": version.size,
        "created_at": _time(version.created_at),
        "source": version.source,
        "description": version.description,
    }


def _case_dict(case: Case) -> dict[str, Any]:
    row: dict[str, Any] = {"position": case.position, "input": case.input, "expected": case.expected}
    if case.metadata:
        row["metadata"] = case.metadata
    if case.trace_id:
        row["trace_id"] = case.trace_id
    return row


def _source(source: dict[str, Any]) -> str:
    if source.get("kind") == "file":
        return f"file {Path(str(source.get('file', '?'))).name}"
    if source.get("kind") == "traces":
        shown = {k: v for k, v in source.get("filter", {}).items() if k not in ("since", "until")}
        return "traces " + " ".join(f"{k}={v}" for k, v in shown.items())
    return json.dumps(source, ensure_ascii=False) if source else "-"


def _input_text(case_input: dict[str, Any]) -> str:
    if "prompt" in case_input:
        return str(case_input["prompt"])
    messages = case_input.get("messages") or []
    if len(messages) == 1:
        return str(messages[0].get("content", ""))
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _preview(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
