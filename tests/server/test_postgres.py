"""`store.database_url: postgresql://...`: the gateway keeps its traces in PostgreSQL, and nothing
in the SQLite default. (`STRATO_DATABASE_URL` reaching a running `strato serve` is tested with the
processes of test_crash_durability and test_shared_gateways.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.store.sql import SQLStore
from strato.types import TraceQuery
from tests.postgres import postgres_url
from tests.support.inprocess import in_process
from tests.support.upstream import Upstream

__all__ = ["postgres_url"]


@pytest.mark.postgres
async def test_gateway_records_traces_in_postgres(
    tmp_path: Path, upstream: Upstream, postgres_url: str
) -> None:
    remote = {"name": "echo", "provider": "openai", "base_url": upstream.base_url, "upstream_model": "echo"}
    async with in_process(tmp_path, [remote], store={"database_url": postgres_url}) as gateway:
        raw = await gateway.sdk().chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "stored in postgres"}]
        )
        trace_id = raw.headers["x-strato-trace-id"]
    store = SQLStore.open(postgres_url)  # after the gateway closed: every trace it accepted is written
    try:
        trace = store.trace(trace_id)
        assert trace is not None and trace.completion == "echo: stored in postgres"
        assert [t.id for t in store.traces(TraceQuery())] == [trace_id]
    finally:
        store.close()
    assert not (tmp_path / "strato.db").exists()  # nothing went to the SQLite default
