"""The keys admin API, in process: bad input is a 400 naming the field."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess import in_process
from tests.support.upstream import Upstream

MASTER = "sk-master-keys-test"


async def test_an_expiry_in_the_past_is_a_400(tmp_path: Path, upstream: Upstream) -> None:
    async with in_process(tmp_path, [upstream.model("echo")], server={"master_key": MASTER}) as served:
        admin = {"authorization": f"Bearer {MASTER}"}
        response = await served.http.post(
            "/admin/keys", json={"name": "x", "expires": "2020-01-01"}, headers=admin
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "expires" and "in the past" in error["message"]
        listed = await served.http.get("/admin/keys", headers=admin)
        assert listed.json()["data"] == []


async def test_an_expiry_out_of_range_is_a_400(tmp_path: Path, upstream: Upstream) -> None:
    async with in_process(tmp_path, [upstream.model("echo")], server={"master_key": MASTER}) as served:
        admin = {"authorization": f"Bearer {MASTER}"}
        for expires in ("0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"):
            response = await served.http.post(
                "/admin/keys", json={"name": "x", "expires": expires}, headers=admin
            )
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == "expires" and "out of range" in error["message"]


async def test_the_key_store_runs_off_the_event_loop(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each admin keys route's SQL runs on the thread pool: a slow database holds up that request,
    not every request on the loop."""
    async with in_process(tmp_path, [upstream.model("echo")], server={"master_key": MASTER}) as served:
        keys = served.runtime.keys
        assert keys is not None
        threads: dict[str, int] = {}
        for name in ("create", "list", "rotate", "revoke"):
            real = getattr(keys, name)

            def recorded(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
                threads[_name] = threading.get_ident()
                return _real(*args, **kwargs)

            monkeypatch.setattr(keys, name, recorded)
        admin = {"authorization": f"Bearer {MASTER}"}
        created = (await served.http.post("/admin/keys", json={"name": "x"}, headers=admin)).json()
        assert (await served.http.get("/admin/keys", headers=admin)).status_code == 200
        assert (
            await served.http.post(f"/admin/keys/{created['id']}/rotate", headers=admin)
        ).status_code == 200
        assert (await served.http.delete(f"/admin/keys/{created['id']}", headers=admin)).status_code == 200
        assert set(threads) == {"create", "list", "rotate", "revoke"}
        assert threading.get_ident() not in threads.values()
