"""Virtual API keys: what a key may do, and their table. Only the sha256 of a secret is stored; the
secret itself is shown once, when the key is created or rotated."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, func, select, update

from strato.auth.audit import AuditEvent, append_events
from strato.config import Name, check_guard_overrides
from strato.store.database import open_database
from strato.store.tables import admin_keys, api_keys, traces

SECRET_PREFIX = "sk-strato-"


class KeySpec(BaseModel):
    """What a new key may do: the body of `POST /admin/keys` and the options of `strato keys create`."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Who or what the key is for.")
    models: list[str] | None = Field(None, description="Models the key may call. Unset: all.")
    budget_daily: float | None = Field(None, gt=0, description="USD the key may spend per UTC day.")
    budget_monthly: float | None = Field(None, gt=0, description="USD the key may spend per UTC month.")
    rpm: int | None = Field(None, gt=0, description="Requests per minute.")
    tpm: int | None = Field(None, gt=0, description="Tokens (prompt + completion) per minute.")
    expires: str | float | None = Field(
        None, description="When the key stops working: 30d, 12h, 2w, a date (2026-12-31) or epoch seconds."
    )
    team: str | None = Field(None, description="A team name, for grouping.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Free-form labels.")
    guards: dict[str, dict[str, Any]] | None = Field(
        None,
        description="Guard settings for this key's requests, over the global and the model's: "
        '`{"injection": {"action": "block"}, "pii": {"enforce": true}}`.',
    )

    @field_validator("guards")
    @classmethod
    def _valid_guards(cls, guards: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if guards:
            check_guard_overrides(guards, "guards")
        return guards or None


@dataclass(frozen=True, slots=True)
class VirtualKey:
    id: str
    name: str
    models: tuple[str, ...] | None = None
    budget_daily: float | None = None
    budget_monthly: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    expires_at: float | None = None
    team: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    guards: dict[str, dict[str, Any]] | None = None
    created_at: float = 0.0
    rotated_at: float | None = None
    revoked_at: float | None = None

    @property
    def budgeted(self) -> bool:
        """Whether the key has a daily or monthly budget (its requests are held and journaled)."""
        return self.budget_daily is not None or self.budget_monthly is not None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models) if self.models is not None else None
        return data


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_expiry(value: str | float | None, now: float) -> float | None:
    """`--expires` as epoch seconds: a period from now (30d, 12h, 2w, 90m) or a local date/time."""
    if value is None or isinstance(value, int | float):
        return value
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", value.strip())
    if found:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[found.group(2)]
        return now + float(found.group(1)) * unit
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expires {value!r}: use 30d, 12h, 2w or a date like 2026-12-31") from None
    try:
        return when.astimezone().timestamp()
    except (ValueError, OverflowError):  # an offset that takes the time past year 1 or 9999
        raise ValueError(f"expires {value!r} is out of range") from None


