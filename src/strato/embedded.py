"""strato inside a Python program, no server: the official `openai` client over an in-process
transport, on the same request path as `strato serve` (auth, guards, cache, routing, traces,
budgets). LiteLLM's users mostly use it this way.

    async with Strato.open("strato.yaml") as stack:
        client = stack.client()
        answer = await client.chat.completions.create(model="smollm2", messages=[...])

Every call is traced in the configured store, where `strato traces list` and the server see it.
A streamed answer arrives token by token, as it would from the server (`strato.server.inprocess`).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from strato.config import Settings, load_settings
from strato.runtime import Runtime, build_runtime

if TYPE_CHECKING:
    import httpx
    import httpx2
    import openai

BASE_URL = "http://strato.in-process"


class Strato:
    """The whole stack, built once (`strato.runtime`), with the HTTP API served in this process."""

    def __init__(self, runtime: Runtime) -> None:
        from strato.server import create_app

        self.runtime = runtime
        self.app = create_app(runtime)
        self._clients: list[httpx.AsyncClient | httpx2.AsyncClient] = []

    @classmethod
    def open(cls, config: Path | str | None = None, *, settings: Settings | None = None) -> Strato:
        """From `settings`, or from a config file (default: $STRATO_CONFIG, then ./strato.yaml, then
        the built-in defaults: the embedded SmolLM2 model)."""
        chosen = settings if settings is not None else load_settings(Path(config) if config else None)
        return cls(build_runtime(chosen))

    def http(self) -> httpx.AsyncClient:
        """An httpx client of the in-process API (`/v1/...`, `/admin/...`), closed with the stack."""
        import httpx

        from strato.server.inprocess import transport

        client = httpx.AsyncClient(transport=transport(self.app, httpx), base_url=BASE_URL, timeout=600)
        self._clients.append(client)
        return client

    def client(self, api_key: str | None = None, **options: Any) -> openai.AsyncOpenAI:
        """The official async `openai` client, talking to this stack in process. `api_key`: the key
        its calls present once a master key is set (default: the master key)."""
        try:
            import httpx2  # the HTTP client the openai package is built on
            import openai
        except ImportError:
            raise RuntimeError("Strato.client() needs the openai package: pip install openai") from None
        from strato.server.inprocess import transport

        key = api_key or self.runtime.settings.server.master_key or "unused"
        options.setdefault("max_retries", 0)
        http = httpx2.AsyncClient(transport=transport(self.app, httpx2), base_url=BASE_URL, timeout=600)
        self._clients.append(http)
        return openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key=key, http_client=http, **options)

    async def aclose(self) -> None:
        """Close the clients, then the stack: every trace still queued is stored."""
        for client in self._clients:
            await client.aclose()
        await self.runtime.aclose()

    async def __aenter__(self) -> Strato:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
