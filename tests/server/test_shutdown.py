"""A clean shutdown (SIGTERM) stores every trace the gateway accepted."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from strato.types import TraceQuery
from tests.support.gateway import gateway_process
from tests.support.upstream import Upstream


def test_sigterm_loses_no_trace(tmp_path: Path, upstream: Upstream) -> None:
    remote = {"name": "echo", "provider": "openai", "base_url": upstream.base_url, "upstream_model": "echo"}
    # A long flush interval: without the drain on shutdown, most of these would still be queued.
    with gateway_process(tmp_path, [remote], store={"flush_interval": 30}) as gateway:

        def ask(i: int) -> str:
            body = {"model": "echo", "messages": [{"role": "user", "content": f"message {i}"}]}
            response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
            assert response.status_code == 200
            return response.headers["x-strato-trace-id"]

        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(ask, range(200)))
        assert gateway.store.count() < len(ids)  # still queued: the writer waits for its interval
        # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is complete.
        assert gateway.stop() in (0, -signal.SIGTERM)
        assert "could not store" not in gateway.log_text()
        stored = {t.id for t in gateway.store.traces(TraceQuery(limit=1000))}
        assert ids <= stored
