"""`STRATO_DATABASE_URL=postgresql://...`: a running gateway keeps its traces in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from strato.store.sql import SQLStore
from strato.types import TraceQuery
from tests.postgres import postgres_url
from tests.support.gateway import gateway_process
from tests.support.upstream import Upstream

__all__ = ["postgres_url"]


@pytest.mark.postgres
def test_gateway_records_traces_in_postgres(tmp_path: Path, upstream: Upstream, postgres_url: str) -> None:
    remote = {"name": "echo", "provider": "openai", "base_url": upstream.base_url, "upstream_model": "echo"}
    with gateway_process(tmp_path, [remote], env={"STRATO_DATABASE_URL": postgres_url}) as gateway:
        sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
        raw = sdk.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "stored in postgres"}]
        )
        trace_id = raw.headers["x-strato-trace-id"]
    store = SQLStore.open(postgres_url)
    try:
        trace = store.trace(trace_id)
        assert trace is not None and trace.completion == "echo: stored in postgres"
        assert [t.id for t in store.traces(TraceQuery())] == [trace_id]
    finally:
        store.close()
    assert not (gateway.data_dir / "strato.db").exists()  # nothing went to the SQLite default
