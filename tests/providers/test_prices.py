"""What a budget hold prices a request at: a model's own price, or for a group or a router the
dearest of the models it may reach."""

from __future__ import annotations

import asyncio
from typing import Any

from strato.config import ModelEntry
from strato.providers.registry import build_models
from strato.types import Price


def remote(name: str, **price: float) -> dict[str, Any]:
    return {"name": name, "provider": "openai", "base_url": "http://127.0.0.1:9/v1", **price}


def test_groups_and_routers_hold_at_their_dearest_target() -> None:
    entries = [
        remote("cheap", input_cost=1.0, output_cost=2.0),
        remote("dear", input_cost=3.0, output_cost=1.5),
        remote("unpriced"),
        {"name": "pool", "provider": "group", "deployments": ["cheap", "unpriced"], "fallbacks": ["dear"]},
        {"name": "priced-pool", "provider": "group", "deployments": ["cheap", "dear"], "input_cost": 0.5},
        {"name": "smart", "provider": "router", "cheap": "cheap", "strong": "pool"},
        {"name": "blind", "provider": "group", "deployments": ["unpriced"]},
    ]
    table = build_models([ModelEntry.model_validate(e) for e in entries])
    try:
        assert table.worst_price("cheap") == Price(1.0, 2.0)
        assert table.worst_price("pool") == Price(3.0, 2.0)  # the dearest input and output, fallbacks too
        assert table.worst_price("smart") == Price(3.0, 2.0)  # through the group it may route to
        assert table.worst_price("priced-pool") == table.price("priced-pool")  # its own price wins
        assert table.worst_price("blind") is None and table.worst_price("missing") is None
        assert table.price("pool") is None  # traces still price at the deployment that answered
    finally:
        asyncio.run(table.aclose())


def test_a_configured_cost_replaces_only_its_own_side_of_a_price() -> None:
    local = Price(0.2, 0.4)
    assert local.overridden(None, None) == local
    assert local.overridden(1.0, None) == Price(1.0, 0.4)
    assert local.overridden(None, 0.0) == Price(0.2, 0.0)  # zero is a price, not "unset"
