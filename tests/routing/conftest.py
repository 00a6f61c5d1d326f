"""Fixtures the routing tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from strato.config import ModelEntry
from strato.providers.registry import ModelTable, build_models


@pytest.fixture
async def tables() -> AsyncIterator[Callable[..., ModelTable]]:
    """Build model tables from config entries; each is closed after the test."""
    built: list[ModelTable] = []

    def make(*entries: dict[str, Any]) -> ModelTable:
        table = build_models([ModelEntry.model_validate(e) for e in entries])
        built.append(table)
        return table

    yield make
    for table in built:
        await table.aclose()
