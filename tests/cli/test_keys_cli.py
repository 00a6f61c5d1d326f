"""`strato keys` writes the database a running gateway reads; the gateway sees changes promptly.

The gateway runs in process on the database the `strato keys` subprocess writes; `strato serve`
runs as a process of its own only where its own output is tested."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

import strato.auth.authority as authority
from strato.cli.serve import is_loopback
from tests.cli.test_cli import strato
from tests.support.gateway import gateway_process
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-cli"
ADMIN_ENV = {"STRATO_MASTER_KEY": MASTER}


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    data_dir = tmp_path_factory.mktemp("keys-cli") / "data"
    models = [upstream.model("echo"), upstream.model("other")]
    async with in_process(data_dir, models, server={"master_key": MASTER}) as served:
        yield served


class LookupClock:
    """The gateway's key-lookup clock, moved on by hand: a cached lookup lapses after
    `LOOKUP_TTL`, which a test skips over instead of waiting it out."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skew


@pytest.fixture
def lookups(gateway: InProcess, monkeypatch: pytest.MonkeyPatch) -> LookupClock:
    clock = LookupClock()
    monkeypatch.setattr(gateway.runtime.auth, "monotonic", clock)
    return clock


def data_dir(gateway: InProcess) -> Path:
    return gateway.runtime.settings.store.data_dir


def keys(gateway: InProcess, *args: str) -> Any:
    result = strato("keys", *args, data_dir=data_dir(gateway), env=ADMIN_ENV)
    assert result.returncode == 0, result.stderr
    return result


async def call(gateway: InProcess, secret: str, model: str = "echo") -> str:
    raw = await gateway.sdk(secret).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    return raw.headers["x-strato-trace-id"]


async def refused_soon(gateway: InProcess, lookups: LookupClock, secret: str) -> None:
    """Refused once the gateway's cached lookup of the key has lapsed (`LOOKUP_TTL`, skipped over)."""
    lookups.skew += authority.LOOKUP_TTL
    with pytest.raises(openai.AuthenticationError):
        await call(gateway, secret)


async def test_create_list_rotate_revoke(gateway: InProcess, lookups: LookupClock) -> None:
    created = json.loads(
        keys(
            gateway,
            "create",
            "--name",
            "ci",
            "--models",
            "echo",
            "--rpm",
            "100",
            "--budget-daily",
            "5",
            "--expires",
            "30d",
            "--team",
            "infra",
            "--metadata",
            "env=ci",
            "--metadata",
            "owner=me",
            "--json",
        ).stdout
    )
    assert created["key"].startswith("sk-strato-") and created["models"] == ["echo"]
    assert created["metadata"] == {"env": "ci", "owner": "me"} and created["team"] == "infra"
    assert created["expires_at"] > time.time() + 29 * 86400
    secret = created["key"]
    stored = gateway.trace(await call(gateway, secret))
    assert stored.api_key == created["id"]  # seen by the running gateway
    with pytest.raises(openai.PermissionDeniedError):
        await call(gateway, secret, "other")

    table = keys(gateway, "list").stdout
    assert created["id"] in table and "ci" in table and secret not in table

    rotated = json.loads(keys(gateway, "rotate", created["id"], "--json").stdout)
    assert rotated["id"] == created["id"] and rotated["key"] != secret and rotated["models"] == ["echo"]
    await refused_soon(gateway, lookups, secret)
    await call(gateway, rotated["key"])

    assert created["id"] in keys(gateway, "revoke", created["id"]).stdout
    await refused_soon(gateway, lookups, rotated["key"])
    assert created["id"] not in keys(gateway, "list").stdout
    assert created["id"] in keys(gateway, "list", "--revoked").stdout


async def test_plain_create_prints_the_secret_once(gateway: InProcess) -> None:
    out = keys(gateway, "create", "--name", "plain").stdout
    secret = next(line.split()[-1] for line in out.splitlines() if line.startswith("secret:"))
    await call(gateway, secret)
    assert secret not in keys(gateway, "list").stdout


def test_bad_input_is_one_line_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    result = strato("keys", "create", "--name", "x", "--expires", "soon", data_dir=data_dir, env=ADMIN_ENV)
    assert result.returncode != 0 and "soon" in result.stderr
    missing = strato("keys", "revoke", "key-nope", data_dir=data_dir, env=ADMIN_ENV)
    assert missing.returncode == 1 and "no live key" in missing.stderr


@pytest.mark.parametrize("verb", [["keys", "list"], ["keys", "create", "--name", "x"], ["audit"]])
def test_the_admin_cli_needs_the_admin_key_the_gateway_runs_with(gateway: InProcess, verb: list[str]) -> None:
    env = {"STRATO_MASTER_KEY": "", "STRATO_ADMIN_KEY": ""}
    none = strato(*verb, data_dir=data_dir(gateway), env=env)
    assert none.returncode == 2 and "needs the admin key" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1 and "Traceback" not in none.stderr
    wrong = strato(*verb, data_dir=data_dir(gateway), env={**env, "STRATO_MASTER_KEY": "sk-not-it"})
    assert wrong.returncode == 2 and "not the one" in wrong.stderr
    assert strato(*verb, data_dir=data_dir(gateway), env=ADMIN_ENV).returncode == 0


def test_serve_without_master_key_says_auth_is_off(tmp_path: Path, upstream: Upstream) -> None:
    with gateway_process(tmp_path, [upstream.model("echo")]) as process:
        assert "auth is off" in process.log_text()
        with openai.OpenAI(base_url=f"{process.url}/v1", api_key="anything", max_retries=0) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="echo", messages=[{"role": "user", "content": "hi"}]
            )
        assert raw.headers["x-strato-trace-id"]  # open, as before


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_traces_need_the_admin_key_once_the_gateway_runs_with_auth(gateway: InProcess) -> None:
    env = {"STRATO_MASTER_KEY": "", "STRATO_ADMIN_KEY": ""}
    refused = strato("traces", "list", data_dir=data_dir(gateway), env=env)
    assert refused.returncode == 2 and "auth on" in refused.stderr and "Traceback" not in refused.stderr
    wrong = strato("traces", "list", data_dir=data_dir(gateway), env={**env, "STRATO_MASTER_KEY": "sk-no"})
    assert wrong.returncode == 2 and "not the one" in wrong.stderr
    assert strato("traces", "list", data_dir=data_dir(gateway), env=ADMIN_ENV).returncode == 0