class KeyStore:
    """The `api_keys` table, in the same database as the traces (so the CLI and a running server share
    it). Thread-safe: every call takes its own connection. Every change appends an audit entry in
    the same transaction; `actor` says who made it (`cli`, `master`, a key id)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> KeyStore:
        """Connect and apply pending migrations."""
        return cls(open_database(url))

    def create(
        self, spec: KeySpec, now: float | None = None, actor: str | None = None
    ) -> tuple[VirtualKey, str]:
        """A new key and its secret (the only time the secret exists outside the caller)."""
        now = time.time() if now is None else now
        expires_at = parse_expiry(spec.expires, now)
        if expires_at is not None and expires_at <= now:
            raise ValueError(f"expires {spec.expires!r} is in the past; a new key must expire later")
        key_id, secret = f"key-{secrets.token_hex(6)}", _new_secret()
        row = {
            "id": key_id,
            "name": spec.name,
            "secret_hash": hash_secret(secret),
            "models": json.dumps(spec.models) if spec.models is not None else None,
            "budget_daily": spec.budget_daily,
            "budget_monthly": spec.budget_monthly,
            "rpm": spec.rpm,
            "tpm": spec.tpm,
            "expires_at": expires_at,
            "team": spec.team,
            "metadata": json.dumps(spec.metadata) if spec.metadata else None,
            "guards": json.dumps(spec.guards) if spec.guards else None,
            "created_at": now,
        }
        detail = {"name": spec.name, "models": spec.models, "team": spec.team}
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert(), row)
            append_events(conn, [AuditEvent("key.create", actor, key_id, detail=detail, at=now)])
        return _from_row(row), secret

    def find(self, secret: str) -> VirtualKey | None:
        """The key whose secret this is (revoked and expired ones included; the caller decides)."""
        stmt = select(api_keys).where(api_keys.c.secret_hash == hash_secret(secret))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return _from_row(row._mapping) if row is not None else None

    def get(self, key_id: str) -> VirtualKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return _from_row(row._mapping) if row is not None else None

    def list(self, include_revoked: bool = False) -> list[VirtualKey]:
        stmt = select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            stmt = stmt.where(api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_from_row(row._mapping) for row in conn.execute(stmt)]

    def revoke(self, key_id: str, now: float | None = None, actor: str | None = None) -> VirtualKey | None:
        """Revoke a live key; None when there is no such key (or it was revoked already)."""
        now = time.time() if now is None else now
        stmt = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        with self.engine.begin() as conn:
            changed = conn.execute(stmt.values(revoked_at=now)).rowcount
            if changed:
                append_events(conn, [AuditEvent("key.revoke", actor, key_id, at=now)])
        return self.get(key_id) if changed else None

    def rotate(
        self, key_id: str, now: float | None = None, actor: str | None = None
    ) -> tuple[VirtualKey, str] | None:
        """A new secret for a live key (same id and settings); the old secret stops working."""
        now = time.time() if now is None else now
        secret = _new_secret()
        stmt = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        values = {"secret_hash": hash_secret(secret), "rotated_at": now}
        with self.engine.begin() as conn:
            changed = conn.execute(stmt.values(**values)).rowcount
            if changed:
                append_events(conn, [AuditEvent("key.rotate", actor, key_id, at=now)])
        key = self.get(key_id) if changed else None
        return (key, secret) if key is not None else None

    def spent(self, key_id: str, since: float) -> float:
        """USD the key's recorded requests cost since `since` (its traces' cost)."""
        stmt = select(func.coalesce(func.sum(traces.c.cost), 0.0)).where(
            traces.c.api_key == key_id, traces.c.started_at >= since
        )
        with self.engine.connect() as conn:
            return float(conn.execute(stmt).scalar_one())

    def record_admin_keys(self, given: Sequence[str], now: float | None = None) -> None:
        """Remember (as hashes) the admin keys the gateway runs with; they replace earlier ones."""
        now = time.time() if now is None else now
        rows = [{"secret_hash": h, "recorded_at": now} for h in sorted({hash_secret(k) for k in given})]
        with self.engine.begin() as conn:
            conn.execute(admin_keys.delete())
            if rows:
                conn.execute(admin_keys.insert(), rows)

    def admin_key_matches(self, given: Sequence[str]) -> bool | None:
        """Whether one of `given` is an admin key the gateway last ran with; None when no gateway
        with admin keys has run on this database yet."""
        with self.engine.connect() as conn:
            recorded = set(conn.execute(select(admin_keys.c.secret_hash)).scalars())
        if not recorded:
            return None
        return any(hash_secret(k) in recorded for k in given)

    def close(self) -> None:
        self.engine.dispose()


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _from_row(row: Any) -> VirtualKey:
    return VirtualKey(
        id=row["id"],
        name=row["name"],
        models=tuple(json.loads(row["models"])) if row["models"] else None,
        budget_daily=row["budget_daily"],
        budget_monthly=row["budget_monthly"],
        rpm=row["rpm"],
        tpm=row["tpm"],
        expires_at=row["expires_at"],
        team=row["team"],
        metadata=json.loads(row["metadata"]) if row["metadata"] else {},
        guards=json.loads(row["guards"]) if row.get("guards") else None,
        created_at=row["created_at"],
        rotated_at=row.get("rotated_at"),
        revoked_at=row.get("revoked_at"),
    )
