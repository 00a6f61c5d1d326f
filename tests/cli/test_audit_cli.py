"""`strato audit` against the database a running `strato serve` writes: key changes made through the
admin API, a request the PII guard blocked and a refused key all show up, and nothing secret does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.cli.test_cli import strato
from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.upstream import Upstream

MASTER = "sk-master-audit"
ADMIN = {"authorization": f"Bearer {MASTER}"}
CARD = "4111 1111 1111 1111"
GUARDS = {"pii": {"enforce": True, "input": {"action": "redact", "entities": {"CREDIT_CARD": "block"}}}}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GatewayProcess]:
    with gateway_process(
        tmp_path_factory.mktemp("audit"),
        [upstream.model("echo")],
        env={"STRATO_MASTER_KEY": MASTER},
        guards=GUARDS,
    ) as process:
        yield process


def audit(gateway: GatewayProcess, *args: str) -> list[dict[str, Any]]:
    result = strato("audit", "--json", *args, data_dir=gateway.data_dir, env={"STRATO_MASTER_KEY": MASTER})
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def audited_soon(gateway: GatewayProcess, kind: str) -> list[dict[str, Any]]:
    """Entries of this kind, waiting for the server's audit writer to get to them."""
    deadline = time.monotonic() + 10
    while True:
        found = audit(gateway, "--kind", kind)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def chat(gateway: GatewayProcess, key: str, content: str) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30) as client:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": content}])


def test_admin_key_changes_a_blocked_request_and_a_refusal_are_audited(gateway: GatewayProcess) -> None:
    created = httpx.post(f"{gateway.url}/admin/keys", json={"name": "ci"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    key_id, secret = created.json()["id"], created.json()["key"]
    assert httpx.delete(f"{gateway.url}/admin/keys/{key_id}", headers=ADMIN).status_code == 200
    with pytest.raises(openai.BadRequestError) as blocked:
        chat(gateway, MASTER, f"my card is {CARD}")
    trace_id = blocked.value.response.headers["x-strato-trace-id"]
    with pytest.raises(openai.AuthenticationError):
        chat(gateway, secret, "hi")  # revoked

    guard = audited_soon(gateway, "guard.block")
    assert [(e["actor"], e["subject"], e["trace_id"]) for e in guard] == [("master", "echo", trace_id)]
    finding = guard[0]["detail"]["guards"][0]["findings"][0]
    assert finding["type"] == "CREDIT_CARD" and finding["action"] == "block"
    refused = audited_soon(gateway, "auth.refused")
    assert len(refused) == 1 and refused[0]["detail"] == {"status": 401, "code": "invalid_api_key"}

    entries = audit(gateway)
    assert [e["kind"] for e in entries] == ["auth.refused", "guard.block", "key.revoke", "key.create"]
    assert [(e["actor"], e["subject"]) for e in entries[2:]] == [("master", key_id)] * 2
    assert CARD not in json.dumps(entries) and secret not in json.dumps(entries)
    assert [e["kind"] for e in audit(gateway, "--actor", "master", "--limit", "2")] == [
        "guard.block",
        "key.revoke",
    ]
    assert audit(gateway, "--since", "1m") == entries


def test_a_key_refused_a_model_is_audited_under_that_key(gateway: GatewayProcess) -> None:
    created = httpx.post(
        f"{gateway.url}/admin/keys", json={"name": "narrow", "models": ["other"]}, headers=ADMIN
    )
    key_id, secret = created.json()["id"], created.json()["key"]
    with pytest.raises(openai.PermissionDeniedError):
        chat(gateway, secret, "hi")
    deadline = time.monotonic() + 10
    while not (refused := audit(gateway, "--actor", key_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(e["kind"], e["subject"], e["detail"]) for e in refused] == [
        ("auth.refused", "echo", {"status": 403, "code": "model_not_allowed"})
    ]
    assert refused[0]["trace_id"]


def test_cli_key_changes_are_audited_as_cli(gateway: GatewayProcess) -> None:
    made = strato(
        "keys",
        "create",
        "--name",
        "by-cli",
        "--json",
        data_dir=gateway.data_dir,
        env={"STRATO_MASTER_KEY": MASTER},
    )
    assert made.returncode == 0, made.stderr
    key_id = json.loads(made.stdout)["id"]
    assert (
        strato(
            "keys", "rotate", key_id, data_dir=gateway.data_dir, env={"STRATO_MASTER_KEY": MASTER}
        ).returncode
        == 0
    )
    entries = audit(gateway, "--actor", "cli")
    assert [(e["kind"], e["subject"]) for e in entries] == [("key.rotate", key_id), ("key.create", key_id)]


def test_the_table_shows_entries(gateway: GatewayProcess) -> None:
    result = strato(
        "audit", "--kind", "key.create", data_dir=gateway.data_dir, env={"STRATO_MASTER_KEY": MASTER}
    )
    assert result.returncode == 0, result.stderr
    assert "key.create" in result.stdout and "master" in result.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--since", "yesterday"], "--since"),
        (["--kind", "key.delete"], "--kind"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_bad_input_is_a_short_error(gateway: GatewayProcess, args: list[str], complaint: str) -> None:
    result = strato("audit", *args, data_dir=gateway.data_dir, env={"STRATO_MASTER_KEY": MASTER})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"strato: error: {complaint} ") and result.stderr.count("\n") == 1


def test_a_redacted_request_is_audited_without_the_value(gateway: GatewayProcess) -> None:
    chat(gateway, MASTER, "mail ann@example.com please")
    redacted = audited_soon(gateway, "guard.redact")
    assert len(redacted) == 1 and redacted[0]["trace_id"]
    assert [f["type"] for f in redacted[0]["detail"]["guards"][0]["findings"]] == ["EMAIL_ADDRESS"]
    assert "ann@example.com" not in json.dumps(redacted)
