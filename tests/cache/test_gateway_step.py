"""The cache step inside the gateway, with the tests' real upstream: scopes keep tenants apart, a
cache that cannot be reached is skipped, and the configuration is checked when the gateway is built."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from strato.config import ConfigError, Settings, load_settings
from strato.gateway import CallContext, Gateway
from strato.runtime import Runtime, build_runtime
from strato.types import GenerationRequest, Message, SamplingParams
from tests.support.upstream import Upstream, free_port


class Clock:
    """A clock the test moves forward by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gateways(tmp_path: Path, upstream: Upstream, clock: Clock) -> AsyncIterator[Callable[..., Gateway]]:
    built: list[Runtime] = []

    def make(**cache: Any) -> Gateway:
        remote = {"provider": "openai", "base_url": upstream.base_url, "upstream_model": "echo"}
        settings = Settings.model_validate(
            {
                "store": {"data_dir": str(tmp_path), "flush_interval": 0.05},
                "models": [{"name": "echo", **remote}],
                "cache": {"models": {"echo": {"mode": "exact"}}, **cache},
            }
        )
        runtime = build_runtime(settings, clock=clock)
        built.append(runtime)
        return runtime.gateway

    yield make
    for runtime in built:
        await runtime.aclose()


async def test_answers_expire_after_the_models_ttl(
    gateways: Callable[..., Gateway], upstream: Upstream, clock: Clock
) -> None:
    gateway = gateways(ttl=60, models={"echo": {"mode": "exact", "ttl": 5}})  # the model's TTL wins
    before = upstream.calls
    assert (await answer(gateway, "What day is it?"))[0] == "miss"
    clock.now += 4.9
    assert (await answer(gateway, "What day is it?"))[0] == "hit-exact"
    clock.now += 0.2
    assert (await answer(gateway, "What day is it?"))[0] == "miss"
    assert (await answer(gateway, "What day is it?"))[0] == "hit-exact"  # answered again, kept again
    assert upstream.calls == before + 2


def ask(question: str) -> GenerationRequest:
    return GenerationRequest(model="echo", messages=(Message("user", question),), params=SamplingParams())


async def answer(gateway: Gateway, question: str, api_key: str | None = None) -> tuple[str, str]:
    ctx = CallContext(api_key=api_key)
    result = await gateway.generate(ask(question), ctx)
    return ctx.headers["x-strato-cache"], result.text


async def test_tenants_are_kept_apart(gateways: Callable[..., Gateway], upstream: Upstream) -> None:
    gateway = gateways()
    before = upstream.calls
    assert await answer(gateway, "What is our revenue?", "key-a") == ("miss", "echo: What is our revenue?")
    assert (await answer(gateway, "What is our revenue?", "key-a"))[0] == "hit-exact"
    assert (await answer(gateway, "What is our revenue?", "key-b"))[0] == "miss"
    assert (await answer(gateway, "What is our revenue?"))[0] == "miss"  # no key: a scope of its own
    assert upstream.calls == before + 3


async def test_a_cache_that_cannot_be_reached_is_skipped(
    gateways: Callable[..., Gateway], upstream: Upstream
) -> None:
    gateway = gateways(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    before = upstream.calls
    for _ in range(2):
        assert await answer(gateway, "Are you there?") == ("skip", "echo: Are you there?")
    assert upstream.calls == before + 2


def test_the_configuration_is_checked_when_the_gateway_is_built(
    gateways: Callable[..., Gateway], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"cache.models: 'nope' is not a configured chat"):
        gateways(models={"nope": {"mode": "exact"}})
    with pytest.raises(ConfigError, match=r"cache.semantic.embedder: 'all-minilm-l6-v2' is not"):
        gateways(models={"echo": {"mode": "semantic"}})


def test_redis_is_picked_by_the_environment_and_off_reads_as_a_mode(tmp_path: Path) -> None:
    config = tmp_path / "strato.yaml"
    config.write_text("cache:\n  mode: off\n  models:\n    smollm2-135m-instruct: {mode: semantic}\n")
    settings = load_settings(config, environ={"STRATO_REDIS_URL": "redis://127.0.0.1:6379/2"})
    assert settings.cache.redis_url == "redis://127.0.0.1:6379/2"
    assert settings.cache.mode == "off"
    assert settings.cache.models["smollm2-135m-instruct"].mode == "semantic"
