"""`strato traces`: recorded requests, read from the database, as `GET /v1/traces` shows them over
HTTP (the `--json` output is the API's trace object)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from strato.cli.admin import reader_store
from strato.cli.options import ConfigOption, SinceOption, parse_since
from strato.errors import InvalidRequest
from strato.observe.export import duration_ms, ms, trace_json, trace_query, usd
from strato.store import Store
from strato.store.sql import FEEDBACK
from strato.types import Score, Span, Trace

app = typer.Typer(rich_markup_mode="markdown", help="Inspect recorded requests.", no_args_is_help=True)

# How the list's "flags" column abbreviates anomaly kinds.
SHORT_KINDS = {
    "EMPTY_ANSWER": "empty",
    "REPEATED_CHARACTER": "rep-char",
    "REPEATED_TOKEN": "rep-word",
    "RUNAWAY_REPETITION": "loop",
    "INVALID_JSON": "bad-json",
    "REFUSAL": "refusal",
    "LANGUAGE_SWITCH": "language",
    "SLOW": "slow",
    "EXPENSIVE": "costly",
}

UntilOption = Annotated[
    str | None,
    typer.Option(help="Only requests before: 30m, 24h, 7d (that long ago), or a date (2026-01-31)."),
]
AnomalyOption = Annotated[
    str | None, typer.Option(help="Only answers with this anomaly (REFUSAL, SLOW, ...), or any anomaly: any.")
]
FeedbackOption = Annotated[
    str | None,
    typer.Option(help="Only requests with feedback: any, none, positive, or negative (a score < 0.5)."),
]
SearchOption = Annotated[
    str | None,
    typer.Option("--search", "-q", help="Only requests whose input or answer has all these words."),
]


def _refuse(message: str) -> NoReturn:
    typer.echo(f"strato: error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def _opened(config: ConfigOption) -> Iterator[Store]:
    """The database, opened once for the command (after the admin key check, on the same engine)."""
    store = reader_store(config)
    try:
        yield store
    finally:
        store.close()


@app.command("list")
def list_traces(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only failed requests.")] = False,
    key: Annotated[str | None, typer.Option("--key", help="Only requests made with this key id.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only requests of this end user.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    anomaly: AnomalyOption = None,
    feedback: FeedbackOption = None,
    search: SearchOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (the API's shape).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Recent requests with their model, status, tokens, timings, feedback and anomalies."""
    try:
        query = trace_query(
            limit=limit,
            model=model,
            errors_only=errors,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            user=user,
            anomaly=anomaly,
            feedback=feedback,
            search=search,
        )
    except InvalidRequest as exc:
        _refuse(f"--{exc.param}: {exc.message.split(': ', 1)[-1]}")
    with _opened(config) as store:
        found = store.traces(query, api_key=key)
        feedback_of = _feedback(store, found)
    if as_json:
        for trace in found:
            shown = trace_json(trace, feedback_of.get(trace.id), spans=False)
            typer.echo(json.dumps(shown, ensure_ascii=False))
        return
    table = Table(
        # The id is what users copy into `strato traces show`: never cut it.
        Column("id", no_wrap=True, min_width=32),
        Column("time", no_wrap=True, min_width=8),
        Column("status", no_wrap=True, min_width=3),
        Column("model", overflow="ellipsis", no_wrap=True, min_width=6),
        Column("endpoint", overflow="ellipsis", no_wrap=True, min_width=4),
        Column("tokens", justify="right", no_wrap=True, min_width=6),
        Column("ttft", justify="right", no_wrap=True, min_width=5),
        Column("total", justify="right", no_wrap=True, min_width=6),
        Column("cost", justify="right", no_wrap=True, min_width=4),
        Column("fb", no_wrap=True, min_width=2),
        Column("anomalies", overflow="ellipsis", no_wrap=True, max_width=24),
        Column("input", no_wrap=True, overflow="ellipsis", min_width=6, max_width=40),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
    )
    for t in found:
        table.add_row(
            t.id,
            _time(t.started_at, short=True),
            Text(str(t.status), style="green" if t.status < 400 else "red"),
            t.requested_model or "-",
            t.endpoint + (" stream" if t.stream else ""),
            f"{t.prompt_tokens}→{t.completion_tokens}",
            ms(t.ttft_ms),
            ms(t.latency_ms),
            usd(t.cost) + (" cache" if t.cache else ""),
            _feedback_mark(feedback_of.get(t.id, [])),
            Text(",".join(SHORT_KINDS.get(k, k.lower()) for k in t.anomalies), style="yellow"),
            _preview(t),
        )
    Console().print(table)
    priced = [t.cost for t in found if t.cost is not None]
    if priced:
        Console().print(f"cost of these {len(found)} requests: {usd(sum(priced))}")


