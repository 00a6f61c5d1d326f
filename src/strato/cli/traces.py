from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import typer
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text

from strato.cli.admin import reader_settings
from strato.cli.options import ConfigOption, SinceOption, parse_since
from strato.store import Store, open_store
from strato.types import Trace, TraceQuery

app = typer.Typer(help="Inspect recorded requests.", no_args_is_help=True)


def _open(config: ConfigOption) -> Store:
    return open_store(reader_settings(config).store.resolved_url())


@app.command("list")
def list_traces(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only failed requests.")] = False,
    key: Annotated[str | None, typer.Option("--key", help="Only requests made with this key id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Recent requests with their model, status, tokens and timings."""
    store = _open(config)
    try:
        found = store.traces(TraceQuery(limit=limit, model=model, errors_only=errors), api_key=key)
    finally:
        store.close()
    if as_json:
        for trace in found:
            typer.echo(json.dumps(_as_dict(trace), ensure_ascii=False))
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
            _ms(t.ttft_ms),
            _ms(t.latency_ms),
            _usd(t.cost) + (" cache" if t.cache else ""),
            _preview(t),
        )
    Console().print(table)
    priced = [t.cost for t in found if t.cost is not None]
    if priced:
        Console().print(f"cost of these {len(found)} requests: {_usd(sum(priced))}")


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
    store = _open(config)
    try:
        rows = store.spend(by, start)
    finally:
        store.close()
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
            _usd(row.cost) + note,
        )
    table.add_row(
        Text("total", style="bold"),
        str(sum(r.requests for r in rows)),
        str(sum(r.prompt_tokens for r in rows)),
        str(sum(r.completion_tokens for r in rows)),
        Text(_usd(sum(r.cost for r in rows)), style="bold"),
    )
    Console().print(table)


@app.command("show")
def show_trace(
    trace_id: Annotated[
        str, typer.Argument(help="The trace id (x-strato-trace-id) or a unique prefix of it.")
    ],
    config: ConfigOption = None,
) -> None:
    """Everything recorded about one request."""
    store = _open(config)
    try:
        trace = store.trace(trace_id)
    finally:
        store.close()
    if trace is None:
        typer.echo(f"strato: error: no trace {trace_id!r} (or the prefix is not unique)", err=True)
        raise typer.Exit(1)
    facts = Table.grid(padding=(0, 2))
    for key, value in _as_dict(trace).items():
        if key not in {"request", "completion", "attempts"}:
            facts.add_row(Text(key, style="bold"), "-" if value is None else str(value))
    parts: list[Panel | Table] = [facts]
    request = dict(trace.request)
    for message in request.pop("messages", []):
        parts.append(Panel(message.get("content", ""), title=message.get("role", "?"), title_align="left"))
    if "prompt" in request:
        parts.append(Panel(str(request.pop("prompt")), title="prompt", title_align="left"))
    if trace.attempts:
        calls = Table("deployment", "provider", "status", "latency", "error", box=None)
        for a in trace.attempts:
            calls.add_row(
                a["deployment"], a["provider"], str(a["status"]), _ms(a["latency_ms"]), a.get("error", "")
            )
        parts.append(Panel(calls, title="attempts (routing)", title_align="left"))
    if trace.completion is not None:
        parts.append(Panel(trace.completion, title="completion", title_align="left", border_style="green"))
    if trace.error:
        parts.append(Panel(trace.error, title="error", title_align="left", border_style="red"))
    parts.append(
        Panel(json.dumps(request, indent=2, ensure_ascii=False), title="parameters", title_align="left")
    )
    Console().print(Group(*parts))


def _as_dict(trace: Trace) -> dict[str, object]:
    return {
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
        "error": trace.error,
        "request": trace.request,
        "completion": trace.completion,
        "attempts": trace.attempts,
        "route": trace.route,
        "cache": trace.cache,
        "cost": trace.cost,
    }


def _time(epoch: float, *, short: bool = False) -> str:
    local = datetime.fromtimestamp(epoch).astimezone()
    if not short:
        return local.strftime("%Y-%m-%d %H:%M:%S %Z")
    return local.strftime("%H:%M:%S" if local.date() == datetime.now().date() else "%m-%d %H:%M")


def _usd(value: float | None) -> str:
    """Costs of single requests are tiny: keep significant digits rather than cents."""
    if value is None:
        return "-"
    return f"${value:.2f}" if value >= 1 else f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


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
