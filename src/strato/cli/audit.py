"""`strato audit`: the audit log, newest first: key changes, guard decisions, auth refusals (of
/v1 requests, whose subject is the model, and of admin and traces API requests, whose subject is
the path)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from strato.auth.audit import KINDS, AuditLog
from strato.cli.admin import admin_store
from strato.cli.options import ConfigOption, parse_since


def _refuse(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2 (as for a usage error)."""
    typer.echo(f"strato: error: {message}", err=True)
    raise typer.Exit(2)


def audit(
    since: Annotated[
        str | None, typer.Option(help="Only entries since: 30m, 24h, 7d, 2w, or a date (2026-01-31).")
    ] = None,
    kind: Annotated[str | None, typer.Option(help=f"Only this kind: {', '.join(KINDS)}.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only entries by this actor: a key id, master or cli.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object a line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show the audit log: who created, revoked or rotated keys, what the guards blocked, redacted
    or flagged, and which requests auth refused (the model, or the path for the admin and traces
    APIs)."""
    try:
        start = parse_since(since)
    except typer.BadParameter as exc:
        _refuse(f"--since {exc.message}")
    if kind is not None and kind not in KINDS:
        _refuse(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    if limit < 1:
        _refuse(f"--limit {limit}: use 1 or more")
    _, keys = admin_store(config)
    log = AuditLog(keys.engine)  # the same database, already open and migrated
    try:
        entries = log.query(since=start, kind=kind, actor=actor, limit=limit)
    finally:
        log.close()
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry.as_dict()))
        return
    table = Table("time", "kind", "actor", "subject", "trace", "detail", box=box.SIMPLE_HEAD)
    for e in entries:
        table.add_row(
            datetime.fromtimestamp(e.at).strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.actor or "",
            e.subject or "",
            (e.trace_id or "")[:12],
            json.dumps(e.detail) if e.detail else "",
        )
    Console().print(table)
