"""A Redis that accepts connections but never answers: keyed requests fail with 503 once the limits
give up, and while they wait every other request is still served (the limits run off the event loop)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import gateway_process
from tests.support.upstream import Upstream

MASTER = "sk-master-silent-redis"


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_silent_redis_holds_up_only_the_keyed_requests(
    tmp_path: Path, upstream: Upstream, silent_redis: int
) -> None:
    env = {"STRATO_MASTER_KEY": MASTER, "STRATO_REDIS_URL": f"redis://127.0.0.1:{silent_redis}/0"}
    with gateway_process(tmp_path, [upstream.model("echo")], env=env, limits={"backend": "redis"}) as gateway:
        made = httpx.post(
            f"{gateway.url}/admin/keys",
            json={"name": "k", "rpm": 100},
            headers={"authorization": f"Bearer {MASTER}"},
            timeout=10,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["key"]
        finished: list[tuple[str, float, int]] = []

        def keyed(i: int) -> None:
            response = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "echo", "messages": [{"role": "user", "content": f"hi {i}"}]},
                headers={"authorization": f"Bearer {secret}"},
                timeout=30,
            )
            finished.append(("keyed", time.monotonic(), response.status_code))
            assert response.json()["error"]["code"] == "limits_unavailable"

        def health() -> None:
            time.sleep(0.3)  # the keyed requests are waiting on Redis by now
            response = httpx.get(f"{gateway.url}/healthz", timeout=30)
            finished.append(("health", time.monotonic(), response.status_code))

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(keyed, i) for i in range(4)] + [pool.submit(health)]
            for future in futures:
                future.result()
        order = [name for name, _, _ in sorted(finished, key=lambda f: f[1])]
        assert order[0] == "health", order  # served while the keyed requests were still waiting
        assert sorted(status for _, _, status in finished) == [200, 503, 503, 503, 503]