@app.command("cost")
def cost(
    by: Annotated[str, typer.Option("--by", help="Sum per model, deployment, key or user.")] = "model",
    since: SinceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """What the recorded requests cost: requests, tokens and USD per model (or deployment, key, user)."""
    if by not in ("model", "deployment", "key", "user"):
        raise typer.BadParameter("must be model, deployment, key or user", param_hint="--by")
    start = parse_since(since)
    with _opened(config) as store:
        rows = store.spend(by, start)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(asdict(row)))
        return
    table = Table(by, "requests", "prompt tokens", "completion tokens", "cost (USD)", box=box.SIMPLE_HEAD)
    for row in rows:
        note = f" ({row.unpriced} unpriced)" if row.unpriced else ""
        table.add_row(
            row.group or "-",
            str(row.requests),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            usd(row.cost) + note,
        )
    table.add_row(
        Text("total", style="bold"),
        str(sum(r.requests for r in rows)),
        str(sum(r.prompt_tokens for r in rows)),
        str(sum(r.completion_tokens for r in rows)),
        Text(usd(sum(r.cost for r in rows)), style="bold"),
    )
    Console().print(table)


@app.command("show")
def show_trace(
    trace_id: Annotated[
        str, typer.Argument(help="The trace id (x-strato-trace-id) or a unique prefix of it.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The trace as JSON (the API's shape).")] = False,
    config: ConfigOption = None,
) -> None:
    """Everything recorded about one request: messages, answer, anomalies, feedback and its spans."""
    with _opened(config) as store:
        trace = store.trace(trace_id)
        feedback = store.scores(FEEDBACK, [trace.id]) if trace is not None else []
    if trace is None:
        typer.echo(f"strato: error: no trace {trace_id!r} (or the prefix is not unique)", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(trace_json(trace, feedback), ensure_ascii=False, indent=2))
        return
    parts: list[RenderableType] = [_facts(trace)]
    request = dict(trace.request)
    request.pop("guards", None)  # among the facts
    for message in request.pop("messages", []):
        parts.append(
            Panel(str(message.get("content", "")), title=message.get("role", "?"), title_align="left")
        )
    if "prompt" in request:
        parts.append(Panel(str(request.pop("prompt")), title="prompt", title_align="left"))
    if trace.attempts:
        calls = Table("deployment", "provider", "status", "latency", "error", box=None)
        for a in trace.attempts:
            calls.add_row(
                a["deployment"], a["provider"], str(a["status"]), ms(a["latency_ms"]), a.get("error", "")
            )
        parts.append(Panel(calls, title="attempts (routing)", title_align="left"))
    if trace.completion is not None:
        parts.append(Panel(trace.completion, title="completion", title_align="left", border_style="green"))
    if trace.error:
        parts.append(Panel(trace.error, title="error", title_align="left", border_style="red"))
    if trace.anomalies:
        anomalies = ", ".join(trace.anomalies)
        parts.append(Panel(anomalies, title="anomalies", title_align="left", border_style="yellow"))
    if feedback:
        parts.append(Panel(_feedback_table(feedback), title="feedback", title_align="left"))
    if trace.spans:
        parts.append(Panel(span_tree(trace.spans), title="spans", title_align="left"))
    parts.append(
        Panel(json.dumps(request, indent=2, ensure_ascii=False), title="parameters", title_align="left")
    )
    Console().print(Group(*parts))


def _when(value: str | None, flag: str) -> float | None:
    try:
        return parse_since(value)
    except typer.BadParameter as exc:
        _refuse(f"{flag} {exc.message}")


def _feedback(store: Store, traces: Sequence[Trace]) -> dict[str, list[Score]]:
    """The feedback on each of `traces` (one query)."""
    found: dict[str, list[Score]] = {}
    for score in store.scores(FEEDBACK, [t.id for t in traces]) if traces else ():
        found.setdefault(score.trace_id, []).append(score)
    return found


