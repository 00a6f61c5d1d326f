from __future__ import annotations

import gc
import ipaddress
import logging
import os
import sys
from typing import Annotated

import typer

from strato.cli.options import ConfigOption
from strato.config import load_settings

SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits for it


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Start the OpenAI-compatible gateway."""
    import uvicorn

    from strato.runtime import build_runtime
    from strato.server import create_app

    settings = load_settings(config)
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    if not settings.server.master_key and not is_loopback(settings.server.host):
        typer.echo(
            f"strato: error: refusing to listen on {settings.server.host} without a master key; "
            "set STRATO_MASTER_KEY (server.master_key) or listen on 127.0.0.1",
            err=True,
        )
        sys.exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    runtime = build_runtime(settings)
    app = create_app(runtime)
    names = ", ".join(info.name for info in runtime.models.infos())
    typer.echo(f"strato: serving {names} on http://{settings.server.host}:{settings.server.port}/v1")
    typer.echo(f"strato: traces go to {settings.store.resolved_url()}")
    if settings.server.master_key:
        typer.echo("strato: auth is on: /v1 needs the master key or a virtual key (strato keys create)")
    else:
        typer.echo(
            "strato: auth is off (no STRATO_MASTER_KEY): anyone who can reach this address may call it"
        )
    # What startup built (modules, models, the guards' tables) lives as long as the process: moved
    # out of the collector's sight, a full collection no longer walks it (it took 30-90 ms, the
    # requests it interrupted waited that long; benchmarks/RESULTS.md, gateway overhead).
    gc.freeze()
    # The event loop gives the GIL away at every socket call; a thread that was waiting for it (the
    # trace writer, a local model's engine) then keeps it until it blocks or the switch interval
    # ends, and the requests on the loop wait that long. 5 ms by default; 0.5 ms gave the gateway
    # 12-20% more requests/s and a lower p99 (benchmarks/RESULTS.md, gateway overhead).
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=log_level.lower(),
        access_log=settings.server.access_log,
        timeout_graceful_shutdown=30,
        limit_concurrency=settings.server.max_connections,
        timeout_keep_alive=settings.server.keep_alive_seconds,
    )


def is_loopback(host: str) -> bool:
    """Whether `host` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
