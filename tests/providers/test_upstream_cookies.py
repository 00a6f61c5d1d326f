"""A gateway serves many callers through one connection pool per upstream: a cookie an upstream
sets in one caller's answer (a vendor's load balancer, a session) must not ride along on the next
caller's request."""

from __future__ import annotations

from pathlib import Path

from tests.support.inprocess import in_process
from tests.support.upstream import Upstream


async def test_cookies_an_upstream_sets_are_not_sent_back(tmp_path: Path, upstream: Upstream) -> None:
    # By host name: cookie jars refuse cookies from a bare IP address, which would hide the leak.
    model = {
        "name": "cookied",
        "provider": "openai",
        "base_url": f"http://localhost:{upstream.port}/v1",
        "upstream_model": "cookie",
    }
    async with in_process(tmp_path, [model]) as gateway:
        for who in ("alice", "bob"):
            answer = await gateway.sdk().chat.completions.create(
                model="cookied", messages=[{"role": "user", "content": f"I am {who}"}]
            )
            assert answer.choices[0].message.content == f"echo: I am {who}"
    sent = upstream.headers[-2:]
    assert [h.get("cookie") for h in sent] == [None, None], sent
