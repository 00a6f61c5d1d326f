"""Two `strato serve` processes in front of one key table, sharing the key's rpm and budget through
the machine's Redis, or, without Redis, through PostgreSQL: a limit holds across both, not per
process, under 100 concurrent requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import openai
import pytest

from strato.auth import KeySpec, KeyStore
from strato.store.sql import SQLStore
from tests.auth.conftest import REDIS_URL
from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.upstream import Upstream

MASTER = "sk-master-shared-test"
COST = 2.0  # USD a request: "echo: hi" is 2 generated tokens at $1 each, and max_tokens=2 holds $2


class Pair:
    def __init__(self, a: GatewayProcess, b: GatewayProcess, url: str) -> None:
        self.gateways, self.url = (a, b), url
        self.keys = KeyStore.open(url)

    def key(self, **spec: Any) -> tuple[str, str]:
        key, secret = self.keys.create(KeySpec(name="shared", **spec))
        return key.id, secret

    def traced(self, key_id: str, count: int) -> tuple[int, float]:
        """(requests, USD) in the key's traces, once both gateways have written `count` of them."""
        store = SQLStore.open(self.url)
        try:
            deadline = time.monotonic() + 20
            while True:
                spend = {s.group: s for s in store.spend("key")}.get(key_id)
                if (spend is not None and spend.requests >= count) or time.monotonic() > deadline:
                    return (spend.requests, spend.cost) if spend is not None else (0, 0.0)
                time.sleep(0.1)
        finally:
            store.close()


def start_pair(tmp: Path, upstream: Upstream, env: dict[str, str], limits: dict[str, Any]) -> Iterator[Pair]:
    models = [
        upstream.model("echo"),
        upstream.model("priced", input_cost=0.0, output_cost=1_000_000.0),
    ]
    # Without a STRATO_REDIS_URL in `env`: PostgreSQL alone, whatever the machine sets (empty is unset).
    env = {"STRATO_MASTER_KEY": MASTER, "STRATO_REDIS_URL": "", **env}
    with ExitStack() as stack:
        started: list[GatewayProcess] = []
        for name in ("a", "b"):
            (tmp / name).mkdir()
            started.append(stack.enter_context(gateway_process(tmp / name, models, env=env, limits=limits)))
        pair = Pair(started[0], started[1], env["STRATO_DATABASE_URL"])
        yield pair
        pair.keys.close()


@pytest.fixture(params=["redis", "postgresql"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, upstream: Upstream) -> Iterator[Pair]:
    if request.param == "redis":
        prefix = request.getfixturevalue("limits_prefix")
        env = {"STRATO_REDIS_URL": REDIS_URL, "STRATO_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"}
        limits = {"redis_prefix": prefix}
    else:
        env = {"STRATO_DATABASE_URL": request.getfixturevalue("postgres_url")}
        limits = {}
    yield from start_pair(tmp_path, upstream, env, limits)


async def burst(pair: Pair, secret: str, model: str, count: int) -> list[str]:
    """`count` concurrent chats, alternating between the two gateways: "ok" or each refusal's code."""
    clients = [
        openai.AsyncOpenAI(base_url=f"{g.url}/v1", api_key=secret, max_retries=0, timeout=30)
        for g in pair.gateways
    ]

    async def one(i: int) -> str:
        try:
            await clients[i % 2].chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        except openai.RateLimitError as exc:
            assert isinstance(exc.body, dict), exc.body
            return str(exc.body["code"])
        return "ok"

    try:
        return await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for client in clients:
            await client.close()


async def test_rpm_admits_exactly_n_across_both_gateways(pair: Pair) -> None:
    assert all("auth is on" in gateway.log_text() for gateway in pair.gateways)  # what startup says
    _, secret = pair.key(rpm=7)
    outcomes = await burst(pair, secret, "echo", 30)
    assert outcomes.count("ok") == 7
    assert outcomes.count("rate_limit_exceeded") == 23


async def test_budget_for_ten_requests_admits_ten_of_a_hundred(pair: Pair) -> None:
    key_id, secret = pair.key(budget_daily=10 * COST)
    outcomes = await burst(pair, secret, "priced", 100)
    assert 10 <= outcomes.count("ok") <= 11
    assert outcomes.count("budget_exceeded") == 100 - outcomes.count("ok")
    requests, spent = pair.traced(key_id, 100)
    assert requests == 100
    assert spent <= 11 * COST  # never more than one request over the budget
    assert (await burst(pair, secret, "priced", 2)) == ["budget_exceeded"] * 2
