"""Refused admin and traces API requests land in the audit log (`strato audit`), by the key id a
caller showed and never its secret; admin key changes are audited as made by the master key.

The gateway runs in process; the one test of `strato audit`'s table runs that command line on the
gateway's database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import strato
from tests.support.inprocess import InProcess, in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-refusals"
ADMIN = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> AsyncIterator[InProcess]:
    data_dir: Path = tmp_path_factory.mktemp("refusals") / "data"
    async with in_process(data_dir, [upstream.model("echo")], server={"master_key": MASTER}) as served:
        yield served


def audit(gateway: InProcess, kind: str | None = None) -> list[dict[str, Any]]:
    """The audit log, newest first (as `strato audit --json --limit 1000` prints it), once the writer
    has stored every entry submitted so far."""
    assert gateway.runtime.audit.flush(10), "the audit writer did not catch up"
    return [e.as_dict() for e in gateway.runtime.audit.log.query(kind=kind, limit=1000)]


def refusals_of(gateway: InProcess, subject: str) -> list[dict[str, Any]]:
    """The `auth.refused` entries about `subject`, oldest first."""
    return [e for e in audit(gateway, "auth.refused") if e["subject"] == subject][::-1]


async def new_key(gateway: InProcess, name: str) -> tuple[str, str]:
    response = await gateway.http.post("/admin/keys", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def test_refused_admin_calls_are_audited_with_the_key_id_never_the_secret(gateway: InProcess) -> None:
    key_id, secret = await new_key(gateway, "not-admin")
    tries = [
        ("GET", {}, None),
        ("GET", {"authorization": "Bearer sk-strato-wrong"}, None),
        ("GET", {"authorization": f"Bearer {secret}"}, key_id),
        # Refused before the body is read: not a 400 for the malformed JSON.
        ("POST", {"authorization": f"Bearer {secret}", "content-type": "application/json"}, key_id),
    ]
    for method, headers, _ in tries:
        response = await gateway.http.request(method, "/admin/keys", headers=headers, content=b"{nope")
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "admin_forbidden"
    entries = refusals_of(gateway, "/admin/keys")
    assert [(e["actor"], e["detail"]) for e in entries] == [
        (actor, {"status": 403, "code": "admin_forbidden", "method": method}) for method, _, actor in tries
    ]
    assert secret not in json.dumps(audit(gateway)) and "sk-strato-wrong" not in json.dumps(audit(gateway))


async def test_every_admin_path_is_guarded_even_unknown_ones(gateway: InProcess) -> None:
    assert (await gateway.http.delete("/admin/models/echo")).status_code == 403
    assert (await gateway.http.get("/admin/nothing-here")).status_code == 403
    assert (await gateway.http.get("/admin/nothing-here", headers=ADMIN)).status_code == 404
    assert [e["detail"]["method"] for e in refusals_of(gateway, "/admin/models/echo")] == ["DELETE"]
    assert len(refusals_of(gateway, "/admin/nothing-here")) == 1
    assert (await gateway.http.get("/v1/models", headers=ADMIN)).status_code == 200  # still serving


async def test_a_long_path_is_cut_to_fit_the_audit_table(gateway: InProcess) -> None:
    path = "/admin/" + "x" * 1000
    assert (await gateway.http.get(path)).status_code == 403
    assert len(refusals_of(gateway, path[:256])) == 1


async def test_bad_keys_on_the_traces_api_are_audited(gateway: InProcess) -> None:
    response = await gateway.http.get("/v1/traces", headers={"authorization": "Bearer sk-strato-bad"})
    assert response.status_code == 401
    [entry] = refusals_of(gateway, "/v1/traces")
    assert entry["actor"] is None
    assert entry["detail"] == {"status": 401, "code": "invalid_api_key", "method": "GET"}


async def test_allowed_calls_are_not_refusals(gateway: InProcess) -> None:
    key_id, secret = await new_key(gateway, "reader")
    assert (await gateway.http.get("/admin/keys", headers=ADMIN)).status_code == 200
    traces = await gateway.http.get("/v1/traces", headers={"authorization": f"Bearer {secret}"})
    assert traces.status_code == 200
    assert [e for e in audit(gateway, "auth.refused") if e["actor"] == key_id] == []  # after a flush


async def test_admin_key_changes_are_audited_as_the_master_key(gateway: InProcess) -> None:
    key_id, _ = await new_key(gateway, "changed")
    assert (await gateway.http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN)).status_code == 200
    assert (await gateway.http.delete(f"/admin/keys/{key_id}", headers=ADMIN)).status_code == 200
    mine = [(e["kind"], e["actor"]) for e in audit(gateway) if e["subject"] == key_id]
    assert mine == [("key.revoke", "master"), ("key.rotate", "master"), ("key.create", "master")]


async def test_the_audit_table_shows_refused_paths(gateway: InProcess) -> None:
    """`strato audit` itself, a command line of its own, on the database the gateway writes."""
    assert (await gateway.http.get("/admin/keys")).status_code == 403
    assert refusals_of(gateway, "/admin/keys")  # stored, for the command to read
    result = strato(
        "audit",
        "--kind",
        "auth.refused",
        "--limit",
        "1",
        data_dir=gateway.runtime.settings.store.data_dir,
        env={"STRATO_MASTER_KEY": MASTER},
    )
    assert result.returncode == 0, result.stderr
    assert "auth.refused" in result.stdout and "/admin/keys" in result.stdout
    assert "admin_forbidden" in result.stdout
