"""Refused admin and traces API requests land in the audit log (`strato audit`), by the key id a
caller showed and never its secret; admin key changes are audited as made by the master key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cli.test_cli import strato
from tests.support.gateway import GatewayProcess, gateway_process
from tests.support.upstream import Upstream

MASTER = "sk-master-refusals"
ADMIN = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("refusals")
    with gateway_process(tmp, [upstream.model("echo")], env={"STRATO_MASTER_KEY": MASTER}) as process:
        yield process


def audit(gateway: GatewayProcess, *args: str) -> list[dict[str, Any]]:
    result = strato(
        "audit",
        "--json",
        "--limit",
        "1000",
        *args,
        data_dir=gateway.data_dir,
        env={"STRATO_MASTER_KEY": MASTER},
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def refusals_of(gateway: GatewayProcess, subject: str, count: int) -> list[dict[str, Any]]:
    """The `auth.refused` entries about `subject`, oldest first, once the writer has stored `count`."""
    deadline = time.monotonic() + 10
    while True:
        found = [e for e in audit(gateway, "--kind", "auth.refused") if e["subject"] == subject][::-1]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def new_key(gateway: GatewayProcess, name: str) -> tuple[str, str]:
    response = httpx.post(f"{gateway.url}/admin/keys", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


def test_refused_admin_calls_are_audited_with_the_key_id_never_the_secret(gateway: GatewayProcess) -> None:
    key_id, secret = new_key(gateway, "not-admin")
    tries = [
        ("GET", {}, None),
        ("GET", {"authorization": "Bearer sk-strato-wrong"}, None),
        ("GET", {"authorization": f"Bearer {secret}"}, key_id),
        # Refused before the body is read: not a 400 for the malformed JSON.
        ("POST", {"authorization": f"Bearer {secret}", "content-type": "application/json"}, key_id),
    ]
    for method, headers, _ in tries:
        response = httpx.request(method, f"{gateway.url}/admin/keys", headers=headers, content=b"{nope")
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "admin_forbidden"
    entries = refusals_of(gateway, "/admin/keys", len(tries))
    assert [(e["actor"], e["detail"]) for e in entries] == [
        (actor, {"status": 403, "code": "admin_forbidden", "method": method}) for method, _, actor in tries
    ]
    assert secret not in json.dumps(audit(gateway)) and "sk-strato-wrong" not in json.dumps(audit(gateway))


def test_every_admin_path_is_guarded_even_unknown_ones(gateway: GatewayProcess) -> None:
    assert httpx.delete(f"{gateway.url}/admin/models/echo").status_code == 403
    assert httpx.get(f"{gateway.url}/admin/nothing-here").status_code == 403
    assert httpx.get(f"{gateway.url}/admin/nothing-here", headers=ADMIN).status_code == 404
    assert [e["detail"]["method"] for e in refusals_of(gateway, "/admin/models/echo", 1)] == ["DELETE"]
    assert len(refusals_of(gateway, "/admin/nothing-here", 1)) == 1
    assert httpx.get(f"{gateway.url}/v1/models", headers=ADMIN).status_code == 200  # still serving


def test_a_long_path_is_cut_to_fit_the_audit_table(gateway: GatewayProcess) -> None:
    path = "/admin/" + "x" * 1000
    assert httpx.get(f"{gateway.url}{path}").status_code == 403
    assert len(refusals_of(gateway, path[:256], 1)) == 1


def test_bad_keys_on_the_traces_api_are_audited(gateway: GatewayProcess) -> None:
    response = httpx.get(f"{gateway.url}/v1/traces", headers={"authorization": "Bearer sk-strato-bad"})
    assert response.status_code == 401
    [entry] = refusals_of(gateway, "/v1/traces", 1)
    assert entry["actor"] is None
    assert entry["detail"] == {"status": 401, "code": "invalid_api_key", "method": "GET"}


def test_allowed_calls_are_not_refusals(gateway: GatewayProcess) -> None:
    key_id, secret = new_key(gateway, "reader")
    assert httpx.get(f"{gateway.url}/admin/keys", headers=ADMIN).status_code == 200
    assert (
        httpx.get(f"{gateway.url}/v1/traces", headers={"authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    time.sleep(0.5)  # the writer flushes every 0.05 s
    assert [e for e in audit(gateway, "--kind", "auth.refused") if e["actor"] == key_id] == []


def test_admin_key_changes_are_audited_as_the_master_key(gateway: GatewayProcess) -> None:
    key_id, _ = new_key(gateway, "changed")
    assert httpx.post(f"{gateway.url}/admin/keys/{key_id}/rotate", headers=ADMIN).status_code == 200
    assert httpx.delete(f"{gateway.url}/admin/keys/{key_id}", headers=ADMIN).status_code == 200
    mine = [(e["kind"], e["actor"]) for e in audit(gateway) if e["subject"] == key_id]
    assert mine == [("key.revoke", "master"), ("key.rotate", "master"), ("key.create", "master")]


def test_the_audit_table_shows_refused_paths(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.url}/admin/keys").status_code == 403
    refusals_of(gateway, "/admin/keys", 1)
    result = strato(
        "audit",
        "--kind",
        "auth.refused",
        "--limit",
        "1",
        data_dir=gateway.data_dir,
        env={"STRATO_MASTER_KEY": MASTER},
    )
    assert result.returncode == 0, result.stderr
    assert "auth.refused" in result.stdout and "/admin/keys" in result.stdout
    assert "admin_forbidden" in result.stdout
