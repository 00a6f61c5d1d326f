"""Durability: what committing spend (always, for budgeted keys) and traces (`observe.durable`)
before the answer costs, and what a `kill -9` under load loses with and without it.

One `strato serve` in front of nginx's fixed answer, on SQLite and on PostgreSQL (the machine's
server), in three modes:

- `master key`: no budget, traces batched (the path without any commit to wait for);
- `budgeted key`: a virtual key with a budget: its hold and its settlement are committed to the
  spend journal (group commit) before the request runs and before its answer is released;
- `budgeted + durable traces`: the same, with `observe.durable: true`.

For each mode: the median latency one client sees (sequential requests), requests/s with
`--clients` concurrent clients, then the same load again and SIGKILL mid-load: of the responses
completed before the kill, how many traces are missing, and how many budgeted requests' spend is
missing from the journal.

    apt-get install nginx-light                       # once: the upstream that costs nothing
    .venv/bin/python benchmarks/durability.py [--seconds 8] [--clients 16] [--stores sqlite postgresql]
        [--json benchmarks/out/durability.json]

Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from gateway_overhead import MASTER_KEY, MODEL, REQUEST, Process, free_port
from trace_ingest import counts, per_store, write_json

from strato.auth import KeySpec, KeyStore
from strato.auth.journal import COMMIT_TIMEOUT, SpendJournal, spend_ledger
from strato.store.sql import SQLStore

MODES = {
    "master key": {"budget": False, "durable": False},
    "budgeted key": {"budget": True, "durable": False},
    "budgeted + durable traces": {"budget": True, "durable": True},
}


def start_strato(tmp: Path, upstream: str, url: str, name: str, durable: bool) -> Process:
    port = free_port()
    model = {"name": MODEL, "provider": "openai", "base_url": f"{upstream}/v1", "upstream_model": MODEL}
    config = {
        "server": {"host": "127.0.0.1", "port": port, "master_key": MASTER_KEY},
        "store": {"database_url": url},
        "limits": {"backend": "process"},
        "observe": {"durable": durable},
        "models": [{**model, "input_cost": 0.15, "output_cost": 0.6}],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    strato = Path(sys.executable).with_name("strato")
    env = {"STRATO_REDIS_URL": ""}
    process = Process(name, [str(strato), "serve", "--config", str(path)], port, tmp, env=env)
    process.wait_ready()
    return process


async def drive(
    url: str, secret: str, clients: int, seconds: float, stop: threading.Event | None = None
) -> tuple[dict[str, float], list[float]]:
    """`clients` clients posting chats for `seconds`: each completed response's trace id with when it
    completed, and every response's latency in ms."""
    completed: dict[str, float] = {}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    headers = {"authorization": f"Bearer {secret}"}
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(30)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout, headers=headers) as session:

        async def one_client() -> None:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                started = time.perf_counter()
                try:
                    async with session.post("/v1/chat/completions", json=REQUEST) as reply:
                        await reply.read()
                        if reply.status == 200:
                            completed[reply.headers["x-strato-trace-id"]] = time.time()
                            latencies.append((time.perf_counter() - started) * 1000)
                except (TimeoutError, aiohttp.ClientError):
                    if stop is not None and stop.is_set():
                        return
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return completed, latencies


def journaled(url: str, trace_ids: list[str]) -> int:
    """How many of the requests behind `trace_ids` have their settlement in the spend journal (a
    request's journal ticket is its trace id)."""
    store = SQLStore.open(url)
    found = 0
    with store.engine.connect() as conn:
        for i in range(0, len(trace_ids), 500):
            chunk = trace_ids[i : i + 500]
            rows = conn.execute(
                spend_ledger.select().where(spend_ledger.c.kind == "settle", spend_ledger.c.ticket.in_(chunk))
            ).all()
            found += len(rows)
    store.close()
    return found


