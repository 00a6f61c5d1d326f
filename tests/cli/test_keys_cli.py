"""`strato keys` writes the database a running `strato serve` reads; the server sees changes promptly."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from strato.cli.serve import is_loopback
from tests.cli.test_cli import strato
from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.upstream import Upstream

MASTER = "sk-master-cli"
ADMIN_ENV = {"STRATO_MASTER_KEY": MASTER}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GatewayProcess]:
    with gateway_process(
        tmp_path_factory.mktemp("keys-cli"),
        [upstream.model("echo"), upstream.model("other")],
        env={"STRATO_MASTER_KEY": MASTER},
    ) as process:
        yield process


def keys(gateway: GatewayProcess, *args: str) -> Any:
    result = strato("keys", *args, data_dir=gateway.data_dir, env=ADMIN_ENV)
    assert result.returncode == 0, result.stderr
    return result


def call(gateway: GatewayProcess, secret: str, model: str = "echo") -> str:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0, timeout=30) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    return raw.headers["x-strato-trace-id"]


def refused_soon(gateway: GatewayProcess, secret: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            call(gateway, secret)
        except openai.AuthenticationError:
            return
        time.sleep(0.2)
    raise AssertionError("the server still accepts the key")


def test_create_list_rotate_revoke(gateway: GatewayProcess) -> None:
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
    assert gateway.trace(call(gateway, secret)).api_key == created["id"]  # seen by the running server
    with pytest.raises(openai.PermissionDeniedError):
        call(gateway, secret, "other")

    table = keys(gateway, "list").stdout
    assert created["id"] in table and "ci" in table and secret not in table

    rotated = json.loads(keys(gateway, "rotate", created["id"], "--json").stdout)
    assert rotated["id"] == created["id"] and rotated["key"] != secret and rotated["models"] == ["echo"]
    refused_soon(gateway, secret)
    call(gateway, rotated["key"])

    assert created["id"] in keys(gateway, "revoke", created["id"]).stdout
    refused_soon(gateway, rotated["key"])
    assert created["id"] not in keys(gateway, "list").stdout
    assert created["id"] in keys(gateway, "list", "--revoked").stdout


def test_plain_create_prints_the_secret_once(gateway: GatewayProcess) -> None:
    out = keys(gateway, "create", "--name", "plain").stdout
    secret = next(line.split()[-1] for line in out.splitlines() if line.startswith("secret:"))
    call(gateway, secret)
    assert secret not in keys(gateway, "list").stdout


def test_bad_input_is_one_line_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    result = strato("keys", "create", "--name", "x", "--expires", "soon", data_dir=data_dir, env=ADMIN_ENV)
    assert result.returncode != 0 and "soon" in result.stderr
    missing = strato("keys", "revoke", "key-nope", data_dir=data_dir, env=ADMIN_ENV)
    assert missing.returncode == 1 and "no live key" in missing.stderr


@pytest.mark.parametrize("verb", [["keys", "list"], ["keys", "create", "--name", "x"], ["audit"]])
def test_the_admin_cli_needs_the_admin_key_the_gateway_runs_with(
    gateway: GatewayProcess, verb: list[str]
) -> None:
    env = {"STRATO_MASTER_KEY": "", "STRATO_ADMIN_KEY": ""}
    none = strato(*verb, data_dir=gateway.data_dir, env=env)
    assert none.returncode == 2 and "needs the admin key" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1 and "Traceback" not in none.stderr
    wrong = strato(*verb, data_dir=gateway.data_dir, env={**env, "STRATO_MASTER_KEY": "sk-not-it"})
    assert wrong.returncode == 2 and "not the one" in wrong.stderr
    assert strato(*verb, data_dir=gateway.data_dir, env=ADMIN_ENV).returncode == 0


def test_serve_without_master_key_says_auth_is_off(tmp_path: Path, upstream: Upstream) -> None:
    with gateway_process(tmp_path, [upstream.model("echo")]) as process:
        assert "auth is off" in process.log_text()
        assert call(process, "anything")  # open, as before


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_traces_need_the_admin_key_once_the_gateway_runs_with_auth(gateway: GatewayProcess) -> None:
    env = {"STRATO_MASTER_KEY": "", "STRATO_ADMIN_KEY": ""}
    refused = strato("traces", "list", data_dir=gateway.data_dir, env=env)
    assert refused.returncode == 2 and "auth on" in refused.stderr and "Traceback" not in refused.stderr
    wrong = strato("traces", "list", data_dir=gateway.data_dir, env={**env, "STRATO_MASTER_KEY": "sk-no"})
    assert wrong.returncode == 2 and "not the one" in wrong.stderr
    assert strato("traces", "list", data_dir=gateway.data_dir, env=ADMIN_ENV).returncode == 0
