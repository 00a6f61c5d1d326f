"""`strato audit` against the database a running gateway (in process) writes: key changes made through the
admin API, a request the PII guard blocked and a refused key all show up, and nothing secret does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.cli.test_cli import strato
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-audit"
ADMIN = {"authorization": f"Bearer {MASTER}"}
CARD = "4111 1111 1111 1111"
GUARDS = {"pii": {"enforce": True, "input": {"action": "redact", "entities": {"CREDIT_CARD": "block"}}}}


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    models = [upstream.model("echo")]
    async with in_process(data_dir, models, server={"master_key": MASTER}, guards=GUARDS) as served:
        yield served


def data_dir(gateway: InProcess) -> Path:
    return gateway.runtime.settings.store.data_dir


def audit(gateway: InProcess, *args: str) -> list[dict[str, Any]]:
    """`strato audit --json`, once the gateway's audit writer has stored every entry submitted so far."""
    assert gateway.runtime.audit.flush(10), "the audit writer did not catch up"
    result = strato("audit", "--json", *args, data_dir=data_dir(gateway), env={"STRATO_MASTER_KEY": MASTER})
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def chat(gateway: InProcess, key: str, content: str) -> None:
    await gateway.sdk(key).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": content}]
    )


async def test_admin_key_changes_a_blocked_request_and_a_refusal_are_audited(gateway: InProcess) -> None:
    created = await gateway.http.post("/admin/keys", json={"name": "ci"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    key_id, secret = created.json()["id"], created.json()["key"]
    assert (await gateway.http.delete(f"/admin/keys/{key_id}", headers=ADMIN)).status_code == 200
    with pytest.raises(openai.BadRequestError) as blocked:
        await chat(gateway, MASTER, f"my card is {CARD}")
    trace_id = blocked.value.response.headers["x-strato-trace-id"]
    with pytest.raises(openai.AuthenticationError):
        await chat(gateway, secret, "hi")  # revoked

    guard = audit(gateway, "--kind", "guard.block")
    assert [(e["actor"], e["subject"], e["trace_id"]) for e in guard] == [("master", "echo", trace_id)]
    finding = guard[0]["detail"]["guards"][0]["findings"][0]
    assert finding["type"] == "CREDIT_CARD" and finding["action"] == "block"
    refused = audit(gateway, "--kind", "auth.refused")
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


async def test_a_key_refused_a_model_is_audited_under_that_key(gateway: InProcess) -> None:
    created = await gateway.http.post(
        "/admin/keys", json={"name": "narrow", "models": ["other"]}, headers=ADMIN
    )
    key_id, secret = created.json()["id"], created.json()["key"]
    with pytest.raises(openai.PermissionDeniedError):
        await chat(gateway, secret, "hi")
    refused = audit(gateway, "--actor", key_id)
    assert [(e["kind"], e["subject"], e["detail"]) for e in refused] == [
        ("auth.refused", "echo", {"status": 403, "code": "model_not_allowed"})
    ]
    assert refused[0]["trace_id"]


def test_cli_key_changes_are_audited_as_cli(gateway: InProcess) -> None:
    made = strato(
        "keys",
        "create",
        "--name",
        "by-cli",
        "--json",
        data_dir=data_dir(gateway),
        env={"STRATO_MASTER_KEY": MASTER},
    )
    assert made.returncode == 0, made.stderr
    key_id = json.loads(made.stdout)["id"]
    assert (
        strato(
            "keys", "rotate", key_id, data_dir=data_dir(gateway), env={"STRATO_MASTER_KEY": MASTER}
        ).returncode
        == 0
    )
    entries = audit(gateway, "--actor", "cli")
    assert [(e["kind"], e["subject"]) for e in entries] == [("key.rotate", key_id), ("key.create", key_id)]


def test_the_table_shows_entries(gateway: InProcess) -> None:
    result = strato(
        "audit", "--kind", "key.create", data_dir=data_dir(gateway), env={"STRATO_MASTER_KEY": MASTER}
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
def test_bad_input_is_a_short_error(gateway: InProcess, args: list[str], complaint: str) -> None:
    result = strato("audit", *args, data_dir=data_dir(gateway), env={"STRATO_MASTER_KEY": MASTER})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"strato: error: {complaint} ") and result.stderr.count("\n") == 1


async def test_a_redacted_request_is_audited_without_the_value(gateway: InProcess) -> None:
    await chat(gateway, MASTER, "mail ann@example.com please")
    redacted = audit(gateway, "--kind", "guard.redact")
    assert len(redacted) == 1 and redacted[0]["trace_id"]
    assert [f["type"] for f in redacted[0]["detail"]["guards"][0]["findings"]] == ["EMAIL_ADDRESS"]
    assert "ann@example.com" not in json.dumps(redacted)
