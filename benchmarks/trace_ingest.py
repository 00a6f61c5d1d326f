"""Trace ingest: spans stored per second while the gateway serves load, and proof that none is lost.

For each store (SQLite, and PostgreSQL on the machine's server), one run of three parts:

1. serve: `strato serve` (one process) in front of nginx's fixed answer, `--clients` concurrent
   clients for `--duration` seconds, each keeping the trace id (`x-strato-trace-id`) of every
   response it completed. Then a clean stop (SIGTERM) and a count: every completed response's trace
   and its spans must be in the store.
2. capacity: while the gateway serves the same load, this process pushes traces through strato's own
   `TraceRecorder` into the same database, as fast as it accepts them. Each is a copy (new ids) of a
   real trace from part 1 with all its spans, so the rows are the size the gateway writes. Spans
   stored per second, counted in the database, is what the store ingests next to a serving gateway.
3. kill -9: the same load, and the gateway is killed with SIGKILL mid-load. Completed responses whose
   trace is missing are the loss; the loss window is how long before the kill the newest of them
   completed (bounded by `store.flush_interval` plus one write).

    apt-get install nginx-light                       # once: the upstream that costs nothing
    .venv/bin/python benchmarks/trace_ingest.py [--duration 10] [--clients 16] [--stores sqlite postgresql]
        [--json benchmarks/out/trace_ingest.json]

For reference, Arize Phoenix users measured about 80 spans/s (Phoenix issue #3027). Not a test:
figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from gateway_overhead import MODEL, REQUEST, Process, free_port, start_nginx
from sqlalchemy import func, select

from strato.observe.recorder import TraceRecorder
from strato.store.sql import SQLStore
from strato.store.tables import traces
from strato.types import Trace, TraceQuery

PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"


def start_strato(tmp: Path, upstream: str, url: str, name: str) -> Process:
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"database_url": url},
        "models": [
            {
                "name": MODEL,
                "provider": "openai",
                "base_url": f"{upstream}/v1",
                "upstream_model": MODEL,
                "input_cost": 0.15,
                "output_cost": 0.6,
            }
        ],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    strato = Path(sys.executable).with_name("strato")
    process = Process(name, [str(strato), "serve", "--config", str(path)], port, tmp)
    process.wait_ready()
    return process


@dataclasses.dataclass
class Load:
    """What the clients saw: each completed response's trace id and when it completed."""

    completed: dict[str, float] = dataclasses.field(default_factory=dict)
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0


async def drive(url: str, clients: int, duration: float, stop: threading.Event | None = None) -> Load:
    """`clients` concurrent clients posting chat completions (aiohttp: httpx's client alone tops out
    near 600 requests/s on this machine, below what the gateway serves)."""
    load = Load(started=time.time())
    deadline = time.monotonic() + duration
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(30)) as session:

        async def one_client() -> None:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                try:
                    async with session.post("/v1/chat/completions", json=REQUEST) as reply:
                        await reply.read()
                        if reply.status == 200:
                            load.completed[reply.headers["x-strato-trace-id"]] = time.time()
                        else:
                            load.errors += 1
                except (TimeoutError, aiohttp.ClientError):
                    load.errors += 1
                    if stop is not None and stop.is_set():
                        return
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(one_client() for _ in range(clients)))
    load.ended = time.time()
    return load


def counts(store: SQLStore, trace_ids: list[str] | None = None) -> tuple[int, set[str]]:
    """Traces stored, and which of `trace_ids` are present."""
    with store.engine.connect() as conn:
        n_traces = int(conn.execute(select(func.count()).select_from(traces)).scalar_one())
        present: set[str] = set()
        for i in range(0, len(trace_ids or []), 500):
            chunk = (trace_ids or [])[i : i + 500]
            present |= {r[0] for r in conn.execute(select(traces.c.id).where(traces.c.id.in_(chunk)))}
    return n_traces, present