def _feedback_mark(scores: Sequence[Score]) -> Text:
    """+ when all feedback is positive (>= 0.5), - when all is negative, ± when mixed; with the
    count when there is more than one."""
    if not scores:
        return Text("")
    good = sum(s.value >= 0.5 for s in scores)
    mark, style = ("+", "green") if good == len(scores) else ("-", "red") if not good else ("±", "yellow")
    return Text(mark + (str(len(scores)) if len(scores) > 1 else ""), style=style)


def _facts(trace: Trace) -> Table:
    facts: dict[str, object] = {
        "id": trace.id,
        "started_at": _time(trace.started_at),
        "endpoint": str(trace.endpoint),
        "model": trace.requested_model,
        "deployment": trace.deployment,
        "provider": trace.provider,
        "user": trace.user,
        "key": trace.api_key,
        "stream": trace.stream,
        "status": trace.status,
        "finish_reason": trace.finish_reason,
        "prompt_tokens": trace.prompt_tokens,
        "completion_tokens": trace.completion_tokens,
        "cached_tokens": trace.cached_tokens,
        "ttft_ms": None if trace.ttft_ms is None else round(trace.ttft_ms, 1),
        "latency_ms": None if trace.latency_ms is None else round(trace.latency_ms, 1),
        "error_code": trace.error_code,
        "route": trace.route,
        "cache": trace.cache,
        "cost": trace.cost,
        "engine": _engine(trace),
        "guards": trace.request.get("guards"),
    }
    grid = Table.grid(padding=(0, 2))
    for key, value in facts.items():
        grid.add_row(Text(key, style="bold"), "-" if value is None else str(value))
    return grid


def _engine(trace: Trace) -> str | None:
    """What a local engine spent on the request, from its request span: busy and CPU seconds, and
    the energy, marked when it is an estimate."""
    root = next((s for s in trace.spans if s.parent_id is None), None)
    spent = root.attributes if root is not None else {}
    if "strato.engine.busy_seconds" not in spent:
        return None
    energy = f"{spent['strato.energy.joules']:.2f} J"
    if spent.get("strato.energy.source") == "estimate":
        energy += " (estimate)"
    busy, cpu = spent["strato.engine.busy_seconds"], spent["strato.engine.cpu_seconds"]
    return f"busy {busy:.3f} s, CPU {cpu:.3f} s, {energy}"


def _feedback_table(scores: Sequence[Score]) -> Table:
    table = Table("score", "label", "comment", "correction", "source", "at", box=None)
    for s in scores:
        table.add_row(
            Text(f"{s.value:g}", style="green" if s.value >= 0.5 else "red"),
            s.label or "-",
            s.comment or "-",
            s.correction or "-",
            s.source,
            _time(s.created_at),
        )
    return table


def span_tree(spans: Sequence[Span]) -> Tree:
    """The spans as a tree, children under their parent in start order, each with its duration and
    when it started after the first one."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in sorted(spans, key=lambda s: s.started_at):
        children.setdefault(span.parent_id if span.parent_id in ids else None, []).append(span)
    start = min(s.started_at for s in spans)
    tree = Tree(Text("spans", style="bold"), guide_style="dim", hide_root=True)

    def grow(node: Tree, parent: str | None) -> None:
        for span in children.get(parent, []):
            grow(node.add(_span_label(span, start)), span.span_id)

    grow(tree, None)
    return tree


def _span_label(span: Span, start: float) -> Text:
    label = Text(span.name, style="red" if span.status == "error" else "")
    label.append(f"  {duration_ms(span):.1f}ms", style="cyan")
    label.append(f"  at +{(span.started_at - start) * 1000:.1f}ms", style="dim")
    shown = " ".join(f"{k}={v}" for k, v in list(span.attributes.items())[:4])
    if shown:
        label.append("  " + (shown if len(shown) <= 100 else shown[:99] + "…"), style="dim")
    return label


def _time(epoch: float, *, short: bool = False) -> str:
    local = datetime.fromtimestamp(epoch).astimezone()
    if not short:
        return local.strftime("%Y-%m-%d %H:%M:%S %Z")
    return local.strftime("%H:%M:%S" if local.date() == datetime.now().date() else "%m-%d %H:%M")


def _preview(trace: Trace, width: int = 40) -> str:
    messages = trace.request.get("messages")
    if messages:
        text = str(messages[-1].get("content", ""))
    elif "prompt" in trace.request:
        text = str(trace.request["prompt"])
    elif "input" in trace.request:
        text = str(trace.request["input"][0] if trace.request["input"] else "")
    else:
        text = trace.error or ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
