"""The whole gateway in the test's own process: `build_runtime` + `create_app`, called over HTTP
through httpx's ASGI transport (and the official `openai` SDK on top of it). No server process, no
port: a test pays for the request path only. Use a `GatewayProcess` where the process itself (signals,
uvicorn, several replicas) is what is tested."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import openai

from strato.config import Settings
from strato.gateway import Gateway
from strato.runtime import Runtime, build_runtime
from strato.server.app import create_app
from strato.server.inprocess import transport
from strato.types import Trace

BASE_URL = "http://strato.test"


@dataclass
class InProcess:
    runtime: Runtime
    http: httpx.AsyncClient
    app: Any

    @property
    def gateway(self) -> Gateway:
        return self.runtime.gateway

    def client_from(self, address: str) -> httpx.AsyncClient:
        """Another client of the same app, whose requests come from `address` (the default one's
        come from 127.0.0.1)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60)

    def streaming(self) -> httpx.AsyncClient:
        """Another client of the same app whose streamed responses arrive as the app sends them, and
        closing one early is a disconnect (`strato.server.inprocess.transport`; the default client's
        ASGI transport hands a response over only once the app has finished). Close it when done."""
        return httpx.AsyncClient(transport=transport(self.app, httpx), base_url=BASE_URL, timeout=60)

    def sdk(self, api_key: str = "unused", http: httpx.AsyncClient | None = None) -> openai.AsyncOpenAI:
        """The official client, over the same in-process transport (or `http`'s). Do not close it:
        that closes the HTTP client it shares."""
        client = cast(Any, http or self.http)  # the SDK takes an httpx client too, though typed for httpx2's
        return openai.AsyncOpenAI(
            base_url=f"{BASE_URL}/v1", api_key=api_key, http_client=client, max_retries=0
        )

    def stored(self, trace_id: str) -> Trace | None:
        """The trace as stored, once everything submitted so far has been written."""
        assert self.runtime.recorder.flush(10), "the trace writer did not catch up"
        return self.runtime.traces.trace(trace_id)

    def trace(self, trace_id: str) -> Trace:
        """The trace as stored; fails the test if it was not (`GatewayProcess.trace`'s twin)."""
        found = self.stored(trace_id)
        assert found is not None, f"trace {trace_id} was not stored"
        return found

    async def failing_chat(self, model: str, status: int, *, stream: bool) -> tuple[httpx.Response, Trace]:
        """Post a one-message chat that must fail with `status`: the response and its stored trace
        (`GatewayProcess.failing_chat`'s twin)."""
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}
        response = await self.http.post("/v1/chat/completions", json=body)
        assert response.status_code == status, response.text
        return response, self.trace(response.headers["x-strato-trace-id"])


@asynccontextmanager
async def in_process(
    data_dir: Path, models: list[dict[str, Any]], **sections: Any
) -> AsyncIterator[InProcess]:
    """A gateway serving `models` with `sections` of configuration (`server`, `guards`, ...), its
    SQLite store in `data_dir`. Closing it stores every trace still queued."""
    runtime = build_runtime(settings_for(data_dir, models, **sections))
    app = create_app(runtime)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as http:
            yield InProcess(runtime, http, app)
    finally:
        await runtime.aclose()


def settings_for(data_dir: Path, models: list[dict[str, Any]], **sections: Any) -> Settings:
    """Settings serving `models` with `sections` of configuration, the SQLite store in `data_dir`,
    written every 50 ms."""
    store = {"data_dir": str(data_dir), "flush_interval": 0.05, **sections.pop("store", {})}
    return Settings.model_validate({"store": store, "models": models, **sections})


async def close_parts(gateway: Gateway) -> None:
    """Close what a test built a `Gateway` from by hand (`Runtime.aclose` does it for a built one)."""
    await gateway.models.aclose()
    gateway.guards.close()
    gateway.recorder.close()
    gateway.recorder.store.close()