def serve_part(tmp: Path, upstream: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    gateway = start_strato(tmp, upstream, url, "serve")
    load = asyncio.run(drive(gateway.url, args.clients, args.duration))
    gateway.stop()  # SIGTERM: a clean shutdown drains the trace writer
    store = SQLStore.open(url)
    n_traces, present = counts(store, list(load.completed))
    n_spans = store.span_count()
    store.close()
    seconds = load.ended - load.started
    missing = len(load.completed) - len(present)
    return {
        "completed": len(load.completed),
        "errors": load.errors,
        "requests_per_s": len(load.completed) / seconds,
        "traces_stored": n_traces,
        "spans_stored": n_spans,
        "spans_per_trace": n_spans / max(n_traces, 1),
        "spans_per_s": n_spans / seconds,
        "missing_after_clean_stop": missing,
    }


def capacity_part(tmp: Path, upstream: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = SQLStore.open(url)
    newest = store.traces(TraceQuery(limit=1))
    template = store.trace(newest[0].id) if newest else None
    if template is None:
        sys.exit("no stored trace to copy; the serve part must run first")
    recorder = TraceRecorder(store, flush_interval=0.2, batch_size=500)
    gateway = start_strato(tmp, upstream, url, "capacity")
    before_traces, _ = counts(store)
    before_spans = store.span_count()
    stop = threading.Event()
    load_thread = threading.Thread(
        target=lambda: asyncio.run(drive(gateway.url, args.clients, args.duration, stop)), daemon=True
    )
    load_thread.start()
    started = time.perf_counter()
    pushed = 0
    while time.perf_counter() - started < args.duration:
        for _ in range(100):
            recorder.submit(_copy(template))
        pushed += 100
        # Stay at most a few batches ahead of the writer: what counts is what is stored.
        while pushed - (counts(store)[0] - before_traces) > 5 * recorder.batch_size:
            time.sleep(0.01)
    recorder.flush(timeout=120)
    elapsed = time.perf_counter() - started
    stop.set()
    load_thread.join(60)
    gateway.stop()
    recorder.close()
    n_traces, _ = counts(store)
    n_spans = store.span_count()
    store.close()
    ours_spans = pushed * len(template.spans)
    return {
        "pushed_traces": pushed,
        "spans_per_trace": len(template.spans),
        "stored_spans_total": n_spans - before_spans,
        "recorder_spans_per_s": ours_spans / elapsed,
        "recorder_traces_per_s": pushed / elapsed,
        "all_stored": (n_traces - before_traces) >= pushed,
    }


def kill_part(tmp: Path, upstream: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    gateway = start_strato(tmp, upstream, url, "kill")
    stop = threading.Event()
    result: dict[str, Load] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("load", asyncio.run(drive(gateway.url, args.clients, 60, stop))),
        daemon=True,
    )
    thread.start()
    time.sleep(args.duration / 2)
    killed_at = time.time()
    os.kill(gateway.proc.pid, signal.SIGKILL)
    gateway.proc.wait()
    stop.set()
    thread.join(60)
    load = result["load"]
    done_before_kill = {tid: at for tid, at in load.completed.items() if at <= killed_at}
    store = SQLStore.open(url)
    _, present = counts(store, list(done_before_kill))
    store.close()
    lost = {tid: at for tid, at in done_before_kill.items() if tid not in present}
    window = killed_at - min(lost.values()) if lost else 0.0
    return {
        "completed_before_kill": len(done_before_kill),
        "lost": len(lost),
        "loss_window_s": window,
    }


def _copy(template: Trace) -> Trace:
    trace_id = uuid.uuid4().hex
    copied_spans = [dataclasses.replace(s) for s in template.spans]
    return dataclasses.replace(template, id=trace_id, started_at=time.time(), spans=copied_spans)


def fresh_postgres() -> tuple[str, Any]:
    import psycopg

    name = f"strato_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"postgresql://root@127.0.0.1:5432/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="Seconds of load per part.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients.")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/trace_ingest.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"duration_s": args.duration, "clients": args.clients, "stores": {}}

    def parts(tmp: Path, upstream: str, url: str) -> dict[str, Any]:
        return {
            "serve": serve_part(tmp, upstream, url, args),
            "capacity": capacity_part(tmp, upstream, url, args),
            "kill": kill_part(tmp, upstream, url, args),
        }

    results["stores"] = per_store(args.stores, "strato-ingest-", parts)
    report(results)
    write_json(results, args.json)


def per_store(
    stores: list[str], prefix: str, run: Callable[[Path, str, str], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`run(tmp, upstream_url, database_url)` for each store (SQLite in a temporary directory, a
    fresh PostgreSQL database on the machine's server, dropped after), in front of nginx's fixed
    answer; the results by store."""
    found: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = Path(tmp_name)
        nginx = start_nginx(tmp)
        try:
            for kind in stores:
                print(f"{kind}:")
                url, cleanup = (
                    (f"sqlite:///{tmp / 'strato.db'}", None) if kind == "sqlite" else fresh_postgres()
                )
                try:
                    found[kind] = run(tmp, nginx.url, url)
                finally:
                    if cleanup is not None:
                        cleanup()
                print(f"  {json.dumps(found[kind])}")
        finally:
            nginx.stop()
    return found


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}")


def report(results: dict[str, Any]) -> None:
    print(f"\n{results['clients']} clients, {results['duration_s']:.0f} s per part")
    header = (
        f"{'store':<11} {'req/s':>7} {'spans/req':>9} {'spans/s served':>14} {'lost (stop)':>11} "
        f"{'recorder spans/s':>16} {'lost (kill -9)':>14} {'loss window':>11}"
    )
    print(header)
    print("-" * len(header))
    for kind, parts in results["stores"].items():
        serve, capacity, kill = parts["serve"], parts["capacity"], parts["kill"]
        lost_kill = f"{kill['lost']}/{kill['completed_before_kill']}"
        print(
            f"{kind:<11} {serve['requests_per_s']:>7.0f} {serve['spans_per_trace']:>9.1f} "
            f"{serve['spans_per_s']:>14.0f} {serve['missing_after_clean_stop']:>11} "
            f"{capacity['recorder_spans_per_s']:>16.0f} {lost_kill:>14} {kill['loss_window_s']:>10.2f}s"
        )


if __name__ == "__main__":
    main()
