"""`kill -9` under load: no acknowledged spend is forgotten, and with `observe.durable` no trace of an
answered request is lost, on SQLite and PostgreSQL. The gateway is a real `strato serve` process (the
crash is what is tested), clients keep 8 requests in flight when it dies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.auth import KeySpec, KeyStore
from strato.auth.journal import SpendJournal
from strato.store.sql import SQLStore
from tests.postgres import database_url, postgres_url
from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.upstream import Upstream

MASTER = "sk-master-crash-test"
COST = 2.0  # "echo: hi" is 2 generated tokens at $1 each
ACKNOWLEDGED = 80  # answers received before the crash

__all__ = ["database_url", "postgres_url"]


async def crash_under_load(process: GatewayProcess, headers: dict[str, str]) -> list[str]:
    """Keep 8 requests in flight until ACKNOWLEDGED answers came back, then `kill -9` the gateway;
    the trace ids of every answer received."""
    answered: list[str] = []
    body: dict[str, Any] = {
        "model": "priced",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
    }
    enough = asyncio.Event()

    async def client(http: httpx.AsyncClient) -> None:
        while not enough.is_set():
            response = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert response.status_code == 200, response.text
            answered.append(response.headers["x-strato-trace-id"])
            if len(answered) >= ACKNOWLEDGED:
                enough.set()

    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        workers = [asyncio.ensure_future(client(http)) for _ in range(8)]
        await enough.wait()
        assert process.proc is not None
        process.proc.kill()
        process.proc.wait(10)
        results = await asyncio.gather(*workers, return_exceptions=True)
    assert all(r is None or isinstance(r, httpx.HTTPError) for r in results), results
    return list(answered)


@pytest.mark.parametrize("durable", [False, True], ids=["batched-traces", "durable-traces"])
async def test_kill_9_forgets_no_acknowledged_spend(
    tmp_path: Path, upstream: Upstream, database_url: str, durable: bool
) -> None:
    models = [upstream.model("priced", input_cost=0.0, output_cost=1_000_000.0)]
    # An empty STRATO_REDIS_URL is an unset one: no Redis, whatever the machine sets.
    env = {"STRATO_MASTER_KEY": MASTER, "STRATO_DATABASE_URL": database_url, "STRATO_REDIS_URL": ""}
    keys = KeyStore.open(database_url)
    key, secret = keys.create(KeySpec(name="crash", budget_daily=1_000_000.0))
    with gateway_process(
        tmp_path,
        models,
        env=env,
        observe={"durable": durable},
        limits={"backend": "process"},
        store={"flush_interval": 0.5},
    ) as process:
        answered = await crash_under_load(process, {"authorization": f"Bearer {secret}"})

    journal = SpendJournal(keys.engine)
    assert journal.spent(key.id, 0) >= len(answered) * COST  # every answered request's spend is there
    journal.close()
    store = SQLStore.open(database_url)
    stored = {trace_id for trace_id in answered if store.trace(trace_id) is not None}
    if durable:
        assert stored == set(answered)  # not one answered request's trace lost
    store.close()
    keys.close()