def run_mode(tmp: Path, upstream: str, url: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    options = MODES[mode]
    keys = KeyStore.open(url)
    _, secret = keys.create(KeySpec(name=mode, budget_daily=1e9)) if options["budget"] else (None, MASTER_KEY)
    keys.close()
    assert secret is not None
    name = mode.replace(" ", "-").replace("+", "")
    gateway = start_strato(tmp, upstream, url, name, bool(options["durable"]))
    try:
        asyncio.run(drive(gateway.url, secret, 4, 1.0))  # warm up
        _, sequential = asyncio.run(drive(gateway.url, secret, 1, args.seconds))
        done, _ = asyncio.run(drive(gateway.url, secret, args.clients, args.seconds))
    finally:
        gateway.stop()
    rps = len(done) / args.seconds
    killed = kill_under_load(tmp, upstream, url, name, secret, bool(options["durable"]), args)
    return {
        "p50_ms_1_client": statistics.median(sequential),
        "requests_per_s": rps,
        **killed,
    }


def kill_under_load(
    tmp: Path, upstream: str, url: str, name: str, secret: str, durable: bool, args: argparse.Namespace
) -> dict[str, Any]:
    store = SQLStore.open(url)
    with store.engine.begin() as conn:
        conn.execute(spend_ledger.delete())
    gateway = start_strato(tmp, upstream, url, f"{name}-kill", durable)
    stop = threading.Event()
    result: dict[str, Any] = {}

    def load() -> None:
        result["done"] = asyncio.run(drive(gateway.url, secret, args.clients, 60, stop))[0]

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    time.sleep(args.seconds / 2)
    killed_at = time.time()
    os.kill(gateway.proc.pid, signal.SIGKILL)
    gateway.proc.wait()
    stop.set()
    thread.join(60)
    acknowledged = [tid for tid, at in result["done"].items() if at <= killed_at]
    _, present = counts(store, acknowledged)
    store.close()
    settled = journaled(url, acknowledged) if secret != MASTER_KEY else None
    return {
        "acknowledged_before_kill": len(acknowledged),
        "traces_lost": len(acknowledged) - len(present),
        "spend_entries_lost": None if settled is None else len(acknowledged) - settled,
    }


def journal_wait(url: str, count: int = 400) -> dict[str, float]:
    """What the journal alone makes an answer wait: a settlement's commit, one request at a time
    (no group to share it with: the worst case for a group commit), in milliseconds."""
    store = SQLStore.open(url)
    journal = SpendJournal(store.engine)
    waits = []
    try:
        journal.settle("bench", "warm-up", 0.0, time.time()).result(COMMIT_TIMEOUT)
        for i in range(count):
            start = time.perf_counter()
            journal.settle("bench", f"wait-{i}", 0.0, time.time()).result(COMMIT_TIMEOUT)
            waits.append((time.perf_counter() - start) * 1000)
    finally:
        journal.close()
        store.close()
    waits.sort()
    return {"p50_ms": statistics.median(waits), "p99_ms": waits[int(len(waits) * 0.99)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8, help="Seconds per measurement.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients for requests/s.")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/durability.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds": args.seconds, "clients": args.clients}

    def modes(tmp: Path, upstream: str, url: str) -> dict[str, Any]:
        found: dict[str, Any] = {mode: run_mode(tmp, upstream, url, mode, args) for mode in MODES}
        found["journal commit"] = journal_wait(url)
        return found

    results["stores"] = per_store(args.stores, "strato-durability-", modes)
    report(results)
    write_json(results, args.json)


def report(results: dict[str, Any]) -> None:
    print(f"\n{results['clients']} clients for requests/s; {results['seconds']:.0f} s per measurement")
    header = (
        f"{'store':<11} {'mode':<26} {'p50 1 client':>12} {'added':>8} {'req/s':>7} "
        f"{'traces lost':>12} {'spend lost':>11}"
    )
    print(header)
    print("-" * len(header))
    for kind, modes in results["stores"].items():
        base = modes["master key"]["p50_ms_1_client"]
        for mode, row in modes.items():
            if mode == "journal commit":
                continue
            lost = f"{row['traces_lost']}/{row['acknowledged_before_kill']}"
            spend = "-" if row["spend_entries_lost"] is None else f"{row['spend_entries_lost']}"
            print(
                f"{kind:<11} {mode:<26} {row['p50_ms_1_client']:>10.2f}ms "
                f"{row['p50_ms_1_client'] - base:>+7.2f} {row['requests_per_s']:>7.0f} {lost:>12} {spend:>11}"
            )
    print("\nThe journal alone: a settlement's commit, one at a time (what a budgeted answer waits for)")
    for kind, modes in results["stores"].items():
        wait = modes["journal commit"]
        print(f"{kind:<11} p50 {wait['p50_ms']:.2f} ms, p99 {wait['p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
