"""`strato keys`: virtual API keys, written straight to the store a running server reads (it sees a
new, revoked or rotated key within a couple of seconds)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from strato.auth import KeySpec, KeyStore, VirtualKey
from strato.auth.audit import CLI_ACTOR
from strato.cli.admin import admin_store
from strato.cli.options import ConfigOption
from strato.config import describe_validation_error

app = typer.Typer(
    rich_markup_mode="markdown", help="Virtual API keys: create, list, revoke, rotate.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _open(config: ConfigOption) -> KeyStore:
    return admin_store(config)[1]


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models it may call (default: all).")
    ] = None,
    budget_daily: Annotated[float | None, typer.Option(help="USD it may spend per UTC day.")] = None,
    budget_monthly: Annotated[float | None, typer.Option(help="USD it may spend per UTC month.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    expires: Annotated[str | None, typer.Option(help="30d, 12h, 2w or a date (2026-12-31).")] = None,
    team: Annotated[str | None, typer.Option(help="Team name.")] = None,
    metadata: Annotated[list[str] | None, typer.Option(help="k=v label; repeat for more.")] = None,
    guards: Annotated[
        str | None,
        typer.Option(help='Guard settings for this key, as JSON: \'{"injection": {"action": "block"}}\'.'),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Create a key. Its secret is printed once: store it now."""
    labels = {}
    for item in metadata or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--metadata")
        labels[k] = v
    spec = _spec(
        name=name,
        models=[m.strip() for m in models.split(",") if m.strip()] if models is not None else None,
        budget_daily=budget_daily,
        budget_monthly=budget_monthly,
        rpm=rpm,
        tpm=tpm,
        expires=expires,
        team=team,
        metadata=labels,
        guards=_json_option(guards, "--guards"),
    )
    store = _open(config)
    try:
        key, secret = store.create(spec, actor=CLI_ACTOR)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None
    finally:
        store.close()
    _print_secret(key, secret, as_json)


@app.command("list")
def list_keys(
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Keys with their limits (never their secrets)."""
    store = _open(config)
    try:
        found = store.list(include_revoked=revoked)
    finally:
        store.close()
    if as_json:
        for key in found:
            typer.echo(json.dumps(key.as_dict()))
        return
    table = Table(
        "id",
        "name",
        "models",
        "budget/day",
        "budget/month",
        "rpm",
        "tpm",
        "expires",
        "team",
        "status",
        box=box.SIMPLE_HEAD,
    )
    now = time.time()
    for k in found:
        status = "revoked" if k.revoked_at else "expired" if k.expired(now) else "active"
        table.add_row(
            k.id,
            k.name,
            ",".join(k.models) if k.models is not None else "all",
            _opt(k.budget_daily),
            _opt(k.budget_monthly),
            _opt(k.rpm),
            _opt(k.tpm),
            _date(k.expires_at),
            k.team or "",
            status,
        )
    Console().print(table)


@app.command("revoke")
def revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key; requests with it fail (401) from a couple of seconds later."""
    store = _open(config)
    try:
        key = store.revoke(key_id, actor=CLI_ACTOR)
    finally:
        store.close()
    if key is None:
        typer.echo(f"strato: error: no live key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key.id} ({key.name})")


@app.command("rotate")
def rotate(key_id: str, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """A new secret for a key, same id and limits; the old secret stops working."""
    store = _open(config)
    try:
        rotated = store.rotate(key_id, actor=CLI_ACTOR)
    finally:
        store.close()
    if rotated is None:
        typer.echo(f"strato: error: no live key {key_id!r}", err=True)
        raise typer.Exit(1)
    _print_secret(*rotated, as_json)


def _json_option(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=name) from None


def _spec(**fields: Any) -> KeySpec:
    try:
        return KeySpec(**fields)
    except ValidationError as exc:
        raise typer.BadParameter(describe_validation_error(exc)) from None


def _print_secret(key: VirtualKey, secret: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({**key.as_dict(), "key": secret}))
        return
    typer.echo(f"id:     {key.id}")
    typer.echo(f"secret: {secret}")
    typer.echo("The secret is shown only now; strato keeps only its hash.")


def _opt(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}"


def _date(at: float | None) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M") if at is not None else ""
