"""Two `strato serve` processes sharing one answer cache in the machine's Redis: what one stores,
the other serves, exactly and by meaning."""

from __future__ import annotations

import uuid
from pathlib import Path

import openai

from tests.cache.conftest import REDIS_URL
from tests.cache.gateways import cached_gateway
from tests.support.upstream import Upstream


def ask(url: str, model: str, system: str, question: str) -> tuple[str, str]:
    """(x-strato-cache header, answer) from the gateway at `url`."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
            temperature=0,
        )
    return raw.headers["x-strato-cache"], raw.parse().choices[0].message.content or ""


def test_a_miss_on_one_gateway_is_a_hit_on_the_other(
    tmp_path: Path, upstream: Upstream, redis_prefix: str
) -> None:
    env = {"STRATO_REDIS_URL": REDIS_URL}
    with (
        cached_gateway(tmp_path / "a", upstream, env=env, redis_prefix=redis_prefix) as a,
        cached_gateway(tmp_path / "b", upstream, env=env, redis_prefix=redis_prefix) as b,
    ):
        system = f"You are a support agent ({uuid.uuid4().hex[:8]})."
        before = upstream.calls
        assert ask(a.url, "cached-echo", system, "What is the capital of France?") == (
            "miss",
            "echo: What is the capital of France?",
        )
        assert ask(b.url, "cached-echo", system, "What is the capital of France?") == (
            "hit-exact",
            "echo: What is the capital of France?",
        )
        assert upstream.calls == before + 1

        assert ask(b.url, "semantic-echo", system, "How do I reset my password?")[0] == "miss"
        assert ask(a.url, "semantic-echo", system, "What's the way to reset my password?") == (
            "hit-semantic",
            "echo: How do I reset my password?",
        )
        assert upstream.calls == before + 2
        assert not (a.data_dir / "cache.db").exists() and not (b.data_dir / "cache.db").exists()
