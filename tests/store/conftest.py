from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres import postgres_url

__all__ = ["postgres_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'strato.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
