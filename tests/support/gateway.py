"""Run `strato serve` as a user would: a subprocess with a config file and its own data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from strato.store.sql import SQLStore
from strato.types import Trace
from tests.support.upstream import free_port


class GatewayProcess:
    def __init__(
        self,
        tmp: Path,
        models: list[dict[str, Any]],
        env: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """`settings`: further top-level sections of the config file (`guards`, `cache`, ...)."""
        self.port = free_port()
        self.data_dir = tmp / "data"
        self.config = tmp / "strato.yaml"
        config = {"store": {"flush_interval": 0.05}, "models": models, **(settings or {})}
        self.config.write_text(yaml.safe_dump(config))
        self.env = {**os.environ, "STRATO_DATA_DIR": str(self.data_dir), "HF_HUB_OFFLINE": "1", **(env or {})}
        self.log = tmp / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._store: SQLStore | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra: list[str] | None = None) -> GatewayProcess:
        cmd = [
            sys.executable,
            "-m",
            "strato",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(self.port),
            *(extra or []),
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strato serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"strato serve did not come up: {self.log.read_text()}")

    @property
    def running(self) -> bool:
        """Started, and not exited (or stopped, or killed) since."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM, as a service manager would, unless it has exited already; returns the exit code
        (the same one again if it was stopped before)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> SQLStore:
        if self._store is None:
            self._store = SQLStore.open(f"sqlite:///{self.data_dir / 'strato.db'}")
        return self._store

    def trace(self, trace_id: str, timeout: float = 10.0) -> Trace:
        """The stored trace, waiting for the batched writer to get to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.store.trace(trace_id)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"trace {trace_id} was not stored within {timeout}s")

    def failing_chat(self, model: str, status: int, *, stream: bool) -> tuple[httpx.Response, Trace]:
        """Post a one-message chat that must fail with `status`: the response and its stored trace."""
        body = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": stream}
        response = httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=30)
        assert response.status_code == status, response.text
        return response, self.trace(response.headers["x-strato-trace-id"])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def gateway_process(
    tmp: Path,
    models: list[dict[str, Any]],
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    **config: Any,
) -> Iterator[GatewayProcess]:
    """`strato serve` for the length of the block, configured with `models` and further top-level config
    sections as keywords (`guards=...`, `cache=...`, `observe=...`): started, then stopped with SIGTERM
    and its store closed, however the block ends."""
    process = GatewayProcess(tmp, models, env=env, settings=config)
    try:
        process.start(args)
        yield process
    finally:
        try:
            if process.running:  # the block may have stopped or killed it itself
                process.stop()
        finally:
            process.close_store()
