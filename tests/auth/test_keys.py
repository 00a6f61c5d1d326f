"""The key table on a real SQLite database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from strato.auth import KeySpec, KeyStore, hash_secret
from strato.auth.keys import parse_expiry
from strato.store.sql import SQLStore
from strato.types import Endpoint, Trace


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore.open(f"sqlite:///{tmp_path / 'strato.db'}")


def test_secret_is_stored_only_as_its_hash(store: KeyStore) -> None:
    key, secret = store.create(KeySpec(name="a", models=["m"], rpm=5, metadata={"k": "v"}))
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM api_keys").all()
    assert secret not in repr(rows) and hash_secret(secret) in repr(rows)
    found = store.find(secret)
    assert (
        found is not None and found.id == key.id and found.models == ("m",) and found.metadata == {"k": "v"}
    )
    assert store.find(secret + "x") is None


def test_rotate_keeps_id_and_settings_and_retires_the_old_secret(store: KeyStore) -> None:
    key, old = store.create(KeySpec(name="a", budget_daily=3.0))
    rotated = store.rotate(key.id)
    assert rotated is not None
    new_key, new = rotated
    assert new_key.id == key.id and new_key.budget_daily == 3.0 and new_key.rotated_at is not None
    assert store.find(old) is None and store.find(new) is not None


def test_revoked_keys_cannot_be_rotated_or_revoked_again(store: KeyStore) -> None:
    key, secret = store.create(KeySpec(name="a"))
    assert store.revoke(key.id) is not None
    assert store.revoke(key.id) is None and store.rotate(key.id) is None
    found = store.find(secret)
    assert found is not None and found.revoked_at is not None
    assert store.list() == [] and [k.id for k in store.list(include_revoked=True)] == [key.id]


def test_expiry_accepts_periods_and_dates() -> None:
    now = 1_000_000.0
    assert parse_expiry("30d", now) == now + 30 * 86400
    assert parse_expiry("12h", now) == now + 12 * 3600
    assert parse_expiry(None, now) is None
    assert parse_expiry("2030-01-01", now) > time.time()
    with pytest.raises(ValueError, match="soon"):
        parse_expiry("soon", now)


def test_spent_sums_the_keys_traced_cost_since(store: KeyStore, tmp_path: Path) -> None:
    traces = SQLStore.open(f"sqlite:///{tmp_path / 'strato.db'}")
    base = dict(endpoint=Endpoint.CHAT, requested_model="m", request={}, status=200)
    traces.record(
        [
            Trace(id="a", started_at=100.0, api_key="key-1", cost=1.5, **base),  # type: ignore[arg-type]
            Trace(id="b", started_at=200.0, api_key="key-1", cost=2.0, **base),  # type: ignore[arg-type]
            Trace(id="c", started_at=200.0, api_key="key-2", cost=9.0, **base),  # type: ignore[arg-type]
        ]
    )
    assert store.spent("key-1", 0.0) == 3.5
    assert store.spent("key-1", 150.0) == 2.0
    assert store.spent("key-3", 0.0) == 0.0
    traces.close()


def test_admin_keys_are_recorded_as_hashes_and_replaced(store: KeyStore) -> None:
    assert store.admin_key_matches(["anything"]) is None  # no gateway with admin keys ran yet
    store.record_admin_keys(["sk-master-one", "sk-admin"])
    with store.engine.connect() as conn:
        assert "sk-master-one" not in repr(conn.exec_driver_sql("SELECT * FROM admin_keys").all())
    assert store.admin_key_matches(["sk-master-one"]) is True
    assert store.admin_key_matches(["sk-admin", "nope"]) is True
    assert store.admin_key_matches(["nope"]) is False
    store.record_admin_keys(["sk-master-two"])  # the gateway restarted with a new master key
    assert store.admin_key_matches(["sk-master-one"]) is False
    assert store.admin_key_matches(["sk-master-two"]) is True


@pytest.mark.parametrize("expires", ["2020-01-01", 1_000.0, "0s"])
def test_a_key_cannot_be_created_already_expired(store: KeyStore, expires: str | float) -> None:
    with pytest.raises(ValueError, match="in the past"):
        store.create(KeySpec(name="late", expires=expires))
    assert store.list() == []


def test_an_expiry_at_the_end_of_the_calendar_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="expires"):
        parse_expiry("0001-01-01T00:00:00+23:59", time.time())
